//go:build linux

package commands

import "golang.org/x/sys/unix"

// harden turns core dumps off for this process (harden.go says why).
// PR_SET_DUMPABLE 0 is reset by execve, and keytree runs no other program.
func harden() {
	_ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0) // best effort (harden.go)
	noCoreFile()
}
