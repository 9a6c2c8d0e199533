//go:build !linux && !windows

package commands

// harden turns core dumps off for this process (harden.go says why): the
// soft RLIMIT_CORE becomes 0 (noCoreFile).
func harden() {
	noCoreFile()
}
