//go:build !windows

package commands

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// runBase is the directory that holds keytree run's files: keytree's own
// directory in $XDG_RUNTIME_DIR, which is the account's own tmpfs, or else
// one per account on /dev/shm, or else in the temporary directory.
func runBase() (string, error) {
	if d := os.Getenv("XDG_RUNTIME_DIR"); filepath.IsAbs(d) {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			return filepath.Join(d, "keytree"), nil
		}
	}
	name := fmt.Sprintf("keytree-%d", os.Geteuid())
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		return filepath.Join("/dev/shm", name), nil
	}
	return filepath.Join(os.TempDir(), name), nil
}

// envKey is how the OS compares variable names: exactly, on Unix.
func envKey(name string) string { return name }

// relaySignals passes the signals that end a program to cmd while it runs,
// and keeps them from ending keytree, which must stay to remove the files
// and report cmd's status. SIGINT and SIGQUIT typed at a terminal reach
// every process of the foreground group, cmd included; keytree passes them
// on only when it is not in that group, so that cmd never gets one key
// press twice. The caller calls started once cmd has started: a signal
// that came before waits for it (a service stopped just as keytree starts
// its program stops the program too), and stop ends the relay.
func relaySignals(cmd *exec.Cmd) (started, stop func()) {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT)
	start, done := make(chan struct{}), make(chan struct{})
	go func() {
		select {
		case <-done:
			return
		case <-start:
		}
		for {
			select {
			case <-done:
				return
			case sig := <-ch:
				if (sig == unix.SIGINT || sig == unix.SIGQUIT) && inTerminalForeground() {
					continue
				}
				_ = cmd.Process.Signal(sig)
			}
		}
	}()
	return func() { close(start) }, func() {
		signal.Stop(ch)
		close(done)
	}
}

// inTerminalForeground says whether keytree's process group is the
// foreground group of its controlling terminal: the group a key press
// signals.
func inTerminalForeground() bool {
	tty, err := os.Open("/dev/tty")
	if err != nil {
		return false
	}
	defer tty.Close()
	pgrp, err := unix.IoctlGetInt(int(tty.Fd()), unix.TIOCGPGRP)
	return err == nil && pgrp == unix.Getpgrp()
}

// childStatus is the status keytree exits with for cmd's: its exit status,
// or 128+N when signal N ended it, as a shell reports it.
func childStatus(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}
