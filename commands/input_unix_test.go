//go:build !windows

package commands

import (
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"
)

// TestInputFromPipe: a named pipe and a /dev/fd/N path (what <(...) gives)
// are legitimate ways to pass a value without writing it to disk, and are
// read, unlike a pipe given as a backup.
func TestInputFromPipe(t *testing.T) {
	c := newTestCLI(t)
	fifo := c.path("fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, tc := range []struct {
		name, path string
		write      func(string) error
	}{
		{"fifo", fifo, func(v string) error { return os.WriteFile(fifo, []byte(v), 0) }},
		{"devfd", fmt.Sprintf("/dev/fd/%d", r.Fd()), func(v string) error {
			_, err := w.WriteString(v)
			w.Close()
			return err
		}},
	} {
		value := "value through " + tc.name
		// A write that fails leaves keytree waiting: the timeout below
		// reports it.
		go func() { _ = tc.write(value) }()
		done := make(chan string, 1)
		go func() {
			code, _, stderr := c.run("", "credential", "set", tc.name, "--identity", "u", "--file", tc.path)
			done <- fmt.Sprintf("exit %d %s", code, stderr)
		}()
		select {
		case got := <-done:
			if got != "exit 0 " {
				t.Fatalf("%s: %s", tc.name, got)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: still reading after 20 s", tc.name)
		}
		if code, stdout, stderr := c.run("", "credential", "get", tc.name); code != 0 || stdout != value {
			t.Fatalf("%s: get: exit %d %q\n%s", tc.name, code, stdout, stderr)
		}
	}
}
