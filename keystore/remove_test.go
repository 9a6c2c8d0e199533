package keystore

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A read error while removing an item (a flaky disk, a network file system)
// fails the removal or is cleaned up by a later writer: it never ends in a
// removal that reports success and leaves the item's encrypted value on disk
// with nothing left to say it is garbage (P18). Each test fails every read
// of one file in turn, the n-th and only the n-th, as a transient error.

// failNthRead makes the n-th read of a path for which match is true fail
// with EIO, and counts such reads.
type failNthRead struct {
	match func(path string) bool
	n     int
	seen  int
}

func (f *failNthRead) hook(kind, path string) error {
	if kind != "read" || !f.match(path) {
		return nil
	}
	f.seen++
	if f.seen == f.n {
		return &os.PathError{Op: "read", Path: path, Err: syscall.EIO}
	}
	return nil
}

// valueFiles lists the files in dir that hold a value of name (its .age
// files, of any revision and generation).
func valueFiles(t *testing.T, dir, name string) []string {
	t.Helper()
	var out []string
	for _, e := range dirEntries(t, dir) {
		if strings.HasPrefix(e, name+".") && strings.HasSuffix(e, ".age") {
			out = append(out, e)
		}
	}
	return out
}

// runRemoveWithReadFaults runs remove with the n-th read of each file in
// files failing, for every n, on a fresh keystore made by setup, and checks
// that it either fails having removed nothing or succeeds leaving no value
// file once the next writer has run.
func runRemoveWithReadFaults(t *testing.T, setup func(t *testing.T) (*Keystore, Dirs), files func(ks *Keystore) []string,
	remove func(ks *Keystore) error, exists func(ks *Keystore) bool, valueDir func(ks *Keystore) string, name string) {
	t.Helper()
	ks, _ := setup(t)
	for _, target := range files(ks) {
		base := filepath.Base(target)
		// Count the reads of target in an uninterrupted removal.
		counter := &failNthRead{match: func(p string) bool { return filepath.Base(p) == base }, n: -1}
		ks, _ := setup(t)
		ks.setFault(serialized(counter.hook))
		err := remove(ks)
		if err != nil {
			t.Fatalf("removal without faults: %v", err)
		}
		if counter.seen == 0 {
			t.Fatalf("the removal never reads %s", base)
		}
		for n := 1; n <= counter.seen; n++ {
			t.Run(fmt.Sprintf("%s/read%d", base, n), func(t *testing.T) {
				ks, d := setup(t)
				f := &failNthRead{match: func(p string) bool { return filepath.Base(p) == base }, n: n}
				ks.setFault(serialized(f.hook))
				err := remove(ks)
				ks.setFault(nil)
				if err != nil {
					// A failed removal removed nothing.
					if !exists(ks) {
						t.Fatalf("the removal failed (%v) but the item is gone", err)
					}
					if len(valueFiles(t, valueDir(ks), name)) == 0 {
						t.Fatalf("the removal failed (%v) but its value file is gone", err)
					}
					return
				}
				if exists(ks) {
					t.Fatal("the removal succeeded but the item is still there")
				}
				// Whatever the failed read left for later, the next
				// writer removes.
				ks2 := openTestKeystore(t, Options{Dirs: d})
				if _, err := ks2.SetCredential("after", "x", []byte("x")); err != nil {
					t.Fatal(err)
				}
				if left := valueFiles(t, valueDir(ks), name); len(left) > 0 {
					t.Fatalf("the removal succeeded, yet %v stays on disk for good", left)
				}
			})
		}
	}
}

func TestRemoveCredentialReadError(t *testing.T) {
	setup := func(t *testing.T) (*Keystore, Dirs) {
		d := testDirs(t)
		_, ks := initTestKeystore(t, d)
		if _, err := ks.SetCredential("mail", "smtp", []byte("value")); err != nil {
			t.Fatal(err)
		}
		return ks, d
	}
	runRemoveWithReadFaults(t, setup,
		func(ks *Keystore) []string { return []string{ks.path(smkFile), ks.credentialMetaPath("mail")} },
		func(ks *Keystore) error { return ks.RemoveCredential("mail") },
		func(ks *Keystore) bool { _, err := ks.loadCredentialMeta("mail"); return err == nil },
		func(ks *Keystore) string { return ks.path(credentialsDir) }, "mail")
}

func TestRemoveSecretReadError(t *testing.T) {
	setup := func(t *testing.T) (*Keystore, Dirs) {
		d := testDirs(t)
		_, ks := initTestKeystore(t, d)
		if _, err := ks.CreateDMK("payroll", []byte("Database-Passw0rd-1"), DMKOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := ks.SetSecret("payroll", "a", []byte("value a"), nil); err != nil {
			t.Fatal(err)
		}
		return ks, d
	}
	runRemoveWithReadFaults(t, setup,
		func(ks *Keystore) []string {
			return []string{ks.dbPath("payroll", databaseFile), ks.secretMetaPath("payroll", "a")}
		},
		func(ks *Keystore) error { return ks.RemoveSecret("payroll", "a") },
		func(ks *Keystore) bool { _, err := ks.secretMeta("payroll", "a"); return err == nil },
		func(ks *Keystore) string { return ks.dbPath("payroll", secretsDir) }, "a")
}
