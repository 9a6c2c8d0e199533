package keystore

import (
	"path/filepath"
	"testing"

	"github.com/keytree-dev/keytree/formats"
)

// P7: FORCE deletes nothing a mistake could still need. When a --force
// operation goes on without opening the current key, that key's own
// encryptions stay on disk with its orphans, and recover opens them once the
// right password or protectors are back.

func keptRows(t *testing.T, ks *Keystore) []KeyEncryption {
	t.Helper()
	rows, err := ks.KeyEncryptions()
	if err != nil {
		t.Fatal(err)
	}
	var kept []KeyEncryption
	for _, r := range rows {
		if r.State == "kept" {
			kept = append(kept, r)
		}
	}
	return kept
}

func TestForceKeepsDMKPasswordEncryption(t *testing.T) {
	d, ks := newTestKeystore(t)
	pw, wrong, next := []byte("Database-Passw0rd-1"), []byte("Mistyped-Passw0rd-1"), []byte("Next-Passw0rd-22")
	if _, err := ks.CreateDMK("payroll", pw, DMKOptions{NoSMKEncryption: true}); err != nil {
		t.Fatal(err)
	}
	values := map[string]string{"a": "value a", "b": "value b"}
	for n, v := range values {
		if _, err := ks.SetSecret("payroll", n, []byte(v), pw); err != nil {
			t.Fatal(err)
		}
	}
	old, _ := ks.loadDatabaseMeta("payroll")
	oldFile := ks.dbPath("payroll", formats.PasswordBlobName(old.Passwords[0].ID, old.Generation))

	// A mistyped open password, with --force: the key is regenerated, the
	// secrets are orphaned, and the old password encryption is kept.
	res, err := ks.RegenerateDMK("payroll", next, DMKOptions{Force: true, OpenPassword: wrong})
	if err != nil {
		t.Fatal(err)
	}
	if !res.CurrentKeyLost || res.OrphanedCount != 2 || res.KeptEncryptions != 1 {
		t.Fatalf("regenerate --force: %+v", res)
	}
	wantExists(t, oldFile, true)
	meta, _ := ks.loadDatabaseMeta("payroll")
	if len(meta.Retired) != 1 || len(meta.Retired[0].Kept) != 1 || meta.Retired[0].Kept[0] != old.Passwords[0].ID {
		t.Fatalf("retired = %+v", meta.Retired)
	}
	if kept := keptRows(t, ks); len(kept) != 1 || kept[0].CryptType != cryptTypePassword {
		t.Errorf("key-encryptions kept rows = %+v", kept)
	}
	st, err := ks.Status()
	if err != nil || len(st.Orphans) != 2 {
		t.Fatalf("status orphans = %+v, %v (a kept encryption is not an orphaned value)", st, err)
	}

	// Another writer's clean-up leaves the kept file alone.
	if _, err := ks.SetSecret("payroll", "c", []byte("value c"), next); err != nil {
		t.Fatal(err)
	}
	values["c"] = "value c"
	wantExists(t, oldFile, true)

	// An export carries the kept encryption: the imported copy recovers
	// its orphans with the old password as well.
	export := filepath.Join(newTestDir(t), "payroll.tar")
	if _, err := ks.ExportDatabase("payroll", export); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.ImportDatabase(export, "copy", next); err != nil {
		t.Fatal(err)
	}
	if res, err := ks.RecoverDMK("copy", "", pw, DMKOptions{OpenPassword: next}); err != nil || res.Recovered != 2 {
		t.Fatalf("recover in the imported copy: %+v, %v", res, err)
	}
	if got, err := ks.GetSecret("copy", "a", next); err != nil || string(got) != values["a"] {
		t.Fatalf("imported copy's secret a = %q, %v", got, err)
	}

	// The wrong password again opens nothing and changes nothing.
	before := treeSnapshot(t, d.Keystore, "errorlog")
	_, err = ks.RecoverDMK("payroll", "", wrong, DMKOptions{OpenPassword: next})
	wantMsg(t, err, MsgNotEncryptedBy, ErrDecryption)
	if diff := diffSnapshots(before, treeSnapshot(t, d.Keystore, "errorlog")); diff != "" {
		t.Fatalf("a failed recover changed the keystore: %s", diff)
	}

	// The right one recovers every orphan; the kept file then goes.
	res, err = ks.RecoverDMK("payroll", "", pw, DMKOptions{OpenPassword: next})
	if err != nil {
		t.Fatal(err)
	}
	if res.Recovered != 2 || res.OrphansLeft != 0 {
		t.Fatalf("recover: %+v", res)
	}
	for n, v := range values {
		got, err := ks.GetSecret("payroll", n, next)
		if err != nil || string(got) != v {
			t.Errorf("secret %s = %q, %v; want %q", n, got, err, v)
		}
	}
	meta, _ = ks.loadDatabaseMeta("payroll")
	if len(meta.Retired) != 0 {
		t.Errorf("retired after recovery = %+v", meta.Retired)
	}
	wantExists(t, oldFile, false)
	if kept := keptRows(t, ks); len(kept) != 0 {
		t.Errorf("kept rows after recovery = %+v", kept)
	}
}

