package protect

import (
	"crypto/rand"
	"fmt"
)

// EntropySize is the size of the per-keystore entropy mixed into the machine
// protector, as SQL Server mixes 256 bytes into its machine-key encryption.
const EntropySize = 256

// GenerateEntropy returns fresh per-keystore entropy for the machine protector.
func GenerateEntropy() ([]byte, error) {
	return randomBytes(EntropySize)
}

func randomBytes(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("read random bytes: %w", err)
	}
	return b, nil
}

// CheckEntropy checks a keystore's machine entropy.
func CheckEntropy(entropy []byte) error { return checkEntropy(entropy) }

func checkEntropy(entropy []byte) error {
	if len(entropy) != EntropySize {
		return fmt.Errorf("machine entropy is %d bytes, want %d", len(entropy), EntropySize)
	}
	return nil
}
