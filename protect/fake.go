package protect

import (
	"errors"

	"filippo.io/age"
)

// Fake is a Protector for tests: an in-memory X25519 identity that can be
// made to fail, as a protector whose secret was lost would.
type Fake struct {
	identityProtector
	Broken bool
}

// NewFake returns a working fake protector of the given kind.
func NewFake(kind Kind) *Fake {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		panic(err)
	}
	return &Fake{identityProtector: identityProtector{kind: kind, identity: id, recipient: id.Recipient()}}
}

func (f *Fake) Unwrap(stanzas []*age.Stanza) ([]byte, error) {
	if f.Broken {
		return nil, errors.New("fake protector is broken")
	}
	return f.identityProtector.Unwrap(stanzas)
}
