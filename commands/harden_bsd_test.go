//go:build !linux && !windows

package commands

// getDumpable is 0: only Linux has PR_GET_DUMPABLE, and elsewhere harden
// sets RLIMIT_CORE alone.
func getDumpable() int { return 0 }
