//go:build windows

package commands

import "golang.org/x/sys/windows"

// harden keeps crashes away from Windows Error Reporting, which writes the
// crash dumps (LocalDumps) on Windows (harden.go says why). The Go runtime
// sets SEM_NOGPFAULTERRORBOX at start and clears it only for
// GOTRACEBACK=wer; keytree sets it again, keeping the other flags.
func harden() {
	old := windows.SetErrorMode(windows.SEM_NOGPFAULTERRORBOX)
	windows.SetErrorMode(old | windows.SEM_NOGPFAULTERRORBOX)
}
