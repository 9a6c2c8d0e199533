//go:build windows

package protect

import (
	"fmt"

	"golang.org/x/sys/windows"
)

// AccountSecretName is the file, under the account directory, that holds the
// account protector's secret. On Windows the account's credential is DPAPI's
// user key; the file holds 32 random bytes used as DPAPI's optional entropy,
// which ties each encryption to this account directory as well.
const AccountSecretName = "account.entropy"

// GenerateAccountSecret makes a new account secret.
func GenerateAccountSecret() ([]byte, error) {
	return randomBytes(32)
}

// Account returns the account protector: DPAPI, user scope. A secret of any
// other length than GenerateAccountSecret's is damaged (an empty file would
// leave the encryption tied to the Windows user alone).
func Account(secret []byte) (Protector, error) {
	if len(secret) != 32 {
		return nil, fmt.Errorf("the account secret is %d bytes, not 32", len(secret))
	}
	return &dpapiProtector{
		kind:    KindAccount,
		stanza:  "keytree-dpapi-account",
		flags:   windows.CRYPTPROTECT_UI_FORBIDDEN,
		entropy: append([]byte(nil), secret...),
	}, nil
}
