package protect

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"

	"filippo.io/age"
)

// A bound file is an age file encrypted to a master key that also says what
// it is: beside the key's own stanza, its header holds a binding stanza
//
//	-> keytree-binding 1
//	MAC || BINDING
//
// where BINDING is a description of the value's place (its kind, scope,
// name and revision, made by the caller) and MAC is HMAC-SHA256, under a key
// derived from the master key, of BINDING and the file's own file key.
// Only a holder of the master key can make a stanza that verifies, and a
// stanza verifies only in the file it was made for: age's header MAC, under
// the file key, covers every stanza, and the binding MAC covers the file
// key. Moving, copying or swapping a bound file to another place therefore
// shows: the place's binding is not the file's.
//
// An identity ignores stanzas of types it does not know, so the stock age
// CLI still decrypts a bound file with the master key's identity file,
// exactly as before (P15).
const bindingStanzaType = "keytree-binding"

const bindingVersion = "1"

// MaxBindingSize bounds a binding: names and a credential's identity.
const MaxBindingSize = 4 << 10

// ErrUnbound is OpenBound's error for a file without a binding stanza, when
// one is required.
var ErrUnbound = errors.New("the file is not bound to any item (it was not written by this keystore's format)")

// BindingError is OpenBound's error for a file bound to another place.
// Found is the binding the file holds, if its MAC verifies under the key;
// nil if the stanza was forged or altered.
type BindingError struct {
	Found []byte
}

func (e *BindingError) Error() string {
	if e.Found == nil {
		return "its binding stanza does not verify: the file was altered or forged"
	}
	return "the file is bound to another item"
}

// bindingKey is the MAC key of k's bindings, derived once per key.
type bindingKey struct {
	once sync.Once
	key  []byte
}

func (k *Key) bindingMACKey() []byte {
	k.bkey.once.Do(func() {
		key, err := hkdf.Key(sha256.New, []byte(k.text), nil, "keytree binding key 1", 32)
		if err != nil {
			panic(err) // only for a length HKDF cannot make
		}
		k.bkey.key = key
	})
	return k.bkey.key
}

// MAC returns HMAC-SHA256 of data under a key derived from k (distinct from
// the bindings' key): keytree authenticates metadata with it.
func (k *Key) MAC(data []byte) []byte {
	k.mkey.once.Do(func() {
		key, err := hkdf.Key(sha256.New, []byte(k.text), nil, "keytree metadata key 1", 32)
		if err != nil {
			panic(err)
		}
		k.mkey.key = key
	})
	m := hmac.New(sha256.New, k.mkey.key)
	m.Write(data)
	return m.Sum(nil)
}

func bindingMAC(k *Key, binding, fileKey []byte) []byte {
	m := hmac.New(sha256.New, k.bindingMACKey())
	fmt.Fprintf(m, "keytree binding %s\n%d\n", bindingVersion, len(binding))
	m.Write(binding)
	m.Write(fileKey)
	return m.Sum(nil)
}

// boundRecipient wraps a file key to a master key and adds the binding.
type boundRecipient struct {
	k       *Key
	binding []byte
}

func (r *boundRecipient) Wrap(fileKey []byte) ([]*age.Stanza, error) {
	stanzas, err := r.k.Wrap(fileKey)
	if err != nil {
		return nil, err
	}
	body := append(bindingMAC(r.k, r.binding, fileKey), r.binding...)
	return append(stanzas, &age.Stanza{Type: bindingStanzaType, Args: []string{bindingVersion}, Body: body}), nil
}

// SealBound encrypts plaintext to k as a file bound to binding.
func SealBound(k *Key, binding, plaintext []byte) ([]byte, error) {
	if len(binding) == 0 || len(binding) > MaxBindingSize {
		return nil, fmt.Errorf("a binding of %d bytes", len(binding))
	}
	return Seal(&boundRecipient{k: k, binding: binding}, plaintext)
}

// boundIdentity unwraps with a master key and keeps what the binding check
// needs: the file key and the binding stanzas.
type boundIdentity struct {
	k       *Key
	fileKey []byte
	stanzas []*age.Stanza
}

func (i *boundIdentity) Unwrap(stanzas []*age.Stanza) ([]byte, error) {
	fileKey, err := i.k.Unwrap(stanzas)
	if err != nil {
		return nil, err
	}
	i.fileKey = fileKey
	for _, s := range stanzas {
		if s.Type == bindingStanzaType {
			i.stanzas = append(i.stanzas, s)
		}
	}
	return fileKey, nil
}

// OpenBound decrypts a file encrypted to k, as Open does, and checks its
// binding before it reads any of the value: a file bound to anything but
// want is refused with a *BindingError, and a file without a binding with
// ErrUnbound, unless required is false (a keystore of format 1, whose files
// have none). Both errors wrap ErrDecrypt and ErrDamaged.
func OpenBound(k *Key, ciphertext []byte, max int64, want []byte, required bool) ([]byte, error) {
	return OpenBoundFunc(k, ciphertext, max, func(b []byte) bool { return bytes.Equal(b, want) }, required)
}

// OpenBoundFunc is OpenBound for a file that may be bound to any binding
// accept takes.
func OpenBoundFunc(k *Key, ciphertext []byte, max int64, accept func([]byte) bool, required bool) ([]byte, error) {
	id := &boundIdentity{k: k}
	return openWith(id, ciphertext, max, func() error { return id.check(accept, required) })
}

func (i *boundIdentity) check(accept func([]byte) bool, required bool) error {
	switch len(i.stanzas) {
	case 0:
		if required {
			return ErrUnbound
		}
		return nil
	case 1:
	default:
		return &BindingError{}
	}
	s := i.stanzas[0]
	if len(s.Args) != 1 || s.Args[0] != bindingVersion || len(s.Body) < sha256.Size || len(s.Body)-sha256.Size > MaxBindingSize {
		return &BindingError{}
	}
	mac, found := s.Body[:sha256.Size], s.Body[sha256.Size:]
	if !hmac.Equal(mac, bindingMAC(i.k, found, i.fileKey)) {
		return &BindingError{}
	}
	if !accept(found) {
		return &BindingError{Found: bytes.Clone(found)}
	}
	return nil
}

// openWith is Open with a check that runs after the header is verified and
// before the payload is read.
func openWith(id age.Identity, ciphertext []byte, max int64, check func() error) ([]byte, error) {
	r, err := decrypt(id, ciphertext)
	if err != nil {
		return nil, err
	}
	if err := check(); err != nil {
		return nil, fmt.Errorf("%w: %w: %w", ErrDecrypt, ErrDamaged, err)
	}
	return readPlain(r, max)
}
