//go:build windows

package commands

import (
	"fmt"

	"golang.org/x/sys/windows"
)

// hardened is what hardenChild reports after Main.
var hardened = "nogpfaulterrorbox=true"

// state reads the error mode back (SetErrorMode returns the previous one).
func state() string {
	mode := windows.SetErrorMode(0)
	windows.SetErrorMode(mode)
	return fmt.Sprintf("nogpfaulterrorbox=%v", mode&windows.SEM_NOGPFAULTERRORBOX != 0)
}

// hardenChild runs with GOTRACEBACK=wer, for which the Go runtime leaves
// Windows Error Reporting on, runs Main, and prints the state before and
// after.
func hardenChild() int {
	fmt.Println("before:", state())
	Main([]string{"keytree", "--version"})
	fmt.Println("after:", state())
	return 0
}
