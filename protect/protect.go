package protect

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"filippo.io/age"
)

// Kind names what protects a key, as listings and messages show it.
type Kind string

const (
	KindAccount  Kind = "account"
	KindMachine  Kind = "machine"
	KindPassword Kind = "password"
	KindSMK      Kind = "smk"
	KindDMK      Kind = "dmk"
)

// A Protector wraps file keys (as an age recipient) and unwraps them (as an
// age identity). Sealing a key or a secret to a Protector produces a
// standard age file.
type Protector interface {
	age.Recipient
	age.Identity
	Kind() Kind
}

// ErrDecrypt reports that an age file could not be opened with the protector
// it was given: the wrong key or password, or a damaged file. The two cannot
// be told apart reliably (age authenticates the header with the file key), so
// callers report them together.
var ErrDecrypt = errors.New("cannot be decrypted")

// ErrDamaged reports, along with ErrDecrypt, an age file that is not merely
// for another key: truncated, malformed, or failing its authentication.
var ErrDamaged = errors.New("damaged")

// Seal encrypts plaintext to p and returns the age file.
func Seal(p age.Recipient, plaintext []byte) ([]byte, error) {
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, p)
	if err != nil {
		return nil, fmt.Errorf("encrypt: %w", err)
	}
	if _, err := w.Write(plaintext); err != nil {
		return nil, fmt.Errorf("encrypt: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("encrypt: %w", err)
	}
	return buf.Bytes(), nil
}

// Open decrypts the age file ciphertext with id. It reads at most max bytes of
// plaintext: a file that holds more is refused rather than read into memory.
// Every failure to decrypt wraps ErrDecrypt; a scrypt work factor below the
// floor or above the ceiling wraps ErrWeakScrypt or ErrCostlyScrypt as well,
// and a file that is not merely for another key or password wraps
// ErrDamaged. A Password that has used up its scrypt budget, or is held,
// returns ErrScryptBudget or ErrScryptDeferred, and not ErrDecrypt: nothing
// is known about the file.
func Open(id age.Identity, ciphertext []byte, max int64) ([]byte, error) {
	r, err := decrypt(id, ciphertext)
	if err != nil {
		return nil, err
	}
	return readPlain(r, max)
}

// decrypt opens the header of an age file: the file key is unwrapped and
// the header MAC verified; the payload is decrypted as it is read.
func decrypt(id age.Identity, ciphertext []byte) (io.Reader, error) {
	r, err := age.Decrypt(bytes.NewReader(ciphertext), id)
	if err != nil {
		if errors.Is(err, ErrScryptBudget) || errors.Is(err, ErrScryptDeferred) {
			return nil, err
		}
		if errors.Is(err, ErrWeakScrypt) || errors.Is(err, ErrCostlyScrypt) {
			return nil, fmt.Errorf("%w: %w", ErrDecrypt, err)
		}
		var nomatch *age.NoIdentityMatchError
		if errors.As(err, &nomatch) {
			return nil, fmt.Errorf("%w: %v", ErrDecrypt, err)
		}
		return nil, fmt.Errorf("%w: %w: %v", ErrDecrypt, ErrDamaged, err)
	}
	return r, nil
}

// readPlain reads at most max bytes of plaintext.
func readPlain(r io.Reader, max int64) ([]byte, error) {
	out, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %w: %v", ErrDecrypt, ErrDamaged, err)
	}
	if int64(len(out)) > max {
		return nil, fmt.Errorf("%w: %w: more than %d bytes of plaintext", ErrDecrypt, ErrDamaged, max)
	}
	return out, nil
}
