package commands

import (
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/keytree-dev/keytree/keystore"
)

func sparseFile(t *testing.T, path string, size int64) string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	return path
}

// allocated runs fn and returns how many bytes it allocated.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestInputFileSizeCheckedBeforeRead: a --file or --password-file that is a
// regular file over the limit is refused before it is read (reading it up to
// the limit first cost 64 MiB for a value).
func TestInputFileSizeCheckedBeforeRead(t *testing.T) {
	c := newTestCLI(t)
	value := sparseFile(t, c.path("value"), keystore.MaxValueSize+1)
	var code int
	var stderr string
	n := allocated(func() {
		code, _, stderr = c.run("", "credential", "set", "x", "--identity", "u", "--file", value)
	})
	if code != exitUsage || !strings.Contains(stderr, "larger than 67108864 bytes") {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if n > 16<<20 {
		t.Errorf("refusing a value file of 64 MiB allocated %d MiB", n>>20)
	}

	pw := sparseFile(t, c.path("password"), 1<<30)
	code, _, stderr = c.run("", "smk", "backup", "--file", c.path("backup.age"), "--password-file", pw)
	if code != exitUsage || !strings.Contains(stderr, "larger than 4096 bytes") {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
}

// TestInputFromDevice: /dev/zero as a value or password file is read no
// further than the limit, and refused.
func TestInputFromDevice(t *testing.T) {
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip(err)
	}
	c := newTestCLI(t)
	code, _, stderr := c.run("", "credential", "set", "x", "--identity", "u", "--file", "/dev/zero")
	if code != exitUsage || !strings.Contains(stderr, "larger than 67108864 bytes") {
		t.Fatalf("--file /dev/zero: exit %d\n%s", code, stderr)
	}
	code, _, stderr = c.run("", "smk", "backup", "--file", c.path("backup.age"), "--password-file", "/dev/zero")
	if code != exitUsage || !strings.Contains(stderr, "longer than 4096 bytes") {
		t.Fatalf("--password-file /dev/zero: exit %d\n%s", code, stderr)
	}
}
