//go:build !windows

package commands

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A SIGTERM that reaches keytree run after it set up the relay but before
// its program started is passed to the program once it starts: it used to
// be dropped, and the program ran on, as if keytree had not been told to
// stop.
func TestRelaySignalsBeforeStart(t *testing.T) {
	cmd := exec.Command("sleep", "10")
	started, stop := relaySignals(cmd)
	defer stop()
	if err := unix.Kill(os.Getpid(), unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // the relay has the signal by now
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started()
	t0 := time.Now()
	_ = cmd.Wait()
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Fatalf("the program ended with %v, not by the SIGTERM keytree got before it started", cmd.ProcessState)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Fatalf("the program ran %s before the SIGTERM reached it", d)
	}
}
