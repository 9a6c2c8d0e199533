package commands

import (
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
)

// runBase is the directory that holds keytree run's files: keytree's own
// in the account's temporary directory (%TEMP%, in the user's profile).
// Windows has no tmpfs; the files are owner-only by their ACL.
func runBase() (string, error) {
	return filepath.Join(os.TempDir(), "keytree-run"), nil
}

// envKey is how Windows compares variable names: without case.
func envKey(name string) string { return strings.ToUpper(name) }

// relaySignals keeps Ctrl-C and Ctrl-Break from ending keytree while cmd
// runs: the console sends them to every process attached to it, cmd
// included, and keytree must stay to remove the files and report cmd's
// status. started has nothing to do here (see run_unix.go); stop stops
// that.
func relaySignals(*exec.Cmd) (started, stop func()) {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, os.Interrupt)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-ch:
			}
		}
	}()
	return func() {}, func() {
		signal.Stop(ch)
		close(done)
	}
}

// childStatus is cmd's exit status.
func childStatus(ps *os.ProcessState) int { return ps.ExitCode() }
