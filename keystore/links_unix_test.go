//go:build !windows

package keystore

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keytree-dev/keytree/formats"
)

// linkTestKeystore is a keystore with a credential and a database holding a
// secret: something under every directory keytree lists.
func linkTestKeystore(t *testing.T) (Dirs, *Keystore) {
	t.Helper()
	d, ks := newTestKeystore(t)
	setTestCredential(t, ks, "c", "u", []byte("credential value"))
	if _, err := ks.CreateDMK("hr", []byte("Database-Passw0rd-1"), DMKOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.SetSecret("hr", "s", []byte("secret value"), nil); err != nil {
		t.Fatal(err)
	}
	return d, ks
}

// victimDir makes a directory outside the keystore with files that look
// like a keystore's, so that a sweep that follows a link would find
// something to remove.
func victimDir(t *testing.T) string {
	t.Helper()
	v := newTestDir(t)
	for _, name := range []string{"precious.txt", "c.1.1.age", "x.toml", "database.toml", formats.TempPrefix + "abc"} {
		writeTestFile(t, filepath.Join(v, name), []byte("do not touch "+name))
	}
	if err := os.Mkdir(filepath.Join(v, "secrets"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(v, "secrets", "s.1.1.age"), []byte("do not touch"))
	return v
}

// everyOperation runs readers and writers, a heal among them, and returns
// their errors by name. None of them may touch anything outside the
// keystore; each may fail.
func everyOperation(t *testing.T, d Dirs) map[string]error {
	t.Helper()
	ks, err := Open(Options{Dirs: d, LockTimeout: time.Second})
	if err != nil {
		return map[string]error{"open": err}
	}
	errs := map[string]error{}
	_, errs["status"] = ks.Status()
	_, _, errs["credential get"] = ks.GetCredential("c")
	_, errs["secret get"] = ks.GetSecret("hr", "s", nil)
	_, errs["credential list"] = ks.ListCredentials()
	_, errs["db list"] = ks.ListDatabases()
	_, errs["credential set"] = ks.SetCredential("c2", "u", []byte("v"))
	_, errs["secret set"] = ks.SetSecret("hr", "s2", []byte("v"), nil)
	_, errs["smk regenerate"] = ks.RegenerateSMK(SMKOptions{Force: true})
	_, errs["dmk regenerate"] = ks.RegenerateDMK("hr", []byte("Database-Passw0rd-2"), DMKOptions{Force: true})
	errs["secret rm"] = ks.RemoveSecret("hr", "s2")
	// A reader that heals: the account encryption is invalid for another
	// account directory, and the machine encryption opens the SMK.
	healing := d
	healing.Account = filepath.Join(filepath.Dir(d.Account), filepath.Base(d.Account)+"-other")
	if hks, err := Open(Options{Dirs: healing, LockTimeout: time.Second}); err == nil {
		_, errs["heal"] = hks.Status()
	}
	t.Cleanup(func() { removeTestDir(t, healing.Account) })
	return errs
}

// TestLinkedDirectoriesNotFollowed plants a symbolic link, to a directory
// outside the keystore, where each of keytree's directories belongs, runs
// every kind of operation, and checks that nothing outside was touched and
// that the link is reported as damage (P16).
func TestLinkedDirectoriesNotFollowed(t *testing.T) {
	for _, dir := range []string{tmpDir, smkDir, credentialsDir, databasesDir, "databases/hr", "databases/hr/secrets"} {
		t.Run(strings.ReplaceAll(dir, "/", "_"), func(t *testing.T) {
			d, ks := linkTestKeystore(t)
			victim := victimDir(t)
			before := treeSnapshot(t, victim)
			p := ks.path(filepath.FromSlash(dir))
			if err := os.Rename(p, filepath.Join(newTestDir(t), "real")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(victim, p); err != nil {
				t.Fatal(err)
			}
			errs := everyOperation(t, d)
			if diff := diffSnapshots(before, treeSnapshot(t, victim)); diff != "" {
				t.Fatalf("a link at %s made keytree change a directory outside the keystore: %s", dir, diff)
			}
			reported := false
			for op, err := range errs {
				if err != nil && strings.Contains(err.Error(), "symbolic link") {
					reported = true
					if !errors.Is(err, ErrCorrupt) {
						t.Errorf("%s: %v is not reported as damage", op, err)
					}
				}
			}
			if !reported {
				t.Errorf("no operation reported the link at %s: %v", dir, errs)
			}
		})
	}
}

// TestLinkedDirectoryInsideNotFollowed: a link that stays inside the
// keystore is refused too. tmp/ linked to credentials/ must not make the
// next writer empty credentials/ as it empties tmp/.
func TestLinkedDirectoryInsideNotFollowed(t *testing.T) {
	d, ks := linkTestKeystore(t)
	creds := ks.path(credentialsDir)
	before := treeSnapshot(t, creds)
	if err := os.Remove(ks.path(tmpDir)); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(credentialsDir, ks.path(tmpDir)); err != nil {
		t.Fatal(err)
	}
	errs := everyOperation(t, d)
	if diff := diffSnapshots(before, treeSnapshot(t, creds)); diff != "" {
		t.Fatalf("tmp/ linked to credentials/: %s", diff)
	}
	if err := errs["credential set"]; err == nil || !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("credential set with tmp/ a link: %v, want damage naming the link", err)
	}
}

// TestPendingSweepLinkedDatabase: a pending.toml that sweeps every database
// directory, with databases/evil a link to a directory outside, and an
// import under that name: neither follows the link.
func TestPendingSweepLinkedDatabase(t *testing.T) {
	d, ks := linkTestKeystore(t)
	export := filepath.Join(newTestDir(t), "hr.tar")
	if _, err := ks.ExportDatabase("hr", export); err != nil {
		t.Fatal(err)
	}
	victim := victimDir(t)
	before := treeSnapshot(t, victim)
	if err := os.Symlink(victim, ks.path(databasesDir, "evil")); err != nil {
		t.Fatal(err)
	}
	writePending(t, ks, []string{"databases/evil/precious.txt", "databases/evil/secrets/s.1.1.age"},
		[]string{databasesDir + "/*", "databases/evil", "databases/evil/secrets", allDatabases})
	everyOperation(t, d)
	if _, err := ks.ImportDatabase(export, "evil", nil); err == nil {
		t.Error("import over a linked database directory succeeded")
	}
	if diff := diffSnapshots(before, treeSnapshot(t, victim)); diff != "" {
		t.Fatalf("a sweep through databases/evil changed a directory outside the keystore: %s", diff)
	}
}

// TestLinkedFilesRefused: a value file or metadata file that is a link, even
// to a file inside the keystore, is damage: keytree does not read through it.
func TestLinkedFilesRefused(t *testing.T) {
	_, ks := linkTestKeystore(t)
	blob := credentialBlobPath(t, ks, "c")
	outside := filepath.Join(newTestDir(t), "outside")
	if err := os.Rename(blob, outside); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, blob); err != nil {
		t.Fatal(err)
	}
	_, _, err := ks.GetCredential("c")
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("credential get through a linked value file: %v", err)
	}
	// keystore.toml itself.
	kt := ks.path(keystoreFile)
	if err := os.Rename(kt, kt+".real"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(keystoreFile+".real", kt); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Options{Dirs: Dirs{Keystore: ks.dir, Account: ks.accountDir, Machine: ks.machineDir}}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("open with keystore.toml a link: %v", err)
	}
}

