//go:build !windows

package keystore

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/keytree-dev/keytree/protect"
)

// P13 on Unix: keytree creates everything owner-only whatever the umask, and
// refuses a keystore or protector file that group or others can read, as
// OpenSSH refuses such a private key. (On Windows, permissions are ACLs:
// see acl_windows_test.go.)

// TestPermissionRefusals loosens one file or directory at a time and
// expects the commands that read it to refuse with ErrPermissions, leaving
// it as it is rather than silently replacing or fixing it.
func TestPermissionRefusals(t *testing.T) {
	type target struct {
		path func(d Dirs, ks *Keystore) string
		mode fs.FileMode
	}
	targets := map[string]target{
		"keystore dir 0755": {func(d Dirs, _ *Keystore) string { return d.Keystore }, 0o755},
		"keystore dir 0750": {func(d Dirs, _ *Keystore) string { return d.Keystore }, 0o750},
		"account dir 0755":  {func(d Dirs, _ *Keystore) string { return d.Account }, 0o755},
		"machine dir 0711":  {func(d Dirs, _ *Keystore) string { return d.Machine }, 0o711},
		"account.key 0644": {func(d Dirs, _ *Keystore) string {
			return filepath.Join(d.Account, protect.AccountSecretName)
		}, 0o644},
		"account.key 0640": {func(d Dirs, _ *Keystore) string {
			return filepath.Join(d.Account, protect.AccountSecretName)
		}, 0o640},
		"machine.key 0604": {func(d Dirs, _ *Keystore) string {
			return filepath.Join(d.Machine, protect.MachineSecretName)
		}, 0o604},
		"entropy 0644":  {func(d Dirs, ks *Keystore) string { return filepath.Join(d.Machine, ks.ID()+".entropy") }, 0o644},
		"smk.toml 0644": {func(d Dirs, _ *Keystore) string { return filepath.Join(d.Keystore, smkFile) }, 0o644},
		"account encryption 0644": {func(d Dirs, _ *Keystore) string {
			return filepath.Join(d.Keystore, smkDir, "account.1.age")
		}, 0o644},
	}
	for name, tg := range targets {
		t.Run(name, func(t *testing.T) {
			d, ks := newTestKeystore(t)
			setTestCredential(t, ks, "c", "u", []byte("v"))
			p := tg.path(d, ks)
			before, _ := os.ReadFile(p) // nil for a directory
			if err := os.Chmod(p, tg.mode); err != nil {
				t.Fatal(err)
			}
			wantPermissionRefusals(t, d, name, map[string]func(ks *Keystore) error{
				"smk verify":     func(ks *Keystore) error { _, err := ks.VerifySMK(); return err },
				"credential get": func(ks *Keystore) error { _, _, err := ks.GetCredential("c"); return err },
				"credential set": func(ks *Keystore) error { _, err := ks.SetCredential("c", "u", []byte("w")); return err },
			})
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != tg.mode {
				t.Errorf("mode changed to %04o", fi.Mode().Perm())
			}
			if after, _ := os.ReadFile(p); !bytes.Equal(before, after) {
				t.Error("the refused file was rewritten")
			}
			// Fixing the mode fixes the keystore.
			fix := fs.FileMode(0o600)
			if fi.IsDir() {
				fix = 0o700
			}
			chmodTest(t, p, fix)
			wantCredential(t, ks, "c", "v", "after chmod back")
		})
	}
}

func TestPermissionRefusalsOtherFiles(t *testing.T) {
	d, ks := newTestKeystore(t)
	setTestCredential(t, ks, "c", "u", []byte("v"))
	blob := filepath.Join(d.Keystore, credentialsDir, "c.1.1.age")
	chmodTest(t, blob, 0o644)
	_, _, err := ks.GetCredential("c")
	wantKind(t, err, ErrPermissions)
	chmodTest(t, blob, 0o600)

	meta := filepath.Join(d.Keystore, credentialsDir, "c.toml")
	chmodTest(t, meta, 0o644)
	_, _, err = ks.GetCredential("c")
	wantKind(t, err, ErrPermissions)
	chmodTest(t, meta, 0o600)

	// A pending.toml others can read is refused, not acted on.
	stray := filepath.Join(d.Keystore, credentialsDir, "c.5.1.age")
	writeTestFile(t, stray, []byte("leftover"))
	writeTestFile(t, filepath.Join(d.Keystore, pendingFile), []byte("garbage"))
	chmodTest(t, filepath.Join(d.Keystore, pendingFile), 0o644)
	_, err = ks.SetCredential("c", "u", []byte("w"))
	wantKind(t, err, ErrPermissions)
	wantExists(t, stray, true)
	chmodTest(t, filepath.Join(d.Keystore, pendingFile), 0o600)

	ks.logEvent("something happened")
	chmodTest(t, filepath.Join(d.Keystore, errorlogFile), 0o644)
	_, err = ks.ErrorLog()
	wantKind(t, err, ErrPermissions)

	// Init refuses an existing, empty keystore directory others can enter.
	d2 := testDirs(t)
	chmodTest(t, d2.Keystore, 0o755)
	_, err = Init(Options{Dirs: d2}, protect.X25519)
	wantKind(t, err, ErrPermissions)
	if got := dirEntries(t, d2.Keystore); len(got) != 0 {
		t.Errorf("refused init created %v", got)
	}
}

