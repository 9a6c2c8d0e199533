package keystore

import (
	"errors"
	"os"
	"path/filepath"
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
	if _, err := ks.SetSecret("hr", "z", []byte("after the export"), []byte(authPW)); err != nil {
		t.Fatal(err)
	}
	if err := ks.RemoveSecret("hr", "z"); err != nil {
		t.Fatal(err)
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
}
