//go:build !windows

package protect

import (
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
)

// MachineSecretName is the file, under the machine directory, that holds this
// machine's secret. Unix has no DPAPI, so the machine's secret is 32 random
// bytes in a file that only the machine directory's owner can read.
const MachineSecretName = "machine.key"

const machineSecretSize = 32

// GenerateMachineSecret makes a new machine secret.
func GenerateMachineSecret() ([]byte, error) {
	return randomBytes(machineSecretSize)
}

// CheckMachineSecret checks a machine secret made by GenerateMachineSecret.
func CheckMachineSecret(secret []byte) error {
	if len(secret) != machineSecretSize {
		return fmt.Errorf("machine secret is %d bytes, want %d", len(secret), machineSecretSize)
	}
	return nil
}

// Machine returns the machine protector for one keystore: an age X25519
// identity derived with HKDF-SHA-256 from the machine secret, salted with the
// keystore's entropy. The entropy makes the protector differ per keystore, so
// that one keystore's machine encryption says nothing about another's.
func Machine(machineSecret, entropy []byte) (Protector, error) {
	if err := CheckMachineSecret(machineSecret); err != nil {
		return nil, err
	}
	if err := checkEntropy(entropy); err != nil {
		return nil, err
	}
	seed, err := hkdf.Key(sha256.New, machineSecret, entropy, "keytree machine protector v1", 32)
	if err != nil {
		return nil, err
	}
	id, err := x25519FromSeed(seed)
	if err != nil {
		return nil, err
	}
	return &identityProtector{kind: KindMachine, identity: id, recipient: id.Recipient()}, nil
}
