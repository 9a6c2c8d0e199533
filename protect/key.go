package protect

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"filippo.io/age"
)

// Algorithm is the kind of age key a master key is.
type Algorithm string

const (
	// X25519 is age's classic key (AGE-SECRET-KEY-1...).
	X25519 Algorithm = "x25519"
	// MLKEM768X25519 is age's hybrid post-quantum key (AGE-SECRET-KEY-PQ-1...).
	MLKEM768X25519 Algorithm = "mlkem768x25519"
)

// Algorithms lists the algorithms a master key may use, default first.
var Algorithms = []Algorithm{X25519, MLKEM768X25519}

// ParseAlgorithm checks a user's or a file's algorithm name.
func ParseAlgorithm(s string) (Algorithm, error) {
	for _, a := range Algorithms {
		if string(a) == s {
			return a, nil
		}
	}
	return "", fmt.Errorf("unknown algorithm %q (want x25519 or mlkem768x25519)", s)
}

// A Key is a master key (the SMK or a DMK): an age identity, which is also
// the Protector of everything encrypted under it.
//
// The recipient is always derived from the identity, never read from
// anywhere else: keytree encrypts only to keys it can open.
type Key struct {
	identity   age.Identity
	recipient  age.Recipient
	algorithm  Algorithm
	text       string
	thumbprint string
	kind       Kind
	bkey, mkey bindingKey // derived on first use
}

// GenerateKey makes a new random master key.
func GenerateKey(kind Kind, alg Algorithm) (*Key, error) {
	switch alg {
	case X25519:
		id, err := age.GenerateX25519Identity()
		if err != nil {
			return nil, err
		}
		return newKey(kind, id, id.Recipient(), X25519, id.String()), nil
	case MLKEM768X25519:
		id, err := age.GenerateHybridIdentity()
		if err != nil {
			return nil, err
		}
		return newKey(kind, id, id.Recipient(), MLKEM768X25519, id.String()), nil
	}
	return nil, fmt.Errorf("unknown algorithm %q", alg)
}

// ParseKey reads a master key from its age identity encoding. The algorithm is
// taken from the encoding itself.
func ParseKey(kind Kind, text string) (*Key, error) {
	switch {
	case strings.HasPrefix(text, "AGE-SECRET-KEY-1"):
		id, err := age.ParseX25519Identity(text)
		if err != nil {
			return nil, fmt.Errorf("invalid key: %v", err)
		}
		return newKey(kind, id, id.Recipient(), X25519, text), nil
	case strings.HasPrefix(text, "AGE-SECRET-KEY-PQ-1"):
		id, err := age.ParseHybridIdentity(text)
		if err != nil {
			return nil, fmt.Errorf("invalid key: %v", err)
		}
		return newKey(kind, id, id.Recipient(), MLKEM768X25519, text), nil
	}
	return nil, fmt.Errorf("invalid key: not an age X25519 or ML-KEM-768+X25519 identity")
}

func newKey(kind Kind, id age.Identity, r interface {
	age.Recipient
	String() string
}, alg Algorithm, text string) *Key {
	return &Key{
		identity:   id,
		recipient:  r,
		algorithm:  alg,
		text:       text,
		thumbprint: Thumbprint(r.String()),
		kind:       kind,
	}
}

// Thumbprint identifies a key by its public half: the first 20 bytes of
// SHA-256 over the age recipient, in hex. It reveals nothing that would let
// anyone encrypt to the key: keytree never stores a recipient, so a person
// who can edit the keystore cannot make keytree encrypt to a key of theirs.
func Thumbprint(recipient string) string {
	sum := sha256.Sum256([]byte("keytree thumbprint v1\n" + recipient))
	return hex.EncodeToString(sum[:20])
}

func (k *Key) Kind() Kind                                   { return k.kind }
func (k *Key) Algorithm() Algorithm                         { return k.algorithm }
func (k *Key) Thumbprint() string                           { return k.thumbprint }
func (k *Key) Wrap(fileKey []byte) ([]*age.Stanza, error)   { return k.recipient.Wrap(fileKey) }
func (k *Key) Unwrap(stanzas []*age.Stanza) ([]byte, error) { return k.identity.Unwrap(stanzas) }

// Secret returns the key's age identity encoding. It is the key itself:
// callers only ever encrypt it.
func (k *Key) Secret() string { return k.text }

// Equal reports whether two keys are the same key.
func (k *Key) Equal(o *Key) bool { return o != nil && k.thumbprint == o.thumbprint }
