package protect

import (
	"errors"
	"fmt"
	"strconv"
	"testing"

	"filippo.io/age"
)

// Scrypt work factors (log2 N). keytree writes every password encryption
// with scryptWrite and refuses to open one that asks for less than
// scryptFloor: a work factor is part of the file, so someone who can edit
// the keystore could otherwise swap in a file that is cheap to brute-force.
// scryptMax is age's own ceiling, which keeps a hostile file from making a
// command spend minutes in scrypt.
var (
	scryptWrite = 18
	scryptFloor = 18
)

const scryptMax = 22

// ErrWeakScrypt reports a password-encrypted file whose scrypt work factor is
// below keytree's floor.
var ErrWeakScrypt = errors.New("scrypt work factor below keytree's minimum")

// SetScryptWorkFactorForTesting lowers the scrypt work factor that keytree
// writes and accepts, so that tests do not spend a second per password. It
// panics outside a test binary: the shipped keytree always uses the full cost.
func SetScryptWorkFactorForTesting(logN int) {
	if !testing.Testing() {
		panic("protect: SetScryptWorkFactorForTesting called outside a test")
	}
	scryptWrite, scryptFloor = logN, logN
}

// ScryptWorkFactor reports the work factor keytree writes (for docs and tests).
func ScryptWorkFactor() int { return scryptWrite }

// A Password protects a key with age's scrypt recipient.
type Password struct {
	recipient *age.ScryptRecipient
	identity  *age.ScryptIdentity
}

// NewPassword makes the protector for one password.
func NewPassword(password []byte) (*Password, error) {
	if len(password) == 0 {
		return nil, errors.New("the password is empty")
	}
	r, err := age.NewScryptRecipient(string(password))
	if err != nil {
		return nil, err
	}
	r.SetWorkFactor(scryptWrite)
	id, err := age.NewScryptIdentity(string(password))
	if err != nil {
		return nil, err
	}
	id.SetMaxWorkFactor(scryptMax)
	return &Password{recipient: r, identity: id}, nil
}

func (p *Password) Kind() Kind { return KindPassword }

func (p *Password) Wrap(fileKey []byte) ([]*age.Stanza, error) { return p.recipient.Wrap(fileKey) }

// WrapWithLabels keeps age's rule that a password is the only recipient of
// its file.
func (p *Password) WrapWithLabels(fileKey []byte) ([]*age.Stanza, []string, error) {
	return p.recipient.WrapWithLabels(fileKey)
}

// Unwrap refuses a work factor under the floor before spending any time in
// scrypt, then lets age do the rest.
func (p *Password) Unwrap(stanzas []*age.Stanza) ([]byte, error) {
	for _, s := range stanzas {
		if s.Type != "scrypt" || len(s.Args) != 2 {
			continue
		}
		logN, err := strconv.Atoi(s.Args[1])
		if err != nil {
			return nil, fmt.Errorf("invalid scrypt work factor %q", s.Args[1])
		}
		if logN < scryptFloor {
			return nil, fmt.Errorf("%w (file asks for %d, minimum %d)", ErrWeakScrypt, logN, scryptFloor)
		}
	}
	return p.identity.Unwrap(stanzas)
}
