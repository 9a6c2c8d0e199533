package keystore

import (
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"github.com/keytree-dev/keytree/protect"
)

// The scrypt work factors: the one tests use, and the shipped one (the
// fixture is written at it).
var shippedScryptWorkFactor int

const testScryptWorkFactor = 8

func TestMain(m *testing.M) {
	// Password encryptions at the shipped work factor cost a second each;
	// tests use the floor that the hook allows.
	shippedScryptWorkFactor = protect.ScryptWorkFactor()
	protect.SetScryptWorkFactorForTesting(testScryptWorkFactor)
	os.Exit(m.Run())
}

// testDirs makes a keystore, an account and a machine directory: three
// separate, empty, owner-only directories, each from os.MkdirTemp. Not
// t.TempDir: under Wine os.RemoveAll fails, and so would its clean-up. They
// are removed afterwards file by file; on Windows errors are ignored.
func testDirs(t *testing.T) Dirs {
	t.Helper()
	var d Dirs
	for _, p := range []*string{&d.Keystore, &d.Account, &d.Machine} {
		dir, err := os.MkdirTemp("", "keytree-test-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { removeTestDir(t, dir) })
		*p = dir
	}
	return d
}

// removeTestDir removes dir and everything under it one entry at a time,
// deepest first, making directories writable on the way (a test may have
// left one read-only).
func removeTestDir(t *testing.T, dir string) {
	var paths []string
	// Best effort: what cannot be removed is reported below.
	_ = filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err == nil && e.IsDir() && runtime.GOOS != "windows" {
			_ = os.Chmod(p, 0o700)
		}
		paths = append(paths, p)
		return nil
	})
	slices.Reverse(paths)
	for _, p := range paths {
		if err := os.Remove(p); err != nil && runtime.GOOS != "windows" && !os.IsNotExist(err) {
			t.Errorf("clean-up: %v", err)
		}
	}
}
