//go:build windows

package protect

import "golang.org/x/sys/windows"

// MachineSecretName is empty on Windows: the machine's secret is DPAPI's
// machine key, which Windows keeps.
const MachineSecretName = ""

// GenerateMachineSecret is not needed on Windows.
func GenerateMachineSecret() ([]byte, error) { return nil, nil }

// CheckMachineSecret is not needed on Windows.
func CheckMachineSecret([]byte) error { return nil }

// Machine returns the machine protector for one keystore: DPAPI with
// CRYPTPROTECT_LOCAL_MACHINE and the keystore's 256 bytes of entropy, as SQL
// Server protects its service master key with the machine key.
func Machine(_, entropy []byte) (Protector, error) {
	if err := checkEntropy(entropy); err != nil {
		return nil, err
	}
	return &dpapiProtector{
		kind:    KindMachine,
		stanza:  "keytree-dpapi-machine",
		flags:   windows.CRYPTPROTECT_UI_FORBIDDEN | windows.CRYPTPROTECT_LOCAL_MACHINE,
		entropy: append([]byte(nil), entropy...),
	}, nil
}