// TestFIFOInKeystore: a FIFO where a file belongs is refused at once, with
// the lock released, rather than waited on (it would block open(2) until a
// writer appeared).
func TestFIFOInKeystore(t *testing.T) {
	_, ks := linkTestKeystore(t)
	blob := credentialBlobPath(t, ks, "c")
	for _, p := range []string{
		blob,
		ks.path(smkFile),
		ks.path(errorlogFile),
		ks.path(lockFile),
	} {
		os.Remove(p)
		if err := syscall.Mkfifo(p, 0o600); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			_, _, err := ks.GetCredential("c")
			if filepath.Base(p) == errorlogFile {
				_, err = ks.ErrorLog()
			}
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("%s a FIFO: %v, want damage", filepath.Base(p), err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s a FIFO: keytree hangs", filepath.Base(p))
		}
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		if filepath.Base(p) != lockFile && filepath.Base(p) != errorlogFile {
			return // the value file is gone now; the other cases need a working keystore
		}
	}
}

// TestHardLinkedLockAndErrorLog: with fs.protected_hardlinks off, someone
// who can write the keystore can hard-link a file of theirs, or any file,
// as the lock or the error log. keytree must neither change its mode nor
// append to it.
func TestHardLinkedLockAndErrorLog(t *testing.T) {
	d, ks := linkTestKeystore(t)
	victim, check := victimFile(t, "the hard-linked file")
	for _, name := range []string{errorlogFile, lockFile} {
		p := ks.path(name)
		os.Remove(p)
		if err := os.Link(victim, p); err != nil {
			t.Fatal(err)
		}
		errs := everyOperation(t, d)
		check(name)
		if name == lockFile {
			if err := errs["credential get"]; !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "hard links") {
				t.Errorf("credential get with a hard-linked lock: %v", err)
			}
		}
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
}

// TestKeystoreOwnedByAnotherAccount: a keystore directory that another
// account owns is refused, unless the caller allows it explicitly.
func TestKeystoreOwnedByAnotherAccount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give the keystore to another account")
	}
	d, _ := linkTestKeystore(t)
	if err := os.Chown(d.Keystore, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	_, err := Open(Options{Dirs: d})
	if !errors.Is(err, ErrPermissions) || !strings.Contains(err.Error(), "uid 4242") {
		t.Fatalf("open of a keystore owned by uid 4242: %v", err)
	}
	ks, err := Open(Options{Dirs: d, AllowOtherOwner: true})
	if err != nil {
		t.Fatalf("open allowed explicitly: %v", err)
	}
	wantCredential(t, ks, "c", "credential value", "credential get allowed explicitly")
}

// credentialBlobPath is the path of a credential's current value file.
func credentialBlobPath(t *testing.T, ks *Keystore, name string) string {
	t.Helper()
	meta, err := ks.loadCredentialMeta(name)
	if err != nil {
		t.Fatal(err)
	}
	st, err := ks.loadSMKMeta()
	if err != nil {
		t.Fatal(err)
	}
	return ks.pathOf(credentialBlob(name, meta.Revision, st.Generation))
}
