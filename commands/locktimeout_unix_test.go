//go:build !windows

package commands

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestLockTimeoutInSeconds: "--lock-timeout 1" waits one second for a lock
// another process holds, then fails with status 7; so does
// KEYTREE_LOCK_TIMEOUT=1.
func TestLockTimeoutInSeconds(t *testing.T) {
	c := newTestCLI(t)
	f, err := os.OpenFile(filepath.Join(c.keystore, "lock"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code, _, stderr := c.run("", "--lock-timeout", "1", "credential", "list")
	if took := time.Since(start); code != exitLocked || took < time.Second || took > 8*time.Second {
		t.Fatalf("--lock-timeout 1: exit %d after %v\n%s", code, took, stderr)
	}
	if !strings.Contains(stderr, "for more than 1s") {
		t.Errorf("the message: %s", stderr)
	}
	t.Setenv("KEYTREE_LOCK_TIMEOUT", "1")
	start = time.Now()
	code, _, stderr = c.run("", "credential", "list")
	if took := time.Since(start); code != exitLocked || took < time.Second || took > 8*time.Second {
		t.Fatalf("KEYTREE_LOCK_TIMEOUT=1: exit %d after %v\n%s", code, took, stderr)
	}
}