// TestForceKeepsSMKEncryptions: both protections invalid because keytree ran
// with the wrong protector directories, and an older backup restored with
// --force. The current key's two encryptions are kept; back with the right
// directories, smk alter takes over the restored key and smk recover, with
// no backup, opens the kept encryptions and recovers every credential.
func TestForceKeepsSMKEncryptions(t *testing.T) {
	good := testDirs(t)
	_, ks := initTestKeystore(t, good)
	backupPW := []byte("Backup-Passw0rd-1")
	backup := filepath.Join(newTestDir(t), "old-smk.age")
	if _, err := ks.BackupSMK(backup, backupPW, SMKOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.RegenerateSMK(SMKOptions{}); err != nil {
		t.Fatal(err)
	}
	values := map[string]string{"backup-db": "hunter2", "mail": "s3cret"}
	for n, v := range values {
		setTestCredential(t, ks, n, "svc", []byte(v))
	}
	cur, _ := ks.loadSMKMeta()
	keptFiles := []string{
		ks.pathOf(protectorBlob("account", cur.Generation)),
		ks.pathOf(protectorBlob("machine", cur.Generation)),
	}

	wrong := good
	wrong.Account, wrong.Machine = filepath.Join(newTestDir(t), "account"), filepath.Join(newTestDir(t), "machine")
	bad := openTestKeystore(t, Options{Dirs: wrong})
	_, _, err := bad.GetCredential("mail")
	wantMsg(t, err, MsgDecryption, ErrDecryption)
	res, err := bad.RestoreSMK(backup, backupPW, SMKOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.CurrentKeyLost || res.OrphanedCount != 2 || res.KeptEncryptions != 2 {
		t.Fatalf("restore --force: %+v", res)
	}
	for _, f := range keptFiles {
		wantExists(t, f, true)
	}
	if kept := keptRows(t, bad); len(kept) != 2 {
		t.Errorf("key-encryptions kept rows = %+v", kept)
	}
	// A writer's clean-up under the wrong directories keeps them too.
	setTestCredential(t, bad, "new", "svc", []byte("new value"))
	values["new"] = "new value"
	for _, f := range keptFiles {
		wantExists(t, f, true)
	}
	_, err = bad.RecoverSMK("", nil, SMKOptions{})
	wantKind(t, err, ErrDecryption) // these protectors open none of them

	// The right directories: take the restored key over from the wrong
	// account, then recover without a backup.
	ks = openTestKeystore(t, Options{Dirs: good})
	if _, err := ks.AlterSMKOldAccount(wrong.Account); err != nil {
		t.Fatal(err)
	}
	res, err = ks.RecoverSMK("", nil, SMKOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Recovered != 2 || res.OrphansLeft != 0 {
		t.Fatalf("recover: %+v", res)
	}
	for n, v := range values {
		_, got, err := ks.GetCredential(n)
		if err != nil || string(got) != v {
			t.Errorf("credential %s = %q, %v; want %q", n, got, err, v)
		}
	}
	for _, f := range keptFiles {
		wantExists(t, f, false)
	}
	if meta, _ := ks.loadSMKMeta(); len(meta.Retired) != 0 {
		t.Errorf("retired after recovery = %+v", meta.Retired)
	}
}
