//go:build linux

package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestNoCoreDump crashes a real keytree in the middle of `credential set`
// with GOTRACEBACK=crash and `ulimit -c unlimited`, as in the report where
// the core held a password and an age secret key, and checks that no core
// file appears. A control process (sleep) under the same settings must
// leave one, or the test is skipped: it proves nothing where the system
// writes no core files to the working directory (a core_pattern that pipes
// them elsewhere, a hard limit of 0).
func TestNoCoreDump(t *testing.T) {
	pattern, err := os.ReadFile("/proc/sys/kernel/core_pattern")
	if err != nil || !strings.HasPrefix(string(pattern), "core") {
		t.Skipf("core_pattern %q does not write core files to the working directory", pattern)
	}
	root, err := os.MkdirTemp("", "keytree-core-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(root)
	// sh raises the soft core limit to the hard one, then becomes the
	// program.
	crashable := func(dir string, args ...string) *exec.Cmd {
		cmd := exec.Command("sh", append([]string{"-c", `ulimit -S -c "$(ulimit -H -c)" && exec "$@"`, "sh"}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOTRACEBACK=crash",
			"KEYTREE_DIR="+filepath.Join(root, "keystore"),
			"KEYTREE_ACCOUNT_DIR="+filepath.Join(root, "account"),
			"KEYTREE_MACHINE_DIR="+filepath.Join(root, "machine"))
		return cmd
	}
	cores := func(dir string) []string {
		m, _ := filepath.Glob(filepath.Join(dir, "core*"))
		return m
	}

	control := filepath.Join(root, "control")
	if err := os.Mkdir(control, 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := crashable(control, "sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	// The crash is the point: its exit status says nothing.
	_ = cmd.Process.Signal(syscall.SIGQUIT)
	_ = cmd.Wait()
	if len(cores(control)) == 0 {
		t.Skip("a crashing sleep left no core file: this system writes none here")
	}

	if out, err := crashable(root, "keytree", "init").CombinedOutput(); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	fifo := filepath.Join(root, "value")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(root, "work")
	if err := os.Mkdir(work, 0o700); err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd = crashable(work, "keytree", "credential", "set", "x", "--identity", "u", "--file", fifo)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// keytree is past Main's start, has opened the keystore and is reading
	// the value (which is what it would hold in memory) once it opens the
	// FIFO: opening the other end without blocking then succeeds.
	var w *os.File
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		w, err = os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.ENXIO) || time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("keytree did not open --file: %v", err)
		}
	}
	defer w.Close()
	time.Sleep(100 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGQUIT); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || !strings.Contains(stderr.String(), "SIGQUIT") {
		t.Fatalf("keytree did not crash: %v\n%s", err, stderr.String())
	}
	if c := cores(work); len(c) != 0 {
		t.Fatalf("the crash left a core file: %s", c)
	}
}
