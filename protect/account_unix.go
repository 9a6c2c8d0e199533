//go:build !windows

package protect

import (
	"bytes"
	"fmt"

	"filippo.io/age"
)

// AccountSecretName is the file, under the account directory, that holds the
// account protector's secret. On Unix it is an age X25519 identity: whoever
// can read it is the account, as far as keytree is concerned.
const AccountSecretName = "account.key"

// GenerateAccountSecret makes a new account secret.
func GenerateAccountSecret() ([]byte, error) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, err
	}
	return []byte("# keytree account protector: keep this file private (mode 0600)\n" + id.String() + "\n"), nil
}

// Account returns the account protector for a secret made by
// GenerateAccountSecret.
func Account(secret []byte) (Protector, error) {
	ids, err := age.ParseIdentities(bytes.NewReader(secret))
	if err != nil || len(ids) != 1 {
		return nil, fmt.Errorf("account secret is not a single age identity")
	}
	id, ok := ids[0].(*age.X25519Identity)
	if !ok {
		return nil, fmt.Errorf("account secret is not an age X25519 identity")
	}
	return &identityProtector{kind: KindAccount, identity: id, recipient: id.Recipient()}, nil
}
