package keystore

import (
	"fmt"

	"time"

	"filippo.io/age"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/protect"
)

// sealKey encrypts a master key to p as a key file.
func sealKey(p age.Recipient, key *protect.Key, created time.Time) ([]byte, error) {
	kf := keyFileOf(key, created)
	plain, err := kf.Encode()
	if err != nil {
		return nil, err
	}
	return protect.Seal(p, plain)
}

func keyFileOf(key *protect.Key, created time.Time) *formats.KeyFile {
	return &formats.KeyFile{
		Kind:       string(key.Kind()),
		Thumbprint: key.Thumbprint(),
		Algorithm:  string(key.Algorithm()),
		Created:    created.UTC(),
		Secret:     key.Secret(),
	}
}

// keyMismatchError reports an encryption that opened, but to a key other
// than the one metadata names.
type keyMismatchError struct {
	got  *protect.Key
	want string
}

func (e *keyMismatchError) Error() string {
	return fmt.Sprintf("it holds key %s, not %s", e.got.Thumbprint(), e.want)
}

// openKeyFile decrypts an encryption of a master key with p and checks
// everything it can: the key file's kind, that its thumbprint and algorithm
// are those of the key inside, and, if thumbprint is not empty, that it is
// the key the metadata names (a *keyMismatchError if not).
func openKeyFile(p protect.Protector, blob []byte, kind protect.Kind, thumbprint string) (*protect.Key, *formats.KeyFile, error) {
	return openKeyFileKnown(p, blob, kind, thumbprint, nil)
}

// openKeyFileKnown is openKeyFile for a key that may be known already: if
// the file holds exactly known's encoding, known is returned without parsing
// the key again (parsing an X25519 key costs a scalar multiplication, and the
// SMK's second encryption is checked on every command).
func openKeyFileKnown(p protect.Protector, blob []byte, kind protect.Kind, thumbprint string, known *protect.Key) (*protect.Key, *formats.KeyFile, error) {
	plain, err := protect.Open(p, blob, formats.MaxKeyFileSize)
	if err != nil {
		return nil, nil, err
	}
	kf, err := decodeKeyPlaintext(plain, kind)
	if err != nil {
		return nil, nil, err
	}
	key := known
	if known == nil || kf.Secret != known.Secret() {
		if key, err = protect.ParseKey(kind, kf.Secret); err != nil {
			return nil, nil, err
		}
	}
	if key.Thumbprint() != kf.Thumbprint || string(key.Algorithm()) != kf.Algorithm {
		return nil, nil, &formats.CorruptError{Reason: "the key file's thumbprint or algorithm is not that of its key"}
	}
	if thumbprint != "" && key.Thumbprint() != thumbprint {
		return key, kf, &keyMismatchError{got: key, want: thumbprint}
	}
	return key, kf, nil
}

func decodeKeyPlaintext(plain []byte, kind protect.Kind) (*formats.KeyFile, error) {
	kf, err := formats.DecodeKeyFile(plain)
	if err != nil {
		return nil, err
	}
	if kf.Kind != string(kind) {
		return nil, &formats.CorruptError{Reason: fmt.Sprintf("holds a %s key, not a %s key", kf.Kind, kind)}
	}
	return kf, nil
}
