package keystore

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/keytree-dev/keytree/formats"
)

// P18: a forced operation orphans, and never drops, whatever it did not
// re-encrypt for any reason. A value whose file cannot be read (a mode that
// readFile refuses, an I/O error) is kept under the old generation, which is
// retired with the old key's own encryptions, and reported like a value that
// does not decrypt; recover brings it back once the file reads again.

func skipModesOnWindows(t *testing.T) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("mode bits do not apply on Windows")
	}
}

func chmodTest(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// wantOrphans checks status's list of orphaned items.
func wantOrphans(t *testing.T, ks *Keystore, items ...string) {
	t.Helper()
	st, err := ks.Status()
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	var got []string
	for _, o := range st.Orphans {
		got = append(got, o.Item)
	}
	slices.Sort(got)
	slices.Sort(items)
	if !slices.Equal(got, items) {
		t.Fatalf("status orphans = %v, want %v", got, items)
	}
}

// TestForceOrphansUnreadableCredential: chmod 644 on a credential's value
// file, smk regenerate --force, chmod 600, smk regenerate. The value stays
// on disk throughout, orphaned, and smk recover, with the old key's kept
// encryptions, brings it back.
func TestForceOrphansUnreadableCredential(t *testing.T) {
	skipModesOnWindows(t)
	d := testDirs(t)
	_, ks := initTestKeystore(t, d)
	values := map[string]string{"mail": "hunter2", "db": "s3cret"}
	for n, v := range values {
		if _, err := ks.SetCredential(n, "svc", []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	file := ks.path(credentialsDir, formats.BlobName("mail", 1, 1))
	chmodTest(t, file, 0o644)

	res, err := ks.RegenerateSMK(SMKOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.CurrentKeyLost || res.Reencrypted != 1 || res.OrphanedCount != 1 || res.OrphansLeft != 1 ||
		!slices.Equal(res.Orphaned, []string{"credential 'mail'"}) || res.KeptEncryptions != 2 {
		t.Fatalf("regenerate --force: %+v", res)
	}
	if len(res.Unreadable) != 1 || !strings.HasPrefix(res.Unreadable[0], "credential 'mail': ") ||
		!strings.Contains(res.Unreadable[0], "0644") {
		t.Errorf("unreadable = %q, want credential 'mail' with its reason", res.Unreadable)
	}
	wantExists(t, file, true)
	meta, _ := ks.loadSMKMeta()
	if len(meta.Retired) != 1 || meta.Retired[0].Generation != 1 || len(meta.Retired[0].Kept) != 2 {
		t.Fatalf("retired = %+v, want generation 1 with its two encryptions kept", meta.Retired)
	}
	wantOrphans(t, ks, "credential/mail")

	// Still unreadable, a second --force keeps it under its generation.
	if res, err = ks.RegenerateSMK(SMKOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if res.OrphanedCount != 0 || res.OrphansLeft != 1 {
		t.Fatalf("second regenerate --force: %+v", res)
	}
	wantExists(t, file, true)

	// Readable again: a regenerate without --force leaves it orphaned (the
	// new key does not open it) and removes nothing.
	chmodTest(t, file, 0o600)
	if res, err = ks.RegenerateSMK(SMKOptions{}); err != nil {
		t.Fatal(err)
	}
	if res.OrphansLeft != 1 {
		t.Fatalf("regenerate: %+v", res)
	}
	wantExists(t, file, true)
	wantOrphans(t, ks, "credential/mail")

	// The old key's kept encryptions open it.
	if res, err = ks.RecoverSMK("", nil, SMKOptions{}); err != nil {
		t.Fatal(err)
	}
	if res.Recovered != 1 || res.OrphansLeft != 0 {
		t.Fatalf("recover: %+v", res)
	}
	for n, v := range values {
		if _, got, err := ks.GetCredential(n); err != nil || string(got) != v {
			t.Errorf("credential %s = %q, %v; want %q", n, got, err, v)
		}
	}
	wantOrphans(t, ks)
	wantExists(t, file, false) // now under the current generation
}

// TestForceOrphansUnreadableSecret: the same under a database master key,
// with dmk regenerate --force, recovered from a backup of the old key.
func TestForceOrphansUnreadableSecret(t *testing.T) {
	skipModesOnWindows(t)
	d := testDirs(t)
	_, ks := initTestKeystore(t, d)
	pw, next, third := []byte("Database-Passw0rd-1"), []byte("Next-Passw0rd-22"), []byte("Third-Passw0rd-333")
	if _, err := ks.CreateDMK("payroll", pw, DMKOptions{}); err != nil {
		t.Fatal(err)
	}
	values := map[string]string{"a": "value a", "b": "value b"}
	for n, v := range values {
		if _, err := ks.SetSecret("payroll", n, []byte(v), nil); err != nil {
			t.Fatal(err)
		}
	}
	backupPW := []byte("Backup-Passw0rd-1")
	backup := filepath.Join(newTestDir(t), "payroll-old.age")
	if _, err := ks.BackupDMK("payroll", backup, backupPW, DMKOptions{}); err != nil {
		t.Fatal(err)
	}
	file := ks.dbPath("payroll", secretsDir, formats.BlobName("a", 1, 1))
	chmodTest(t, file, 0o644)

	res, err := ks.RegenerateDMK("payroll", next, DMKOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.CurrentKeyLost || res.Reencrypted != 1 || res.OrphanedCount != 1 ||
		!slices.Equal(res.Orphaned, []string{"secret 'payroll/a'"}) || len(res.Unreadable) != 1 || res.KeptEncryptions != 1 {
		t.Fatalf("dmk regenerate --force: %+v", res)
	}
	wantExists(t, file, true)
	wantOrphans(t, ks, "secret/payroll/a")

	chmodTest(t, file, 0o600)
	if res, err = ks.RegenerateDMK("payroll", third, DMKOptions{}); err != nil {
		t.Fatal(err)
	}
	if res.OrphansLeft != 1 {
		t.Fatalf("dmk regenerate: %+v", res)
	}
	wantExists(t, file, true)
	wantOrphans(t, ks, "secret/payroll/a")

	if res, err = ks.RecoverDMK("payroll", backup, backupPW, DMKOptions{}); err != nil {
		t.Fatal(err)
	}
	if res.Recovered != 1 || res.OrphansLeft != 0 {
		t.Fatalf("dmk recover: %+v", res)
	}
	for n, v := range values {
		if got, err := ks.GetSecret("payroll", n, nil); err != nil || string(got) != v {
			t.Errorf("secret %s = %q, %v; want %q", n, got, err, v)
		}
	}
	wantOrphans(t, ks)
}

// TestForceOrphansOnReadError: an I/O error reading a value, injected
// through the fault hook. Without --force the operation stops with 15320
// and changes nothing; with it, the credential and a DMK's SMK encryption
// are orphaned, and smk recover brings both back once reads succeed.
func TestForceOrphansOnReadError(t *testing.T) {
	d := testDirs(t)
	_, ks := initTestKeystore(t, d)
	if _, err := ks.SetCredential("mail", "svc", []byte("hunter2")); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.CreateDMK("payroll", []byte("Database-Passw0rd-1"), DMKOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.SetSecret("payroll", "a", []byte("value a"), nil); err != nil {
		t.Fatal(err)
	}
	failing := []string{
		ks.path(credentialsDir, formats.BlobName("mail", 1, 1)),
		ks.dbPath("payroll", formats.BlobName(formats.SMKEncryptionBase, 1, 1)),
	}
	ks.setFault(serialized(func(kind, path string) error {
		if kind == "read" && slices.Contains(failing, path) {
			return &os.PathError{Op: "read", Path: path, Err: syscall.EIO}
		}
		return nil
	}))

	before := treeSnapshot(t, d.Keystore, "errorlog")
	_, err := ks.RegenerateSMK(SMKOptions{})
	wantMsg(t, err, MsgItemDecrypt, ErrDecryption)
	if !errors.Is(err, syscall.EIO) {
		t.Errorf("error %v does not carry the read error", err)
	}
	if diff := diffSnapshots(before, treeSnapshot(t, d.Keystore, "errorlog")); diff != "" {
		t.Fatalf("a failed regenerate changed the keystore: %s", diff)
	}

	res, err := ks.RegenerateSMK(SMKOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(res.Orphaned)
	if res.OrphanedCount != 2 || !slices.Equal(res.Orphaned, []string{"credential 'mail'", "database master key 'payroll'"}) ||
		len(res.Unreadable) != 2 || res.KeptEncryptions != 2 {
		t.Fatalf("regenerate --force: %+v", res)
	}
	ks.setFault(nil)
	for _, f := range failing {
		wantExists(t, f, true)
	}
	wantOrphans(t, ks, "credential/mail", "dmk/payroll")

	res, err = ks.RecoverSMK("", nil, SMKOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Recovered != 2 || res.OrphansLeft != 0 {
		t.Fatalf("recover: %+v", res)
	}
	if _, v, err := ks.GetCredential("mail"); err != nil || string(v) != "hunter2" {
		t.Errorf("mail = %q, %v", v, err)
	}
	if v, err := ks.GetSecret("payroll", "a", nil); err != nil || string(v) != "value a" {
		t.Errorf("payroll/a through the SMK = %q, %v", v, err)
	}
	wantOrphans(t, ks)
}
