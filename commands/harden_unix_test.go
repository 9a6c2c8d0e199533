//go:build !windows

package commands

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// hardened is what hardenChild reports after Main.
var hardened = dumpState(0, 0)

func dumpState(dumpable int, core uint64) string {
	return fmt.Sprintf("dumpable=%d core=%d", dumpable, core)
}

// state reads back what harden changes: PR_GET_DUMPABLE (Linux; 0
// elsewhere) and the soft RLIMIT_CORE.
func state() string {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_CORE, &rl); err != nil {
		return "getrlimit: " + err.Error()
	}
	return dumpState(getDumpable(), rl.Cur)
}

// hardenChild makes core dumps possible (the soft RLIMIT_CORE raised to the
// hard limit), runs Main, and prints the state before and after.
func hardenChild() int {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_CORE, &rl); err != nil || rl.Max == 0 {
		fmt.Println("before: skip: the hard RLIMIT_CORE is 0: core dumps are off already")
		fmt.Println("after: skip")
		return 0
	}
	rl.Cur = rl.Max
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &rl); err != nil {
		fmt.Println("before: skip: setrlimit:", err)
		fmt.Println("after: skip")
		return 0
	}
	fmt.Println("before:", state())
	Main([]string{"keytree", "--version"})
	fmt.Println("after:", state())
	return 0
}
