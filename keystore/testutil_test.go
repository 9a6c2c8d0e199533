package keystore

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/keystore/internal/fsio"
	"github.com/keytree-dev/keytree/protect"
)

// Helpers for the unit tests of this package's API.

// newTestDir makes one more empty directory, removed like testDirs' ones.
func newTestDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "keytree-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeTestDir(t, dir) })
	return dir
}

// initTestKeystore creates a keystore in d and opens it.
func initTestKeystore(t *testing.T, d Dirs) (*InitResult, *Keystore) {
	t.Helper()
	res, err := Init(Options{Dirs: d}, protect.X25519)
	if err != nil {
		t.Fatalf("init: %v", err)
	}
	return res, openTestKeystore(t, Options{Dirs: d})
}

func openTestKeystore(t *testing.T, opts Options) *Keystore {
	t.Helper()
	ks, err := Open(opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return ks
}

// writeTestFile writes a file owner-only, as keytree would have.
func writeTestFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
}

func readTestFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func fileExists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func wantExists(t *testing.T, path string, want bool) {
	t.Helper()
	if got := fileExists(path); got != want {
		if want {
			t.Errorf("%s is missing", path)
		} else {
			t.Errorf("%s still exists", path)
		}
	}
}

// treeSnapshot maps every file under root (relative, slash-separated) to
// its content, and every directory to "<dir>". Names in skip are left out.
func treeSnapshot(t *testing.T, root string, skip ...string) map[string]string {
	t.Helper()
	snap := map[string]string{}
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		r, _ := filepath.Rel(root, p)
		r = filepath.ToSlash(r)
		for _, s := range skip {
			if r == s {
				return nil
			}
		}
		if e.IsDir() {
			snap[r] = "<dir>"
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		snap[r] = string(data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// diffSnapshots describes how two snapshots differ, or returns "".
func diffSnapshots(before, after map[string]string) string {
	var diffs []string
	for k, v := range before {
		w, ok := after[k]
		switch {
		case !ok:
			diffs = append(diffs, "removed "+k)
		case v != w:
			diffs = append(diffs, "changed "+k)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			diffs = append(diffs, "added "+k)
		}
	}
	sort.Strings(diffs)
	return strings.Join(diffs, ", ")
}

// dirEntries lists the names in dir.
func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// keystoreError returns err as a *Error, failing the test if it is not one.
func keystoreError(t *testing.T, err error) *Error {
	t.Helper()
	var ke *Error
	if !errors.As(err, &ke) {
		t.Fatalf("error %v (%T) is not a *keystore.Error", err, err)
	}
	return ke
}

// wantMsg checks that err carries SQL Server message number n.
func wantMsg(t *testing.T, err error, n int, kind error) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want error %d", n)
	}
	ke := keystoreError(t, err)
	if ke.Number != n {
		t.Fatalf("error %v has number %d, want %d", err, ke.Number, n)
	}
	if kind != nil && !errors.Is(err, kind) {
		t.Fatalf("error %v does not match %v", err, kind)
	}
}

// wantKind checks errors.Is(err, kind).
func wantKind(t *testing.T, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("error %v, want one matching %v", err, kind)
	}
}

// errorLogLines returns the lines of the error log that contain s.
func errorLogLines(t *testing.T, ks *Keystore, s string) []string {
	t.Helper()
	log, err := ks.ErrorLog()
	if err != nil {
		t.Fatalf("errorlog: %v", err)
	}
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}

// wantPermissionRefusals runs each of ops on the keystore in d, opened
// afresh for each as every keytree command opens it, and checks that each
// is refused with ErrPermissions and a hint or a remedy; what says what was
// loosened.
func wantPermissionRefusals(t *testing.T, d Dirs, what string, ops map[string]func(ks *Keystore) error) {
	t.Helper()
	for opName, op := range ops {
		err := func() error {
			ks, err := Open(Options{Dirs: d})
			if err != nil {
				return err
			}
			return op(ks)
		}()
		if err == nil {
			t.Errorf("%s: succeeded with %s", opName, what)
			continue
		}
		wantKind(t, err, ErrPermissions)
		if ke := keystoreError(t, err); ke.Hint == "" && ke.Remedy.Kind == RemedyNone {
			t.Errorf("%s: no hint or remedy in %+v", opName, ke)
		}
	}
}

// holdLock takes ks's lock in mode, as another keytree process would,
// failing the test if it does not come within timeout.
func holdLock(t *testing.T, ks *Keystore, mode fsio.LockMode, timeout time.Duration) *fsio.Lock {
	t.Helper()
	l, err := ks.lock(mode, timeout)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// setTestCredential stores a credential, failing the test if it cannot.
func setTestCredential(t *testing.T, ks *Keystore, name, identity string, value []byte) {
	t.Helper()
	if _, err := ks.SetCredential(name, identity, value); err != nil {
		t.Fatal(err)
	}
}

// wantCredential checks that credential name reads back as want; when says
// at which point of the test.
func wantCredential(t *testing.T, ks *Keystore, name, want, when string) {
	t.Helper()
	if _, v, err := ks.GetCredential(name); err != nil || string(v) != want {
		t.Fatalf("%s: %q, %v", when, v, err)
	}
}

// newTestKeystore creates a keystore in directories of its own and opens it.
// newFormat1Keystore is newTestKeystore for a keystore of format 1, as
// keytree made before format 2: metadata without MACs, values unbound.
// Tests that edit metadata to make a state use one; in format 2 the edit
// would be refused (auth_test.go).
func newFormat1Keystore(t *testing.T) (Dirs, *Keystore) {
	t.Helper()
	d := testDirs(t)
	if _, err := Init(Options{Dirs: d, format1: true}, protect.X25519); err != nil {
		t.Fatalf("init: %v", err)
	}
	return d, openTestKeystore(t, Options{Dirs: d, format1: true})
}

func newTestKeystore(t *testing.T) (Dirs, *Keystore) {
	t.Helper()
	d := testDirs(t)
	_, ks := initTestKeystore(t, d)
	return d, ks
}

// writeSignedSMK writes meta as smk.toml, signed by the keystore's SMK as
// keytree would: a test that builds a state by hand (files renamed,
// generations retired) makes one keytree could have made.
func writeSignedSMK(t *testing.T, ks *Keystore, key *protect.Key, meta *formats.SMK) {
	t.Helper()
	if err := ks.signSMK(meta, key); err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, ks.path(smkFile), mustEncode(t, meta))
}

// testSMK opens the keystore's SMK.
func testSMK(t *testing.T, ks *Keystore) *protect.Key {
	t.Helper()
	var key *protect.Key
	err := ks.read("test", func(s *session) error {
		st, err := s.openSMK()
		if err == nil {
			key = st.key
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func mustEncode(t *testing.T, v interface{ Encode() ([]byte, error) }) []byte {
	t.Helper()
	data, err := v.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return data
}
