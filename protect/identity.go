package protect

import "filippo.io/age"

// identityProtector is a Protector backed by an age identity and its
// recipient: the Unix account and machine protectors, and the test fake.
type identityProtector struct {
	kind      Kind
	identity  age.Identity
	recipient age.Recipient
}

func (p *identityProtector) Kind() Kind { return p.kind }
func (p *identityProtector) Wrap(fileKey []byte) ([]*age.Stanza, error) {
	return p.recipient.Wrap(fileKey)
}
func (p *identityProtector) Unwrap(stanzas []*age.Stanza) ([]byte, error) {
	return p.identity.Unwrap(stanzas)
}

// x25519FromSeed turns 32 secret bytes into an age X25519 identity. age takes
// any 32 bytes as a scalar (X25519 clamps it), but only in its Bech32
// encoding, hence the round trip.
func x25519FromSeed(seed []byte) (*age.X25519Identity, error) {
	text, err := bech32Encode("age-secret-key-", seed)
	if err != nil {
		return nil, err
	}
	return age.ParseX25519Identity(upper(text))
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
