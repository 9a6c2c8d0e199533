package keystore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/keytree-dev/keytree/formats"
)

// savedItem is one item's files (its metadata and value files) copied
// aside, to be put back over what the item becomes.
type savedItem struct {
	dir, prefix string
	files       map[string][]byte
}

// saveItem copies the files of dir whose names start with name and a dot.
func saveItem(t *testing.T, dir, name string) *savedItem {
	t.Helper()
	it := &savedItem{dir: dir, prefix: name + ".", files: map[string][]byte{}}
	for _, n := range dirEntries(t, dir) {
		if strings.HasPrefix(n, it.prefix) {
			it.files[n] = readTestFile(t, filepath.Join(dir, n))
		}
	}
	if len(it.files) < 2 {
		t.Fatalf("%s/%s*: %v", dir, it.prefix, it.files)
	}
	return it
}

// putBack removes the item's files as they are now and writes the saved
// ones.
func (it *savedItem) putBack(t *testing.T) {
	t.Helper()
	for _, n := range dirEntries(t, it.dir) {
		if strings.HasPrefix(n, it.prefix) {
			if err := os.Remove(filepath.Join(it.dir, n)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for n, data := range it.files {
		writeTestFile(t, filepath.Join(it.dir, n), data)
	}
}

// TestPendingSecretPinned: a secret of a database only a password opens,
// accepted by accept-rollback, is accepted at its next read only at the
// commit it had when it was accepted: an older copy put in its place in
// between is a rollback, before that read and after it.
func TestPendingSecretPinned(t *testing.T) {
	d, ks := authKeystore(t)
	hrSecrets := filepath.Join(d.Keystore, databasesDir, "hr", secretsDir)
	oldest := saveItem(t, hrSecrets, "z")
	if _, err := ks.SetSecret("hr", "z", []byte("value z1"), []byte(authPW)); err != nil {
		t.Fatal(err)
	}
	accepted := saveItem(t, hrSecrets, "z")
	if _, err := ks.SetSecret("hr", "z", []byte("value z2"), []byte(authPW)); err != nil {
		t.Fatal(err)
	}
	accepted.putBack(t)
	v, err := ks.GetSecret("hr", "z", []byte(authPW))
	wantCorrupt(t, "hr/z rolled back", v, err, "secret 'hr/z' has been rolled back")
	if res, err := ks.AcceptRollback(); err != nil || !slices.Equal(res.PendingSecrets, []string{"hr/z"}) {
		t.Fatalf("accept: %+v, %v; want hr/z pending", res, err)
	}
	oldest.putBack(t)
	v, err = ks.GetSecret("hr", "z", []byte(authPW))
	wantCorrupt(t, "an older copy of a secret accepted pending its password", v, err, "to be opened by password")
	accepted.putBack(t)
	if v, err := ks.GetSecret("hr", "z", []byte(authPW)); err != nil || string(v) != "value z1" {
		t.Fatalf("the accepted copy: %q, %v", v, err)
	}
	oldest.putBack(t)
	v, err = ks.GetSecret("hr", "z", []byte(authPW))
	wantCorrupt(t, "an older copy of a secret accepted and read", v, err, "secret 'hr/z' has been rolled back")
}

// TestTamperItemRollback: one credential or secret put back from an older
// copy of its files (its metadata and value file together, each genuine),
// with the rest of the keystore current, is refused by every read, and so
// is one removed and put back, until the rollback is accepted; an edit of
// the metadata's commit is corruption, never accepted.
func TestTamperItemRollback(t *testing.T) {
	d, ks := authKeystore(t)
	creds := filepath.Join(d.Keystore, credentialsDir)
	appSecrets := filepath.Join(d.Keystore, databasesDir, "app", secretsDir)
	hrSecrets := filepath.Join(d.Keystore, databasesDir, "hr", secretsDir)
	a, b := saveItem(t, creds, "a"), saveItem(t, creds, "b")
	x, z := saveItem(t, appSecrets, "x"), saveItem(t, hrSecrets, "z")

	setTestCredential(t, ks, "a", "user-a", []byte("newer value a"))
	if err := ks.RemoveCredential("b"); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.SetSecret("app", "x", []byte("newer value x"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.SetSecret("hr", "z", []byte("newer value z"), []byte(authPW)); err != nil {
		t.Fatal(err)
	}
	for _, it := range []*savedItem{a, b, x, z} {
		it.putBack(t)
	}

	_, v, err := ks.GetCredential("a")
	wantCorrupt(t, "credential a rolled back", v, err, "credential 'a' has been rolled back")
	var ke *Error
	if !errors.As(err, &ke) || ke.Remedy.Kind != RemedyAcceptRollback {
		t.Fatalf("no remedy to accept: %+v", err)
	}
	_, v, err = ks.GetCredential("b")
	wantCorrupt(t, "credential b removed and put back", v, err, "credential 'b' has been rolled back")
	vals, err := ks.Resolve([]Ref{{Kind: RefCredential, Name: "a"}}, nil, nil)
	wantCorrupt(t, "resolve of a", nil, err, "has been rolled back")
	if vals != nil {
		t.Fatalf("resolve returned %q", vals)
	}
	v, err = ks.GetSecret("app", "x", nil)
	wantCorrupt(t, "secret app/x rolled back", v, err, "secret 'app/x' has been rolled back")
	v, err = ks.GetSecret("hr", "z", []byte(authPW))
	wantCorrupt(t, "secret hr/z rolled back, read by password", v, err, "secret 'hr/z' has been rolled back")
	// Nor does it leave through an export, to be imported elsewhere.
	_, err = ks.ExportDatabase("app", filepath.Join(newTestDir(t), "app.tar"))
	wantCorrupt(t, "db export", nil, err, "secret 'app/x' has been rolled back")
	// The items not rolled back still read.
	if v, err := ks.GetSecret("app", "y", nil); err != nil || string(v) != "value y" {
		t.Fatalf("y: %q, %v", v, err)
	}

	// The commit is bound to the value: an old copy whose metadata says a
	// newer commit is corruption.
	meta := filepath.Join(creds, "a.toml")
	m, err := formats.DecodeCredential(readTestFile(t, meta))
	if err != nil {
		t.Fatal(err)
	}
	raised := *m
	raised.Commit += 100
	writeTestFile(t, meta, mustEncode(t, &raised))
	_, v, err = ks.GetCredential("a")
	wantCorrupt(t, "an old copy with its commit raised", v, err, "not this item's")
	// Accepted on purpose: the older values read again, and the secret of
	// the database only a password opens is accepted when it is next read.
	// But a's commit, lowered by an edit, is not accepted: the genuine old
	// copy is still refused after the accept.
	lowered := *m
	lowered.Commit = 1
	writeTestFile(t, meta, mustEncode(t, &lowered))
	res, err := ks.AcceptRollback()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Credentials, []string{"b"}) || !slices.Equal(res.Secrets, []string{"app/x"}) || !slices.Equal(res.PendingSecrets, []string{"hr/z"}) {
		t.Fatalf("accepted %+v; want credential b, secret app/x, and hr/z pending", res)
	}
	writeTestFile(t, meta, mustEncode(t, m))
	_, v, err = ks.GetCredential("a")
	wantCorrupt(t, "the old copy, after an edited one was offered", v, err, "has been rolled back")
	if res, err = ks.AcceptRollback(); err != nil || !slices.Equal(res.Credentials, []string{"a"}) || res.Secrets != nil || res.PendingSecrets != nil {
		t.Fatalf("accept of a: %+v, %v", res, err)
	}
	for _, c := range []string{"a", "b"} {
		if _, v, err := ks.GetCredential(c); err != nil || string(v) != "value "+c {
			t.Fatalf("credential %s after accepting: %q, %v", c, v, err)
		}
	}
	for _, s := range []struct {
		db, name string
		pw       []byte
	}{{"app", "x", nil}, {"hr", "z", []byte(authPW)}} {
		if v, err := ks.GetSecret(s.db, s.name, s.pw); err != nil || string(v) != "value "+s.name {
			t.Fatalf("secret %s/%s after accepting: %q, %v", s.db, s.name, v, err)
		}
	}

	// Written again, each is remembered again, and the read that verified
	// hr/z remembered its commit: the same old copies are caught.
	z2 := saveItem(t, hrSecrets, "z")
	setTestCredential(t, ks, "a", "user-a", []byte("newest value a"))
	if _, err := ks.SetSecret("hr", "z", []byte("newest value z"), []byte(authPW)); err != nil {
		t.Fatal(err)
	}
	a.putBack(t)
	z2.putBack(t)
	_, v, err = ks.GetCredential("a")
	wantCorrupt(t, "credential a rolled back again", v, err, "has been rolled back")
	v, err = ks.GetSecret("hr", "z", []byte(authPW))
	wantCorrupt(t, "secret hr/z rolled back again", v, err, "has been rolled back")
}

// TestItemCommitAcrossRemoval: an item removed and set again is written at
// a commit past its removal's, so that it is not taken for a rollback, and
// the commits of items are the keystore's count.
func TestItemCommitAcrossRemoval(t *testing.T) {
	_, ks := authKeystore(t)
	if err := ks.RemoveSecret("app", "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.SetSecret("app", "x", []byte("again"), nil); err != nil {
		t.Fatal(err)
	}
	if v, err := ks.GetSecret("app", "x", nil); err != nil || string(v) != "again" {
		t.Fatalf("x set again after its removal: %q, %v", v, err)
	}
	sm, err := ks.loadSecretMeta("app", "x")
	if err != nil {
		t.Fatal(err)
	}
	smk, err := ks.loadSMKMeta()
	if err != nil {
		t.Fatal(err)
	}
	if sm.Commit != smk.Commit || sm.Revision != 1 {
		t.Fatalf("x set again: revision %d at commit %d; want revision 1 at the keystore's commit %d", sm.Revision, sm.Commit, smk.Commit)
	}
}

// TestItemRollbackOfImports: a batch import remembers each item it
// writes, and a database imported again from an older export is read as
// it is, not taken for a rollback of the database it replaces.
func TestItemRollbackOfImports(t *testing.T) {
	d, ks := authKeystore(t)
	creds := filepath.Join(d.Keystore, credentialsDir)
	appSecrets := filepath.Join(d.Keystore, databasesDir, "app", secretsDir)
	a, y := saveItem(t, creds, "a"), saveItem(t, appSecrets, "y")
	if _, err := ks.ImportCredentials([]ImportItem{{Name: "a", Value: []byte("imported a")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.ImportSecrets("app", []ImportItem{{Name: "y", Value: []byte("imported y")}}, nil); err != nil {
		t.Fatal(err)
	}
	a.putBack(t)
	y.putBack(t)
	_, v, err := ks.GetCredential("a")
	wantCorrupt(t, "credential a rolled back over its import", v, err, "credential 'a' has been rolled back")
	v, err = ks.GetSecret("app", "y", nil)
	wantCorrupt(t, "secret app/y rolled back over its import", v, err, "secret 'app/y' has been rolled back")

	export := filepath.Join(newTestDir(t), "hr.tar")
	if _, err := ks.ExportDatabase("hr", export); err != nil {
		t.Fatal(err)
	}
	hrSecrets := filepath.Join(d.Keystore, databasesDir, "hr", secretsDir)
	if _, err := ks.SetSecret("hr", "z", []byte("after the export"), []byte(authPW)); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.SetSecret("hr", "q", []byte("only after the export"), []byte(authPW)); err != nil {
		t.Fatal(err)
	}
	z, q := saveItem(t, hrSecrets, "z"), saveItem(t, hrSecrets, "q")
	for _, name := range []string{"z", "q"} {
		if err := ks.RemoveSecret("hr", name); err != nil {
			t.Fatal(err)
		}
	}
	if err := ks.DropDMK("hr"); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.ImportDatabase(export, "hr", nil); err != nil {
		t.Fatal(err)
	}
	if v, err := ks.GetSecret("hr", "z", []byte(authPW)); err != nil || string(v) != "value z" {
		t.Fatalf("hr/z imported again from its older export: %q, %v", v, err)
	}
	// The values it had after the export, put back under the same key, are
	// of the state the import gave up.
	z.putBack(t)
	v, err = ks.GetSecret("hr", "z", []byte(authPW))
	wantCorrupt(t, "hr/z of before the drop, over its import", v, err, "secret 'hr/z' has been rolled back")
	q.putBack(t)
	v, err = ks.GetSecret("hr", "q", []byte(authPW))
	wantCorrupt(t, "hr/q, removed before the drop", v, err, "secret 'hr/q' has been rolled back")
}

// TestImportCommitsAhead: an export whose commits are far ahead of this
// keystore's count (edited: they are not verified without the database's
// key) is refused, and the count is not used up; one ahead within reason
// raises the count past it.
func TestImportCommitsAhead(t *testing.T) {
	_, ks := authKeystore(t)
	export := filepath.Join(newTestDir(t), "app.tar")
	if _, err := ks.ExportDatabase("hr", export); err != nil {
		t.Fatal(err)
	}
	edited := filepath.Join(newTestDir(t), "edited.tar")
	rewriteTar(t, export, edited, func(name string, data []byte) []byte {
		if name == secretsDir+"/z.toml" {
			return regexp.MustCompile(`(?m)^commit = \d+$`).ReplaceAll(data, []byte(fmt.Sprintf("commit = %d", formats.MaxRevision)))
		}
		return data
	})
	_, other := newTestKeystore(t)
	if _, err := other.ImportDatabase(edited, "hr", nil); err == nil || !strings.Contains(err.Error(), "past this keystore's count") {
		t.Fatalf("import of commits far ahead: %v", err)
	}
	setTestCredential(t, other, "c", "u", []byte("v"))
	if _, err := other.ImportDatabase(export, "hr", nil); err != nil {
		t.Fatal(err)
	}
	smk, err := other.loadSMKMeta()
	if err != nil {
		t.Fatal(err)
	}
	sm, err := ks.loadSecretMeta("hr", "z")
	if err != nil {
		t.Fatal(err)
	}
	if smk.Commit <= sm.Commit {
		t.Fatalf("the count %d is not past the imported commit %d", smk.Commit, sm.Commit)
	}
}

// TestEditedCommitsNotTrusted: a commit edited into an item's metadata is
// used for nothing before it verifies: not for the next set's commit, not
// for a removal's record, and db export raises no record from an edited
// database.toml.
func TestEditedCommitsNotTrusted(t *testing.T) {
	d, ks := authKeystore(t)
	meta := filepath.Join(d.Keystore, credentialsDir, "a.toml")
	m, err := formats.DecodeCredential(readTestFile(t, meta))
	if err != nil {
		t.Fatal(err)
	}
	m.Commit = formats.MaxRevision
	writeTestFile(t, meta, mustEncode(t, m))
	setTestCredential(t, ks, "a", "user-a", []byte("set over an edit"))
	if _, v, err := ks.GetCredential("a"); err != nil || string(v) != "set over an edit" {
		t.Fatalf("a set over an edited commit: %q, %v", v, err)
	}
	a := saveItem(t, filepath.Join(d.Keystore, credentialsDir), "a")
	writeTestFile(t, meta, mustEncode(t, m))
	if err := ks.RemoveCredential("a"); err != nil {
		t.Fatal(err)
	}
	a.putBack(t)
	_, v, err := ks.GetCredential("a")
	wantCorrupt(t, "a removed over an edited commit, put back", v, err, "credential 'a' has been rolled back")

	// database.toml edited far ahead, then exported: nothing remembered.
	dbMeta := filepath.Join(d.Keystore, databasesDir, "app", databaseFile)
	genuine := readTestFile(t, dbMeta)
	dm, err := formats.DecodeDatabase(genuine)
	if err != nil {
		t.Fatal(err)
	}
	dm.Commit += 1000
	writeTestFile(t, dbMeta, mustEncode(t, dm))
	_, _ = ks.ExportDatabase("app", filepath.Join(newTestDir(t), "app.tar"))
	writeTestFile(t, dbMeta, genuine)
	if v, err := ks.GetSecret("app", "x", nil); err != nil || string(v) != "value x" {
		t.Fatalf("app/x after an export of an edited database.toml: %q, %v", v, err)
	}
}

// copyItemFiles copies the files of item name (its metadata and value
// files) from one directory to another, where its files are removed first.
func copyItemFiles(t *testing.T, from, to, name string) {
	t.Helper()
	it := saveItem(t, from, name)
	it.dir = to
	if _, err := os.Stat(to); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(to, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	it.putBack(t)
}

// TestTamperGivenUpState: after an older copy of the keystore is accepted
// on purpose, nothing of the state it replaced is taken for newer: not a
// credential or secret of it put back, not one it had created, not a
// database it had created; and the commits that follow are past all of
// it.
func TestTamperGivenUpState(t *testing.T) {
	d, ks := authKeystore(t)
	older := filepath.Join(newTestDir(t), "older")
	if err := copyTree(d.Keystore, older); err != nil {
		t.Fatal(err)
	}
	setTestCredential(t, ks, "a", "user-a", []byte("given-up a"))
	setTestCredential(t, ks, "n", "user-n", []byte("given-up n"))
	if _, err := ks.SetSecret("app", "x", []byte("given-up x"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.SetSecret("hr", "z", []byte("given-up z"), []byte(authPW)); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.CreateDMK("gone", []byte(authPW), DMKOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.SetSecret("gone", "q", []byte("given-up q"), nil); err != nil {
		t.Fatal(err)
	}
	givenUp := d.Keystore

	// The older copy, restored on purpose and accepted. An accept cut
	// short leaves the keystore refused, to be accepted again, not taken
	// for accepted: the keystore's own record is written last.
	d.Keystore = older
	ks = openTestKeystore(t, Options{Dirs: d})
	ks.setFault(func(kind, path string) error {
		if kind != "read" && strings.HasSuffix(path, ".item") {
			return errCrashed
		}
		return nil
	})
	if _, err := ks.AcceptRollback(); !errors.Is(err, errCrashed) {
		t.Fatalf("accept stopped at its first item record: %v", err)
	}
	ks.setFault(nil)
	_, v, err := ks.GetCredential("b")
	wantCorrupt(t, "b after an accept cut short", v, err, "the keystore has been rolled back")
	if _, err := ks.AcceptRollback(); err != nil {
		t.Fatal(err)
	}
	if _, v, err := ks.GetCredential("a"); err != nil || string(v) != "value a" {
		t.Fatalf("a after the accept: %q, %v", v, err)
	}

	// The state given up, put back piece by piece.
	creds := filepath.Join(credentialsDir)
	copyItemFiles(t, filepath.Join(givenUp, creds), filepath.Join(older, creds), "a")
	_, v, err = ks.GetCredential("a")
	wantCorrupt(t, "a of the state given up", v, err, "of the state given up")
	copyItemFiles(t, filepath.Join(givenUp, creds), filepath.Join(older, creds), "n")
	_, v, err = ks.GetCredential("n")
	wantCorrupt(t, "n, which only the state given up had", v, err, "credential 'n' has been rolled back")
	secrets := filepath.Join(databasesDir, "app", secretsDir)
	copyItemFiles(t, filepath.Join(givenUp, secrets), filepath.Join(older, secrets), "x")
	v, err = ks.GetSecret("app", "x", nil)
	wantCorrupt(t, "app/x of the state given up", v, err, "secret 'app/x' has been rolled back")
	// hr/z, of a database only a password opens, was accepted pending:
	// its next read takes it as it is, and from then on the state given
	// up is a rollback of it too.
	if v, err := ks.GetSecret("hr", "z", []byte(authPW)); err != nil || string(v) != "value z" {
		t.Fatalf("hr/z after the accept: %q, %v", v, err)
	}
	hrSecrets := filepath.Join(databasesDir, "hr", secretsDir)
	copyItemFiles(t, filepath.Join(givenUp, hrSecrets), filepath.Join(older, hrSecrets), "z")
	v, err = ks.GetSecret("hr", "z", []byte(authPW))
	wantCorrupt(t, "hr/z of the state given up, after its pending accept", v, err, "secret 'hr/z' has been rolled back")
	if err := copyTree(filepath.Join(givenUp, databasesDir, "gone"), filepath.Join(older, databasesDir, "gone")); err != nil {
		t.Fatal(err)
	}
	v, err = ks.GetSecret("gone", "q", nil)
	wantCorrupt(t, "database gone, which only the state given up had", v, err, "database 'gone' has been rolled back")

	// What is written from here on is past all of it.
	setTestCredential(t, ks, "a", "user-a", []byte("newest a"))
	if _, v, err := ks.GetCredential("a"); err != nil || string(v) != "newest a" {
		t.Fatalf("a set after the accept: %q, %v", v, err)
	}
}

// TestTamperGivenUpByRestore: the same after keystore restore of an older
// archive, which accepts what it restores by itself.
func TestTamperGivenUpByRestore(t *testing.T) {
	d, ks := authKeystore(t)
	archive := filepath.Join(newTestDir(t), "ks.tar")
	if _, err := ks.BackupKeystore(archive); err != nil {
		t.Fatal(err)
	}
	setTestCredential(t, ks, "a", "user-a", []byte("given-up a"))
	setTestCredential(t, ks, "n", "user-n", []byte("given-up n"))
	givenUp := d.Keystore

	d.Keystore = filepath.Join(newTestDir(t), "restored")
	if _, err := RestoreKeystoreFile(Options{Dirs: d}, archive); err != nil {
		t.Fatal(err)
	}
	ks = openTestKeystore(t, Options{Dirs: d})
	if _, v, err := ks.GetCredential("a"); err != nil || string(v) != "value a" {
		t.Fatalf("a after the restore: %q, %v", v, err)
	}
	for _, name := range []string{"a", "n"} {
		copyItemFiles(t, filepath.Join(givenUp, credentialsDir), filepath.Join(d.Keystore, credentialsDir), name)
		_, v, err := ks.GetCredential(name)
		wantCorrupt(t, name+" of the state given up", v, err, "credential '"+name+"' has been rolled back")
	}
}

// TestFormat1CopyAcceptedAndUpgraded: a copy of the keystore from before
// its upgrade, put back on purpose and accepted (or restored), then
// upgraded again, reads: its items, at commit 0, are not taken for
// rollbacks of what the upgraded keystore wrote since; and what that
// keystore wrote, put back, still is one.
func TestFormat1CopyAcceptedAndUpgraded(t *testing.T) {
	d, ks := newFormat1Keystore(t)
	setTestCredential(t, ks, "a", "user-a", []byte("value a"))
	if _, err := ks.CreateDMK("app", []byte(authPW), DMKOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.SetSecret("app", "x", []byte("value x"), nil); err != nil {
		t.Fatal(err)
	}
	older := filepath.Join(newTestDir(t), "older")
	if err := copyTree(d.Keystore, older); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Upgrade(nil); err != nil {
		t.Fatal(err)
	}
	setTestCredential(t, ks, "a", "user-a", []byte("upgraded a"))
	if _, err := ks.SetSecret("app", "x", []byte("upgraded x"), nil); err != nil {
		t.Fatal(err)
	}
	upgraded := d.Keystore

	d.Keystore = older
	ks = openTestKeystore(t, Options{Dirs: d})
	if _, err := ks.AcceptRollback(); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Upgrade(nil); err != nil {
		t.Fatal(err)
	}
	if _, v, err := ks.GetCredential("a"); err != nil || string(v) != "value a" {
		t.Fatalf("a, upgraded again: %q, %v", v, err)
	}
	if v, err := ks.GetSecret("app", "x", nil); err != nil || string(v) != "value x" {
		t.Fatalf("app/x, upgraded again: %q, %v", v, err)
	}
	copyItemFiles(t, filepath.Join(upgraded, credentialsDir), filepath.Join(older, credentialsDir), "a")
	_, v, err := ks.GetCredential("a")
	wantCorrupt(t, "a of the upgraded keystore given up", v, err, "has been rolled back")
}

// TestRestoreOfEditedArchive: keystore restore remembers no count it has
// not verified: an archive whose smk.toml was edited far ahead is not
// accepted, nor is an item's commit above its smk.toml's, and after the
// genuine archive is restored the keystore still writes.
func TestRestoreOfEditedArchive(t *testing.T) {
	d, ks := authKeystore(t)
	archive := filepath.Join(newTestDir(t), "ks.tar")
	if _, err := ks.BackupKeystore(archive); err != nil {
		t.Fatal(err)
	}
	far := regexp.MustCompile(`(?m)^commit = \d+$`)
	edit := func(file string) string {
		out := filepath.Join(newTestDir(t), "edited.tar")
		rewriteTar(t, archive, out, func(name string, data []byte) []byte {
			if name == file {
				return far.ReplaceAll(data, []byte(fmt.Sprintf("commit = %d", formats.MaxRevision)))
			}
			return data
		})
		return out
	}
	for _, file := range []string{smkFile, credentialsDir + "/a.toml"} {
		d.Keystore = filepath.Join(newTestDir(t), "restored")
		if _, err := RestoreKeystoreFile(Options{Dirs: d}, edit(file)); err != nil {
			t.Fatalf("restore of an archive with %s edited: %v", file, err)
		}
	}
	d.Keystore = filepath.Join(newTestDir(t), "restored")
	if _, err := RestoreKeystoreFile(Options{Dirs: d}, archive); err != nil {
		t.Fatal(err)
	}
	ks = openTestKeystore(t, Options{Dirs: d})
	setTestCredential(t, ks, "a", "user-a", []byte("after the restores"))
	setTestCredential(t, ks, "b", "user-b", []byte("after the restores"))
	if _, v, err := ks.GetCredential("a"); err != nil || string(v) != "after the restores" {
		t.Fatalf("a after the restores: %q, %v", v, err)
	}
}

// TestTamperImportCollision: two keystores count their commits apart, and
// may give one number to two databases of one name. A database imported
// from the other keystore, over one of that name dropped here, is
// remembered with its master key: the dropped one, put back, is not taken
// for it, though its commit is the same.
func TestTamperImportCollision(t *testing.T) {
	dl, local := newTestKeystore(t)
	_, other := newTestKeystore(t)
	for _, ks := range []*Keystore{local, other} {
		if _, err := ks.CreateDMK("d", []byte(authPW), DMKOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := ks.SetSecret("d", "s", []byte("value of "+ks.ID()), nil); err != nil {
			t.Fatal(err)
		}
	}
	ml, _ := local.loadDatabaseMeta("d")
	mo, _ := other.loadDatabaseMeta("d")
	if ml == nil || mo == nil || ml.Commit != mo.Commit || ml.Thumbprint == mo.Thumbprint {
		t.Fatalf("the two databases are not at one commit with two keys: %+v, %+v", ml, mo)
	}
	dir, saved := saveDatabase(t, dl, "d")
	export := filepath.Join(newTestDir(t), "d.tar")
	if _, err := other.ExportDatabase("d", export); err != nil {
		t.Fatal(err)
	}
	if err := local.RemoveSecret("d", "s"); err != nil {
		t.Fatal(err)
	}
	if err := local.DropDMK("d"); err != nil {
		t.Fatal(err)
	}
	if _, err := local.ImportDatabase(export, "d", nil); err != nil {
		t.Fatal(err)
	}
	if v, err := local.GetSecret("d", "s", []byte(authPW)); err != nil || string(v) != "value of "+other.ID() {
		t.Fatalf("the imported database: %q, %v", v, err)
	}
	for _, n := range dirEntries(t, dir) {
		if n != secretsDir {
			if err := os.Remove(filepath.Join(dir, n)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, n := range dirEntries(t, filepath.Join(dir, secretsDir)) {
		if err := os.Remove(filepath.Join(dir, secretsDir, n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := copyTree(saved, dir); err != nil {
		t.Fatal(err)
	}
	v, err := local.GetSecret("d", "s", nil)
	wantCorrupt(t, "the dropped database put back over the import", v, err, "of another master key")
}

// TestParseRecord: what a record in a protector directory may hold, and
// what remembers nothing (a record keytree cannot read is as none).
func TestParseRecord(t *testing.T) {
	th := strings.Repeat("ab", 20)
	for _, c := range []struct {
		in   string
		want record
		ok   bool
	}{
		{"7\n", record{accepted: 7, seen: 7}, true},
		{"3 9\n", record{accepted: 3, seen: 9}, true},
		{"0 9\n", record{accepted: 0, seen: 9}, true},
		{"P 9\n", record{seen: 9, pending: true}, true},
		{"P 9 4\n", record{seen: 9, pending: true, pinned: true, pin: 4}, true},
		{"P 9 0\n", record{seen: 9, pending: true, pinned: true, pin: 0}, true},
		{"P 9 10\n", record{}, false},
		{"P 9 -1\n", record{}, false},
		{"P 9 4 5\n", record{}, false},
		{"3 9 " + th + "\n", record{accepted: 3, seen: 9, thumbprint: th}, true},
		{"7", record{}, false},
		{"0\n", record{}, false},
		{"0 0\n", record{}, false},
		{"9 3\n", record{}, false},
		{"-1\n", record{}, false},
		{"3 9 5\n", record{}, false},
		{"P 9 " + th + "\n", record{}, false},
		{"P\n", record{}, false},
		{fmt.Sprintf("%d\n", formats.MaxRevision+1), record{}, false},
		{"\n", record{}, false},
		{"garbage\n", record{}, false},
	} {
		got, ok := parseRecord([]byte(c.in))
		if ok != c.ok || ok && got != c.want {
			t.Errorf("parseRecord(%q) = %+v, %v; want %+v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
	// What a commit is against a record.
	r := record{accepted: 3, seen: 9}
	for c, rolled := range map[int]bool{2: true, 3: false, 4: true, 9: true, 10: false} {
		if r.rolledBack(c, "") != rolled {
			t.Errorf("commit %d against %+v: rolled back %v", c, r, !rolled)
		}
	}
	if pinned := (record{accepted: 3, seen: 9, thumbprint: th}); !pinned.rolledBack(3, strings.Repeat("cd", 20)) || pinned.rolledBack(3, th) {
		t.Errorf("a record naming a key does not tell that key's commit from another's")
	}
	// A pending record accepts only the commit it was accepted at, or one
	// above all it has seen; one without a commit, any.
	p := record{seen: 9, pending: true, pinned: true, pin: 4}
	for c, rolled := range map[int]bool{0: true, 3: true, 4: false, 5: true, 9: true, 10: false} {
		if p.rolledBack(c, "") != rolled {
			t.Errorf("commit %d against %+v: rolled back %v", c, p, !rolled)
		}
	}
	if any := (record{seen: 9, pending: true}); any.rolledBack(2, "") || any.rolledBack(9, "") {
		t.Errorf("a pending record without a commit refuses one")
	}
}