// TestCreatedModesUnderUmaskZero: with a umask that takes nothing away,
// every file keytree creates is still 0600 and every directory 0700.
func TestCreatedModesUnderUmaskZero(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)

	roots := testDirs(t)
	d := Dirs{
		Keystore: filepath.Join(roots.Keystore, "a", "ks"),
		Account:  filepath.Join(roots.Account, "b", "account"),
		Machine:  filepath.Join(roots.Machine, "c", "machine"),
	}
	_, ks := initTestKeystore(t, d)
	setTestCredential(t, ks, "c", "u", []byte("v"))
	setTestCredential(t, ks, "c", "u", []byte("w"))
	if _, err := ks.SetMachineProtection(false); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.SetMachineProtection(true); err != nil {
		t.Fatal(err)
	}
	// A repair creates a protector secret, an encryption and the error log.
	d2 := d
	d2.Account = filepath.Join(roots.Account, "b", "account2")
	if _, err := openTestKeystore(t, Options{Dirs: d2}).VerifySMK(); err != nil {
		t.Fatal(err)
	}
	wantExists(t, filepath.Join(d.Keystore, errorlogFile), true)

	n := 0
	for _, root := range []string{roots.Keystore, roots.Account, roots.Machine} {
		n += checkModes(t, root)
	}
	if n < 15 {
		t.Fatalf("checked only %d paths", n)
	}
}

// TestSymlinksNotFollowed: the lock and the error log, the files keytree
// opens to change (a lock's mode, an appended line), are not followed when
// someone who can write the keystore made them links to a file of theirs.
func TestSymlinksNotFollowed(t *testing.T) {
	d, ks := newTestKeystore(t)
	setTestCredential(t, ks, "c", "u", []byte("v"))
	target, checkTarget := victimFile(t, "the link's target")

	// The error log: a heal writes a line to it.
	errorlog := ks.path(errorlogFile)
	os.Remove(errorlog)
	if err := os.Symlink(target, errorlog); err != nil {
		t.Fatal(err)
	}
	healing := d
	healing.Account = filepath.Join(newTestDir(t), "account")
	if _, err := openTestKeystore(t, Options{Dirs: healing}).VerifySMK(); err != nil {
		t.Fatal(err)
	}
	checkTarget("a heal logged through a linked error log")
	if _, err := ks.ErrorLog(); err == nil {
		t.Error("errorlog read through a link")
	}
	os.Remove(errorlog)

	// The lock file.
	lock := ks.path(lockFile)
	if err := os.Remove(lock); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, lock); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ks.GetCredential("c"); err == nil {
		t.Error("a command ran with the lock file a link")
	}
	if _, err := ks.SetCredential("c", "u", []byte("w")); err == nil {
		t.Error("a writer ran with the lock file a link")
	}
	checkTarget("commands with a linked lock file")
}

// victimFile writes a file outside the keystore, mode 0644, for a test to
// link into the keystore. The check it returns fails the test if the file's
// mode or content changed; how names the file in the message, what the
// point of the test.
func victimFile(t *testing.T, how string) (path string, check func(what string)) {
	t.Helper()
	path = filepath.Join(newTestDir(t), "victim")
	if err := os.WriteFile(path, []byte("unchanged\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, func(what string) {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(path)
		if fi.Mode().Perm() != 0o644 || string(data) != "unchanged\n" {
			t.Fatalf("%s: %s was changed: mode %04o, %q", what, how, fi.Mode().Perm(), data)
		}
	}
}

// TestStatusBackupsPastExposedDatabase: a database whose metadata others
// can read is listed as damage, and every other database still shows its
// last backup (status once lost those after the first such database).
func TestStatusBackupsPastExposedDatabase(t *testing.T) {
	_, ks := newTestKeystore(t)
	backups := newTestDir(t)
	for _, db := range []string{"a", "b", "c", "d", "e", "f"} {
		if _, err := ks.CreateDMK(db, []byte("a password for "+db), DMKOptions{SkipPasswordPolicy: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := ks.BackupDMK(db, filepath.Join(backups, db+".age"), []byte("backup password"), DMKOptions{SkipPasswordPolicy: true}); err != nil {
			t.Fatal(err)
		}
	}
	// The database the listing meets first, in the directory's own order.
	dir, err := os.Open(ks.path(databasesDir))
	if err != nil {
		t.Fatal(err)
	}
	names, err := dir.Readdirnames(-1)
	dir.Close()
	if err != nil || len(names) != 6 {
		t.Fatalf("databases: %v, %v", names, err)
	}
	exposed := names[0]
	if err := os.Chmod(ks.dbPath(exposed, databaseFile), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := ks.Status()
	wantKind(t, err, ErrPermissions)
	if st == nil || len(st.Damaged) != 1 || st.Damaged[0].Item != "dmk/"+exposed {
		t.Fatalf("damaged: %+v", st)
	}
	got := map[string]bool{}
	for _, b := range st.Backups {
		got[b.Key] = !b.Time.IsZero()
	}
	for _, db := range names[1:] {
		if !got["dmk/"+db] {
			t.Errorf("status shows no backup of %s: %+v", db, st.Backups)
		}
	}
}
