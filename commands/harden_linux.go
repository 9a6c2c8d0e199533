//go:build linux

package commands

import "golang.org/x/sys/unix"

// harden turns core dumps off for this process (harden.go says why).
// PR_SET_DUMPABLE 0 is reset by execve, and keytree runs no other program.
func harden() {
	_ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0) // best effort (harden.go)
	noCoreFile()
}

// noCoreFile sets the soft RLIMIT_CORE to 0. The hard limit is left as it
// is: lowering it cannot be undone, and the soft limit is what the kernel
// applies.
func noCoreFile() {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_CORE, &rl); err != nil {
		rl.Max = 0
	}
	rl.Cur = 0
	_ = unix.Setrlimit(unix.RLIMIT_CORE, &rl) // best effort (harden.go)
}
