package keystore

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/keytree-dev/keytree/formats"
)

// The tamper suite of format 2 (docs/security.md, section 5.1): someone who
// can write the keystore, but holds no key, swaps, copies, grafts, edits
// and rolls back files; keytree reports corruption or a rollback and never
// returns a wrong value.

const authPW = "Database-Passw0rd-1"

// authKeystore makes a keystore of format 2 with credentials a and b,
// database app (SMK-encrypted DMK) with secrets x and y, and database hr
// (password only, the same password) with secret z.
func authKeystore(t *testing.T) (Dirs, *Keystore) {
	t.Helper()
	d, ks := newTestKeystore(t)
	setTestCredential(t, ks, "a", "user-a", []byte("value a"))
	setTestCredential(t, ks, "b", "user-b", []byte("value b"))
	for _, db := range []struct {
		name  string
		noSMK bool
	}{{"app", false}, {"hr", true}} {
		if _, err := ks.CreateDMK(db.name, []byte(authPW), DMKOptions{NoSMKEncryption: db.noSMK}); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []struct{ db, name string }{{"app", "x"}, {"app", "y"}, {"hr", "z"}} {
		var pw []byte
		if s.db == "hr" {
			pw = []byte(authPW)
		}
		if _, err := ks.SetSecret(s.db, s.name, []byte("value "+s.name), pw); err != nil {
			t.Fatal(err)
		}
	}
	return d, ks
}

// only returns the one file of dir whose name starts with prefix.
func only(t *testing.T, dir, prefix string) string {
	t.Helper()
	var found []string
	for _, n := range dirEntries(t, dir) {
		if strings.HasPrefix(n, prefix) && strings.HasSuffix(n, ".age") {
			found = append(found, filepath.Join(dir, n))
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s/%s*: %v", dir, prefix, found)
	}
	return found[0]
}

// wantCorrupt checks that a read failed as corruption, naming want, and
// returned nothing.
func wantCorrupt(t *testing.T, what string, value []byte, err error, want string) {
	t.Helper()
	if value != nil || !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), want) {
		t.Fatalf("%s: value %q, error %v; want corruption saying %q", what, value, err, want)
	}
}

func TestTamperSwappedValues(t *testing.T) {
	d, ks := authKeystore(t)
	creds := filepath.Join(d.Keystore, credentialsDir)
	a, b := only(t, creds, "a."), only(t, creds, "b.")
	dataA, dataB := readTestFile(t, a), readTestFile(t, b)

	// One credential's value over another's.
	writeTestFile(t, a, dataB)
	_, v, err := ks.GetCredential("a")
	wantCorrupt(t, "credential a holding b's value", v, err, `holds the value of credential "b"`)
	vals, err := ks.Resolve([]Ref{{Kind: RefCredential, Name: "a"}}, nil, nil)
	wantCorrupt(t, "resolve of a", nil, err, `credential "b"`)
	if vals != nil {
		t.Fatalf("resolve returned %q", vals)
	}

	// A DMK's SMK encryption over a credential's value: credential get
	// would print the database's key.
	dmk := only(t, filepath.Join(d.Keystore, databasesDir, "app"), "smk.")
	writeTestFile(t, a, readTestFile(t, dmk))
	_, v, err = ks.GetCredential("a")
	wantCorrupt(t, "credential a holding a DMK", v, err, "not bound to this item")
	writeTestFile(t, a, dataA)

	// One secret's value over another's, in one database.
	secrets := filepath.Join(d.Keystore, databasesDir, "app", secretsDir)
	x, y := only(t, secrets, "x."), only(t, secrets, "y.")
	writeTestFile(t, x, readTestFile(t, y))
	v, err = ks.GetSecret("app", "x", nil)
	wantCorrupt(t, "secret x holding y's value", v, err, `holds the value of secret "app/y"`)

	// A credential's value as a secret's: another key opens nothing.
	writeTestFile(t, x, dataB)
	v, err = ks.GetSecret("app", "x", nil)
	if v != nil || err == nil {
		t.Fatalf("secret x holding a credential's value: %q, %v", v, err)
	}

	// Nothing was returned, and the untouched items still read.
	if _, v, err := ks.GetCredential("b"); err != nil || string(v) != "value b" {
		t.Fatalf("b: %q, %v", v, err)
	}
	if v, err := ks.GetSecret("app", "y", nil); err != nil || string(v) != "value y" {
		t.Fatalf("y: %q, %v", v, err)
	}
}

func TestTamperOldRevisionAndIdentity(t *testing.T) {
	d, ks := authKeystore(t)
	creds := filepath.Join(d.Keystore, credentialsDir)
	old := readTestFile(t, only(t, creds, "a."))
	setTestCredential(t, ks, "a", "user-a", []byte("new value a"))
	// The old revision's file, put back under the new revision's name.
	writeTestFile(t, only(t, creds, "a."), old)
	_, v, err := ks.GetCredential("a")
	wantCorrupt(t, "an old revision's value", v, err, "revision 1")

	setTestCredential(t, ks, "a", "user-a", []byte("value a"))
	// The identity is bound to the value: an edit of it is corruption.
	p := filepath.Join(creds, "a.toml")
	writeTestFile(t, p, bytes.Replace(readTestFile(t, p), []byte(`"user-a"`), []byte(`"attacker"`), 1))
	c, v, err := ks.GetCredential("a")
	wantCorrupt(t, "an edited identity", v, err, "identity in its metadata is not the one its value was stored with")
	if c != nil {
		t.Fatalf("an edited identity was returned: %+v", c)
	}
	if _, err := ks.Resolve([]Ref{{Kind: RefCredentialIdentity, Name: "a"}, {Kind: RefCredential, Name: "a"}}, nil, nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("resolve of an edited identity with its value: %v", err)
	}
	// The identity alone (keytree://credential/a/identity) is checked
	// against the value's file too.
	if vals, err := ks.Resolve([]Ref{{Kind: RefCredentialIdentity, Name: "a"}}, nil, nil); !errors.Is(err, ErrCorrupt) || vals != nil {
		t.Fatalf("resolve of an edited identity alone: %q, %v", vals, err)
	}
	// credential list does not show it either.
	list, err := ks.ListCredentials()
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "identity in its metadata is not the one") {
		t.Fatalf("credential list with an edited identity: %+v, %v; want corruption", list, err)
	}
	for _, c := range list {
		if c.Identity == "attacker" {
			t.Fatalf("credential list returned the edited identity: %+v", c)
		}
	}
	writeTestFile(t, p, bytes.Replace(readTestFile(t, p), []byte(`"attacker"`), []byte(`"user-a"`), 1))
	if list, err := ks.ListCredentials(); err != nil || len(list) != 2 || list[0].Identity != "user-a" || list[1].Identity != "user-b" || list[0].Unchecked || list[1].Unchecked {
		t.Fatalf("credential list after the edit was undone: %+v, %v", list, err)
	}
}

func TestTamperSMKMetadata(t *testing.T) {
	for _, edit := range []struct{ name, from, to string }{
		{"machine protection turned on", "machine_protection = false", "machine_protection = true"},
		{"machine protection turned off", "machine_protection = true", "machine_protection = false"},
		{"commit count raised", "commit = ", "commit = 9"},
	} {
		t.Run(edit.name, func(t *testing.T) {
			d, ks := authKeystore(t)
			if edit.from == "machine_protection = false" {
				if _, err := ks.SetMachineProtection(false); err != nil {
					t.Fatal(err)
				}
			}
			p := filepath.Join(d.Keystore, smkFile)
			data := readTestFile(t, p)
			edited := bytes.Replace(data, []byte(edit.from), []byte(edit.to), 1)
			if bytes.Equal(edited, data) {
				t.Fatalf("no %q in %s", edit.from, data)
			}
			writeTestFile(t, p, edited)
			before := treeSnapshot(t, d.Keystore)
			_, v, err := ks.GetCredential("a")
			wantCorrupt(t, "credential get", v, err, "does not verify under the service master key")
			if _, err := ks.VerifySMK(); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("smk verify: %v", err)
			}
			// Nothing obeyed: no encryption re-created or removed.
			after := treeSnapshot(t, d.Keystore)
			for name := range before {
				if _, ok := after[name]; !ok && !strings.HasPrefix(name, "tmp") {
					t.Fatalf("%s went", name)
				}
			}
			for name := range after {
				if _, ok := before[name]; !ok && !strings.HasPrefix(name, "tmp") && name != "lock" && !strings.HasPrefix(name, "errorlog") {
					t.Fatalf("%s appeared", name)
				}
			}
		})
	}
}

func TestTamperGraftedDMK(t *testing.T) {
	d, ks := authKeystore(t)
	// A third database, password only, sharing hr's password.
	if _, err := ks.CreateDMK("ops", []byte(authPW), DMKOptions{NoSMKEncryption: true}); err != nil {
		t.Fatal(err)
	}
	hrDir, opsDir := filepath.Join(d.Keystore, databasesDir, "hr"), filepath.Join(d.Keystore, databasesDir, "ops")
	hrMeta, err := ks.loadDatabaseMeta("hr")
	if err != nil {
		t.Fatal(err)
	}
	opsMeta, err := ks.loadDatabaseMeta("ops")
	if err != nil {
		t.Fatal(err)
	}

	// ops's password encryption copied into hr, and hr's database.toml
	// edited to name ops's key.
	opsPW := only(t, opsDir, "password.")
	writeTestFile(t, filepath.Join(hrDir, filepath.Base(opsPW)), readTestFile(t, opsPW))
	edited := *hrMeta
	edited.Thumbprint = opsMeta.Thumbprint
	edited.Passwords = opsMeta.Passwords
	writeTestFile(t, filepath.Join(hrDir, databaseFile), mustEncode(t, &edited))
	_, err = ks.SetSecret("hr", "new", []byte("to the wrong key"), []byte(authPW))
	wantCorrupt(t, "secret set in a grafted database", nil, err, "does not verify under the database master key")

	// ops's whole database.toml, renamed, in hr's place.
	whole := *opsMeta
	whole.Name = "hr"
	writeTestFile(t, filepath.Join(hrDir, databaseFile), mustEncode(t, &whole))
	_, err = ks.SetSecret("hr", "new", []byte("to the wrong key"), []byte(authPW))
	wantCorrupt(t, "secret set with another database's metadata", nil, err, "does not verify under the database master key")

	// database.toml put back to format 1, without its MAC.
	v1 := *hrMeta
	v1.Version, v1.Commit, v1.MAC, v1.PasswordOnly = formats.Version, 0, "", false
	writeTestFile(t, filepath.Join(hrDir, databaseFile), mustEncode(t, &v1))
	v, err := ks.GetSecret("hr", "z", []byte(authPW))
	wantCorrupt(t, "a database put back to format 1", v, err, "is of format 1, in a keystore of format 2")
}

// TestTamperSMKEncryptionPutBack: a database's SMK encryption dropped, and
// a copy of it put back with smk_encryption = true, so that the database
// would open without its password again. The drop signs password_only,
// and an SMK encryption is never used while it is set.
func TestTamperSMKEncryptionPutBack(t *testing.T) {
	d, ks := authKeystore(t)
	appDir := filepath.Join(d.Keystore, databasesDir, "app")
	kept := only(t, appDir, "smk.")
	keptBlob := readTestFile(t, kept)
	if m, err := ks.loadDatabaseMeta("hr"); err != nil || !m.PasswordOnly {
		t.Fatalf("hr, created without an SMK encryption: %+v, %v; want password_only", m, err)
	}
	if m, err := ks.loadDatabaseMeta("app"); err != nil || m.PasswordOnly {
		t.Fatalf("app, created with an SMK encryption: %+v, %v; want no password_only", m, err)
	}

	if err := ks.DropDMKEncryption("app", BySMK, nil); err != nil {
		t.Fatal(err)
	}
	dropped, err := ks.loadDatabaseMeta("app")
	if err != nil || !dropped.PasswordOnly || dropped.SMKEncryption {
		t.Fatalf("after the drop: %+v, %v; want password_only and no smk_encryption", dropped, err)
	}
	if v, err := ks.GetSecret("app", "x", nil); v != nil || !isMsg(err, MsgDMKNotOpen) {
		t.Fatalf("get without a password after the drop: %q, %v; want 15581", v, err)
	}
	genuine := readTestFile(t, filepath.Join(appDir, databaseFile))

	// The copy put back, smk_encryption edited to true.
	writeTestFile(t, kept, keptBlob)
	edit := func(from, to string) []byte {
		t.Helper()
		if !strings.Contains(string(genuine), from) {
			t.Fatalf("database.toml has no %q:\n%s", from, genuine)
		}
		return []byte(strings.Replace(string(genuine), from, to, 1))
	}
	writeTestFile(t, filepath.Join(appDir, databaseFile), edit("smk_encryption = false", "smk_encryption = true"))
	v, err := ks.GetSecret("app", "x", nil)
	wantCorrupt(t, "an SMK encryption put back", v, err, "password_only is set, yet smk_encryption is true")

	// password_only removed as well: the MAC covers it.
	edited := *dropped
	edited.SMKEncryption, edited.PasswordOnly = true, false
	writeTestFile(t, filepath.Join(appDir, databaseFile), mustEncode(t, &edited))
	v, err = ks.GetSecret("app", "x", nil)
	wantCorrupt(t, "an SMK encryption put back, password_only removed", v, err, "does not verify under the database master key")
	_, err = ks.SetSecret("app", "w", []byte("to a tampered database"), nil)
	wantCorrupt(t, "secret set with password_only removed", nil, err, "does not verify under the database master key")

	// The genuine database.toml back, the copy left in place: the copy is
	// not used, and the password still opens the key.
	writeTestFile(t, filepath.Join(appDir, databaseFile), genuine)
	if v, err := ks.GetSecret("app", "x", nil); v != nil || !isMsg(err, MsgDMKNotOpen) {
		t.Fatalf("get without a password, the copy in place: %q, %v; want 15581", v, err)
	}
	if v, err := ks.GetSecret("app", "x", []byte(authPW)); err != nil || string(v) != "value x" {
		t.Fatalf("get by password: %q, %v", v, err)
	}

	// Adding the SMK encryption again, with the key open, clears it.
	if err := ks.AddDMKEncryption("app", BySMK, nil, DMKOptions{OpenPassword: []byte(authPW)}); err != nil {
		t.Fatal(err)
	}
	if m, err := ks.loadDatabaseMeta("app"); err != nil || m.PasswordOnly || !m.SMKEncryption {
		t.Fatalf("after adding the SMK encryption again: %+v, %v", m, err)
	}
	if v, err := ks.GetSecret("app", "x", nil); err != nil || string(v) != "value x" {
		t.Fatalf("get through the SMK again: %q, %v", v, err)
	}
}

// TestTamperForcedUnsignedDrop: someone who can write the keystore makes
// the SMK encryption fail to open before the user drops it, so that the
// drop could not be signed. The drop then needs the password, and is
// signed with it; a copy put back is never used.
func TestTamperForcedUnsignedDrop(t *testing.T) {
	for _, damage := range []string{"removed", "garbled"} {
		t.Run(damage, func(t *testing.T) {
			d, ks := authKeystore(t)
			appDir := filepath.Join(d.Keystore, databasesDir, "app")
			kept := only(t, appDir, "smk.")
			keptBlob := readTestFile(t, kept)
			if damage == "removed" {
				if err := os.Remove(kept); err != nil {
					t.Fatal(err)
				}
			} else {
				writeTestFile(t, kept, []byte("age-encryption.org/v1\ngarbage\n"))
			}
			if err := ks.DropDMKEncryption("app", BySMK, nil); !isMsg(err, MsgDMKNotOpen) {
				t.Fatalf("drop without a password, the encryption %s: %v; want 15581", damage, err)
			}
			if m, err := ks.loadDatabaseMeta("app"); err != nil || !m.SMKEncryption || m.PasswordOnly {
				t.Fatalf("a refused drop changed database.toml: %+v, %v", m, err)
			}
			if err := ks.DropDMKEncryption("app", BySMK, []byte(authPW)); err != nil {
				t.Fatal(err)
			}
			if m, err := ks.loadDatabaseMeta("app"); err != nil || m.SMKEncryption || !m.PasswordOnly {
				t.Fatalf("after the drop by password: %+v, %v; want password_only", m, err)
			}
			writeTestFile(t, kept, keptBlob)
			if v, err := ks.GetSecret("app", "x", nil); v != nil || !isMsg(err, MsgDMKNotOpen) {
				t.Fatalf("get without a password, the copy put back: %q, %v; want 15581", v, err)
			}
		})
	}
}

// TestTamperFlagSealsNoKey: smk_encryption edited on (it is not signed),
// or password_only edited away, never has a command that holds the key by
// password seal a new key to the SMK: not dmk regenerate after db import
// into a keystore that never held the database, and not dmk regenerate
// --force past a database.toml that does not verify.
func TestTamperFlagSealsNoKey(t *testing.T) {
	_, src := authKeystore(t)
	export := filepath.Join(newTestDir(t), "app.tar")
	if _, err := src.ExportDatabase("app", export); err != nil {
		t.Fatal(err)
	}
	d, ks := newTestKeystore(t)
	if _, err := ks.ImportDatabase(export, "", nil); err != nil {
		t.Fatal(err)
	}
	meta := filepath.Join(d.Keystore, databasesDir, "app", databaseFile)
	flip := func() {
		t.Helper()
		data := readTestFile(t, meta)
		if !bytes.Contains(data, []byte("smk_encryption = false")) {
			t.Fatalf("database.toml: %s", data)
		}
		writeTestFile(t, meta, bytes.Replace(data, []byte("smk_encryption = false"), []byte("smk_encryption = true"), 1))
	}
	flip()
	if _, err := ks.RegenerateDMK("app", []byte("Regenerated-Passw0rd-2"), DMKOptions{OpenPassword: []byte(authPW)}); err != nil {
		t.Fatal(err)
	}
	m, err := ks.loadDatabaseMeta("app")
	if err != nil || m.SMKEncryption || !m.PasswordOnly {
		t.Fatalf("regenerate after the flag was edited on: %+v, %v; want no SMK encryption", m, err)
	}
	if v, err := ks.GetSecret("app", "x", nil); v != nil || !isMsg(err, MsgDMKNotOpen) {
		t.Fatalf("get without a password: %q, %v; want 15581", v, err)
	}

	// A database created without an SMK encryption, password_only edited
	// away and the flag on: --force goes past the MAC, and still seals
	// nothing to the SMK.
	if _, err := ks.CreateDMK("pay", []byte(authPW), DMKOptions{NoSMKEncryption: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.SetSecret("pay", "s", []byte("value s"), []byte(authPW)); err != nil {
		t.Fatal(err)
	}
	payMeta := filepath.Join(d.Keystore, databasesDir, "pay", databaseFile)
	data := readTestFile(t, payMeta)
	data = bytes.Replace(data, []byte("smk_encryption = false"), []byte("smk_encryption = true"), 1)
	data = bytes.Replace(data, []byte("password_only = true\n"), nil, 1)
	writeTestFile(t, payMeta, data)
	_, _ = ks.RegenerateDMK("pay", []byte("Regenerated-Passw0rd-2"), DMKOptions{OpenPassword: []byte(authPW), Force: true})
	for _, n := range dirEntries(t, filepath.Join(d.Keystore, databasesDir, "pay")) {
		if strings.HasPrefix(n, "smk.") {
			t.Fatalf("regenerate --force sealed the key to the SMK: %s", n)
		}
	}
	if v, err := ks.GetSecret("pay", "s", nil); v != nil || err == nil {
		t.Fatalf("pay opened without a password: %q, %v", v, err)
	}
}

func TestTamperRollback(t *testing.T) {
	d, ks := authKeystore(t)
	saved := filepath.Join(newTestDir(t), "copy")
	if err := copyTree(d.Keystore, saved); err != nil {
		t.Fatal(err)
	}
	setTestCredential(t, ks, "a", "user-a", []byte("newer value a"))

	// The older copy, put back: the same keystore (its id) under the same
	// account and machine, wherever it lies.
	d.Keystore = saved
	ks = openTestKeystore(t, Options{Dirs: d})
	_, v, err := ks.GetCredential("a")
	wantCorrupt(t, "a rolled-back keystore", v, err, "has been rolled back")
	var ke *Error
	if !errors.As(err, &ke) || ke.Remedy.Kind != RemedyAcceptRollback {
		t.Fatalf("no remedy to accept: %+v", err)
	}
	if _, err := ks.GetSecret("app", "x", nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("secret get in a rolled-back keystore: %v", err)
	}
	// A read by password opens the SMK too, when it can, to compare.
	if v, err := ks.GetSecret("hr", "z", []byte(authPW)); !errors.Is(err, ErrCorrupt) || v != nil {
		t.Fatalf("secret get by password in a rolled-back keystore: %q, %v", v, err)
	}

	// smk.toml put back to format 1: a rollback too.
	p := filepath.Join(d.Keystore, smkFile)
	m, err := formats.DecodeSMK(readTestFile(t, p))
	if err != nil {
		t.Fatal(err)
	}
	m1 := *m
	m1.Version, m1.Commit, m1.MAC = formats.Version, 0, ""
	writeTestFile(t, p, mustEncode(t, &m1))
	_, v, err = ks.GetCredential("a")
	wantCorrupt(t, "smk.toml of format 1", v, err, "format 1, which has no commit count")
	writeTestFile(t, p, mustEncode(t, m))

	// Accepted on purpose: the older values read again.
	res, err := ks.AcceptRollback()
	if err != nil || res.Commit >= res.Before {
		t.Fatalf("accept: %+v, %v", res, err)
	}
	if _, v, err := ks.GetCredential("a"); err != nil || string(v) != "value a" {
		t.Fatalf("after accepting: %q, %v", v, err)
	}
	// Every write counts, past every commit seen before the accept, so
	// that none of the state given up is taken for a newer one: the next
	// copy is caught too.
	setTestCredential(t, ks, "b", "user-b", []byte("v"))
	if m, err := ks.loadSMKMeta(); err != nil || m.Commit != res.Before+1 {
		t.Fatalf("commit after a credential set: %+v, %v (had seen %d)", m, err, res.Before)
	}
}

// saveDatabase copies database db's directory aside, and returns the
// directory and the copy.
func saveDatabase(t *testing.T, d Dirs, db string) (dir, saved string) {
	t.Helper()
	dir = filepath.Join(d.Keystore, databasesDir, db)
	saved = filepath.Join(newTestDir(t), db)
	if err := copyTree(dir, saved); err != nil {
		t.Fatal(err)
	}
	return dir, saved
}

// TestTamperDatabaseRollback: one database put back from an older copy of
// its directory, with the rest of the keystore current, is refused by
// every route that opens its key (a password dropped since, which opens it,
// included) and by every write, until it is accepted; so is a database
// dropped and put back.
func TestTamperDatabaseRollback(t *testing.T) {
	d, ks := authKeystore(t)
	const leaked = "Leaked-Passw0rd-2"
	if err := ks.AddDMKEncryption("app", ByPassword, []byte(leaked), DMKOptions{}); err != nil {
		t.Fatal(err)
	}
	app, saved := saveDatabase(t, d, "app")
	// The leaked password is dropped, and the key regenerated.
	if err := ks.DropDMKEncryption("app", ByPassword, []byte(leaked)); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.RegenerateDMK("app", []byte(authPW), DMKOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.SetSecret("app", "x", []byte("newer value x"), nil); err != nil {
		t.Fatal(err)
	}
	// putBack makes directory to what from holds: its files removed one
	// by one (os.RemoveAll fails under Wine), from's copied in.
	putBack := func(from, to string) {
		t.Helper()
		err := filepath.WalkDir(to, func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			return os.Remove(p)
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		if err := copyTree(from, to); err != nil {
			t.Fatal(err)
		}
	}
	putBack(saved, app)
	before := treeSnapshot(t, d.Keystore)

	v, err := ks.GetSecret("app", "x", nil)
	wantCorrupt(t, "secret get of a rolled-back database", v, err, "database 'app' has been rolled back")
	var ke *Error
	if !errors.As(err, &ke) || ke.Remedy.Kind != RemedyAcceptRollback {
		t.Fatalf("no remedy to accept: %+v", err)
	}
	v, err = ks.GetSecret("app", "x", []byte(leaked))
	wantCorrupt(t, "secret get by the dropped password", v, err, "has been rolled back")
	_, err = ks.SetSecret("app", "w", []byte("into the old key"), nil)
	wantCorrupt(t, "secret set", nil, err, "has been rolled back")
	// A write that opens the key by password alone, and commits
	// database.toml, is refused before its commit.
	err = ks.DropDMKEncryption("app", ByPassword, []byte(authPW))
	wantCorrupt(t, "dmk drop-encryption", nil, err, "has been rolled back")
	if after := treeSnapshot(t, d.Keystore); !maps.EqualFunc(before, after, func(a, b string) bool { return a == b }) {
		t.Fatalf("the refused commands changed the keystore")
	}
	// The other database is not affected.
	if v, err := ks.GetSecret("hr", "z", []byte(authPW)); err != nil || string(v) != "value z" {
		t.Fatalf("the other database: %q, %v", v, err)
	}
	// Nor does it leave through an export, to be imported elsewhere.
	_, err = ks.ExportDatabase("app", filepath.Join(newTestDir(t), "app.tar"))
	wantCorrupt(t, "db export", nil, err, "has been rolled back")

	// Accepting takes a database's commit only from a database.toml that
	// verifies: one edited to an older commit is not accepted, and the
	// genuine old copy put back after it is still refused.
	meta := filepath.Join(app, databaseFile)
	m, err := formats.DecodeDatabase(readTestFile(t, meta))
	if err != nil {
		t.Fatal(err)
	}
	m.Commit = 0
	writeTestFile(t, meta, mustEncode(t, m))
	if res, err := ks.AcceptRollback(); err != nil || res.Databases != nil || res.Pending != nil {
		t.Fatalf("accept of an edited database.toml: %+v, %v", res, err)
	}
	putBack(saved, app)
	v, err = ks.GetSecret("app", "x", []byte(leaked))
	wantCorrupt(t, "the old copy, after an edited one was offered", v, err, "has been rolled back")
	// smk_encryption is not signed: edited to false, it does not make the
	// accept take the database unverified (its SMK encryption is there).
	m, err = formats.DecodeDatabase(readTestFile(t, meta))
	if err != nil {
		t.Fatal(err)
	}
	m.SMKEncryption = false
	writeTestFile(t, meta, mustEncode(t, m))
	m.Commit = 0
	writeTestFile(t, meta, mustEncode(t, m))
	if res, err := ks.AcceptRollback(); err != nil || res.Databases != nil || res.Pending != nil {
		t.Fatalf("accept of an edited database.toml without smk_encryption: %+v, %v", res, err)
	}
	putBack(saved, app)

	// Accepted on purpose: the older database reads again, and its next
	// change raises the floor past it.
	if res, err := ks.AcceptRollback(); err != nil || !slices.Equal(res.Databases, []string{"app"}) || res.Pending != nil {
		t.Fatalf("accept: %+v, %v", res, err)
	}
	if v, err := ks.GetSecret("app", "x", nil); err != nil || string(v) != "value x" {
		t.Fatalf("after accepting: %q, %v", v, err)
	}
	_, accepted := saveDatabase(t, d, "app")
	if err := ks.DropDMKEncryption("app", ByPassword, []byte(leaked)); err != nil {
		t.Fatal(err)
	}
	putBack(accepted, app)
	v, err = ks.GetSecret("app", "x", []byte(leaked))
	wantCorrupt(t, "the accepted copy put back again", v, err, "has been rolled back")
	if _, err := ks.AcceptRollback(); err != nil {
		t.Fatal(err)
	}

	// A database only a password opens: accepted at its next open, with
	// its database.toml verified then, and only at the commit it had when
	// it was accepted: an older copy put in its place before that open is
	// still a rollback.
	hr, oldestHR := saveDatabase(t, d, "hr")
	if err := ks.AddDMKEncryption("hr", ByPassword, []byte(leaked), DMKOptions{OpenPassword: []byte(authPW)}); err != nil {
		t.Fatal(err)
	}
	_, savedHR := saveDatabase(t, d, "hr")
	if err := ks.DropDMKEncryption("hr", ByPassword, []byte(leaked)); err != nil {
		t.Fatal(err)
	}
	putBack(savedHR, hr)
	v, err = ks.GetSecret("hr", "z", []byte(authPW))
	wantCorrupt(t, "a password-only database rolled back", v, err, "database 'hr' has been rolled back")
	if res, err := ks.AcceptRollback(); err != nil || !slices.Equal(res.Pending, []string{"hr"}) {
		t.Fatalf("accept of a password-only database: %+v, %v", res, err)
	}
	putBack(oldestHR, hr)
	v, err = ks.GetSecret("hr", "z", []byte(authPW))
	wantCorrupt(t, "an older copy of a database accepted pending its password", v, err, "to be opened by password")
	putBack(savedHR, hr)
	if v, err := ks.GetSecret("hr", "z", []byte(authPW)); err != nil || string(v) != "value z" {
		t.Fatalf("the accepted password-only database: %q, %v", v, err)
	}
	putBack(oldestHR, hr)
	v, err = ks.GetSecret("hr", "z", []byte(authPW))
	wantCorrupt(t, "an older copy of a database accepted and opened", v, err, "database 'hr' has been rolled back")
	putBack(savedHR, hr)

	// A database dropped, then put back.
	if _, err := ks.CreateDMK("gone", []byte(authPW), DMKOptions{}); err != nil {
		t.Fatal(err)
	}
	gone, savedGone := saveDatabase(t, d, "gone")
	if err := ks.DropDMK("gone"); err != nil {
		t.Fatal(err)
	}
	putBack(savedGone, gone)
	_, err = ks.SetSecret("gone", "s", []byte("v"), nil)
	wantCorrupt(t, "secret set in a dropped database put back", nil, err, "database 'gone' has been rolled back")
}

func TestUpgrade(t *testing.T) {
	d, ks := newFormat1Keystore(t)
	setTestCredential(t, ks, "a", "user-a", []byte("value a"))
	for _, db := range []struct {
		name  string
		noSMK bool
	}{{"app", false}, {"hr", true}} {
		if _, err := ks.CreateDMK(db.name, []byte(authPW), DMKOptions{NoSMKEncryption: db.noSMK}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ks.SetSecret("app", "x", []byte("value x"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.SetSecret("hr", "z", []byte("value z"), []byte(authPW)); err != nil {
		t.Fatal(err)
	}
	for _, db := range []string{"app", "hr"} {
		if m, _ := ks.loadDatabaseMeta(db); m.Version != formats.Version {
			t.Fatalf("database %s of a format-1 keystore is of version %d", db, m.Version)
		}
	}

	// hr needs its password: without it nothing changes.
	before := treeSnapshot(t, d.Keystore)
	_, err := ks.Upgrade(nil)
	wantMsg(t, err, MsgDMKNotOpen, ErrDecryption)
	if ke := (*Error)(nil); !errors.As(err, &ke) || !strings.Contains(strings.Join(ke.Detail, " "), "'hr'") || strings.Contains(strings.Join(ke.Detail, " "), "'app'") {
		t.Fatalf("the error does not name hr alone: %+v", err)
	}
	if after := treeSnapshot(t, d.Keystore); len(after) != len(before) {
		t.Fatalf("a refused upgrade changed the keystore")
	}

	res, err := ks.Upgrade(map[string][]byte{"hr": []byte(authPW)})
	if err != nil || len(res.Databases) != 2 || res.Values != 4 { // a, x, z, and app's SMK encryption
		t.Fatalf("upgrade: %+v, %v", res, err)
	}
	smk, _ := ks.loadSMKMeta()
	if !authenticated(smk) || smk.Commit < 1 {
		t.Fatalf("smk.toml after the upgrade: %+v", smk)
	}
	for _, db := range []string{"app", "hr"} {
		if m, _ := ks.loadDatabaseMeta(db); !dbAuthenticated(m) {
			t.Fatalf("database %s after the upgrade: %+v", db, m)
		}
	}
	if _, v, err := ks.GetCredential("a"); err != nil || string(v) != "value a" {
		t.Fatalf("a: %q, %v", v, err)
	}
	if v, err := ks.GetSecret("hr", "z", []byte(authPW)); err != nil || string(v) != "value z" {
		t.Fatalf("z: %q, %v", v, err)
	}
	if res, err := ks.Upgrade(nil); err != nil || !res.Already {
		t.Fatalf("second upgrade: %+v, %v", res, err)
	}
	// Upgraded values are bound: a swap shows.
	setTestCredential(t, ks, "b", "user-b", []byte("value b"))
	creds := filepath.Join(d.Keystore, credentialsDir)
	writeTestFile(t, only(t, creds, "a."), readTestFile(t, only(t, creds, "b.")))
	_, v, err := ks.GetCredential("a")
	wantCorrupt(t, "a swap after the upgrade", v, err, `credential "b"`)
}

func TestImportRenameNeedsPassword(t *testing.T) {
	_, ks := authKeystore(t)
	export := filepath.Join(newTestDir(t), "app.tar")
	if _, err := ks.ExportDatabase("app", export); err != nil {
		t.Fatal(err)
	}
	_, err := ks.ImportDatabase(export, "copy", nil)
	wantMsg(t, err, MsgDMKNotOpen, ErrDecryption)
	if _, err := ks.ImportDatabase(export, "copy", []byte("wrong password")); err == nil {
		t.Fatal("a wrong password imported")
	}
	if _, err := ks.ImportDatabase(export, "copy", []byte(authPW)); err != nil {
		t.Fatal(err)
	}
	if v, err := ks.GetSecret("copy", "x", []byte(authPW)); err != nil || string(v) != "value x" {
		t.Fatalf("imported x: %q, %v", v, err)
	}

	// An export of format 1 is bound as it is imported.
	_, old := newFormat1Keystore(t)
	if _, err := old.CreateDMK("legacy", []byte(authPW), DMKOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := old.SetSecret("legacy", "s", []byte("value s"), nil); err != nil {
		t.Fatal(err)
	}
	// (A format-1 keystore's new databases are of format 1 only in tests.)
	legacy := filepath.Join(newTestDir(t), "legacy.tar")
	if _, err := old.ExportDatabase("legacy", legacy); err != nil {
		t.Fatal(err)
	}
	_, err = ks.ImportDatabase(legacy, "", nil)
	wantMsg(t, err, MsgDMKNotOpen, ErrDecryption)
	if _, err := ks.ImportDatabase(legacy, "", []byte(authPW)); err != nil {
		t.Fatal(err)
	}
	if m, _ := ks.loadDatabaseMeta("legacy"); !dbAuthenticated(m) {
		t.Fatalf("imported format-1 database: %+v", m)
	}
	if v, err := ks.GetSecret("legacy", "s", []byte(authPW)); err != nil || string(v) != "value s" {
		t.Fatalf("imported s: %q, %v", v, err)
	}
}

// TestTamperEverySwap copies every file of a keystore of format 2 over
// every other one, in turn, and reads every value and identity each time:
// each read gives the right value or fails; none gives another.
func TestTamperEverySwap(t *testing.T) {
	if testing.Short() {
		t.Skip("a sweep of every pair of files")
	}
	d, _ := authKeystore(t)
	var files []string
	err := filepath.WalkDir(d.Keystore, func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(d.Keystore, p)
		if rel != lockFile && !strings.HasPrefix(rel, errorlogFile) {
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	credentials := map[string][2]string{"a": {"value a", "user-a"}, "b": {"value b", "user-b"}}
	secrets := map[string]string{"app/x": "value x", "app/y": "value y", "hr/z": "value z"}
	// One copy, put back as it was after each swap (a read may repair an
	// SMK encryption, or record a machine check).
	c := d
	c.Keystore = filepath.Join(newTestDir(t), "ks")
	if err := copyTree(d.Keystore, c.Keystore); err != nil {
		t.Fatal(err)
	}
	original := treeSnapshot(t, c.Keystore)
	restore := func() {
		now := treeSnapshot(t, c.Keystore)
		for name, want := range original {
			if _, ok := now[name]; !ok && want != "<dir>" {
				writeTestFile(t, filepath.Join(c.Keystore, name), []byte(want))
			}
		}
		for name, content := range now {
			want, ok := original[name]
			switch {
			case !ok:
				if err := os.RemoveAll(filepath.Join(c.Keystore, name)); err != nil {
					t.Fatal(err)
				}
			case want != content:
				writeTestFile(t, filepath.Join(c.Keystore, name), []byte(want))
			}
		}
	}
	// Under Wine, where each read is slow, every third pair
	// (KEYTREE_RELIABILITY=full: all), as the crash tests do.
	stride := 1
	if runtime.GOOS == "windows" && os.Getenv("KEYTREE_RELIABILITY") != "full" {
		stride = 3
	}
	pairs, n := 0, 0
	for _, dst := range files {
		for _, src := range files {
			if src == dst {
				continue
			}
			if n++; n%stride != 0 {
				continue
			}
			pairs++
			restore()
			writeTestFile(t, filepath.Join(c.Keystore, dst), []byte(original[filepath.ToSlash(src)]))
			ks, err := Open(Options{Dirs: c})
			if err != nil {
				continue
			}
			for name, want := range credentials {
				if m, v, err := ks.GetCredential(name); err == nil && (string(v) != want[0] || m.Identity != want[1]) {
					t.Fatalf("%s over %s: credential %s = %q (%s)", src, dst, name, v, m.Identity)
				}
				if v, err := ks.Resolve([]Ref{{Kind: RefCredentialIdentity, Name: name}}, nil, nil); err == nil && string(v[0]) != want[1] {
					t.Fatalf("%s over %s: identity of %s = %q", src, dst, name, v[0])
				}
			}
			for path, want := range secrets {
				db, name, _ := formats.SplitSecretPath(path)
				var pw []byte
				if db == "hr" {
					pw = []byte(authPW)
				}
				if v, err := ks.GetSecret(db, name, pw); err == nil && string(v) != want {
					t.Fatalf("%s over %s: secret %s = %q", src, dst, path, v)
				}
			}
		}
	}
	t.Logf("%d files, %d swaps", len(files), pairs)
}

// TestTamperOlderCopyWithNewID: a copy of the keystore from before its
// upgrade, put back under a new id, has no count remembered for that id;
// its key is remembered as a key of format 2, and it is refused.
func TestTamperOlderCopyWithNewID(t *testing.T) {
	d, ks := newFormat1Keystore(t)
	setTestCredential(t, ks, "a", "user-a", []byte("value a"))
	if _, err := ks.CreateDMK("hr", []byte(authPW), DMKOptions{NoSMKEncryption: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.SetSecret("hr", "z", []byte("value z"), []byte(authPW)); err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(newTestDir(t), "old")
	if err := copyTree(d.Keystore, old); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Upgrade(map[string][]byte{"hr": []byte(authPW)}); err != nil {
		t.Fatal(err)
	}
	setTestCredential(t, ks, "a", "user-a", []byte("newer value a"))

	p := filepath.Join(old, keystoreFile)
	m, err := formats.DecodeKeystore(readTestFile(t, p))
	if err != nil {
		t.Fatal(err)
	}
	m.ID = "00112233445566778899aabbccddeeff"
	writeTestFile(t, p, mustEncode(t, m))
	c := d
	c.Keystore = old
	_, v, err := openTestKeystore(t, Options{Dirs: c}).GetCredential("a")
	wantCorrupt(t, "an older copy under a new id", v, err, "format 1, which has no commit count")
	// By password too: the SMK is opened to look, though smk.toml is of
	// format 1 and nothing is remembered for the new id.
	v, err = openTestKeystore(t, Options{Dirs: c}).GetSecret("hr", "z", []byte(authPW))
	wantCorrupt(t, "an older copy under a new id, by password", v, err, "format 1")
}

// TestTamperDroppedImport: a database imported from another keystore
// brings that keystore's commits, which may be above this keystore's
// count: the import raises the count past them, and the database, dropped
// and put back, is refused all the same.
func TestTamperDroppedImport(t *testing.T) {
	_, busy := newTestKeystore(t)
	for i := 0; i < 6; i++ {
		setTestCredential(t, busy, "c", "svc", []byte(fmt.Sprint(i)))
	}
	if _, err := busy.CreateDMK("imp", []byte(authPW), DMKOptions{}); err != nil {
		t.Fatal(err)
	}
	export := filepath.Join(newTestDir(t), "imp.tar")
	if _, err := busy.ExportDatabase("imp", export); err != nil {
		t.Fatal(err)
	}
	d, ks := newTestKeystore(t)
	if _, err := ks.ImportDatabase(export, "imp", nil); err != nil {
		t.Fatal(err)
	}
	m, _ := ks.loadDatabaseMeta("imp")
	if smk, _ := ks.loadSMKMeta(); m == nil || smk == nil || m.Commit < 8 || m.Commit >= smk.Commit {
		t.Fatalf("the import's commit is not the other keystore's, or the count did not pass it: database %+v, smk.toml %+v", m, smk)
	}
	dir, saved := saveDatabase(t, d, "imp")
	if err := ks.DropDMK("imp"); err != nil {
		t.Fatal(err)
	}
	if err := copyTree(saved, dir); err != nil {
		t.Fatal(err)
	}
	_, err := ks.SetSecret("imp", "s", []byte("into a dropped database"), []byte(authPW))
	wantCorrupt(t, "a dropped import put back", nil, err, "database 'imp' has been rolled back")

	// Imported again, over the record of the drop, and stopped just after
	// its rename: the record was written before it, so the database is
	// not taken for a rollback.
	if err := ks.DropDMK("imp"); err != nil {
		t.Fatal(err)
	}
	renamed := false
	ks.setFault(func(kind, path string) error {
		if renamed {
			return errors.New("stopped after the rename")
		}
		renamed = kind == "rename" && path == dir
		return nil
	})
	if _, err := ks.ImportDatabase(export, "imp", nil); err == nil || !renamed {
		t.Fatalf("import stopped after its rename: %v (renamed %v)", err, renamed)
	}
	ks.setFault(nil)
	if _, err := ks.SetSecret("imp", "s", []byte("v"), []byte(authPW)); err != nil {
		t.Fatalf("the import, stopped after its rename: %v", err)
	}
}

// TestTamperOrphans: a generation retired in format 2 holds bound values:
// a file put in an orphan's place is not recovered as its value.
func TestTamperOrphans(t *testing.T) {
	d, ks := authKeystore(t)
	backup := filepath.Join(newTestDir(t), "smk1.age")
	if _, err := ks.BackupSMK(backup, []byte("Backup-Passw0rd-7"), SMKOptions{}); err != nil {
		t.Fatal(err)
	}
	creds := filepath.Join(d.Keystore, credentialsDir)
	a := only(t, creds, "a.")
	dmkEnc := readTestFile(t, only(t, filepath.Join(d.Keystore, databasesDir, "app"), "smk."))

	// b's value in a's place: a regenerate reports damage, and does not
	// offer --force as for a value that does not decrypt.
	good := readTestFile(t, a)
	writeTestFile(t, a, readTestFile(t, only(t, creds, "b.")))
	_, err := ks.RegenerateSMK(SMKOptions{})
	wantKind(t, err, ErrCorrupt)
	var ke *Error
	if errors.As(err, &ke) && (ke.Number == MsgItemDecrypt || ke.Remedy.Kind == RemedyForcePastItem) {
		t.Fatalf("a swapped value reported as undecryptable: %v", err)
	}

	// Forced, a is orphaned under generation 1, retired bound.
	if _, err := ks.RegenerateSMK(SMKOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	m, _ := ks.loadSMKMeta()
	if r, ok := formats.RetiredGeneration(m.Retired, 1); !ok || !r.Bound {
		t.Fatalf("retired generation 1: %+v", m.Retired)
	}
	// The DMK's SMK encryption of generation 1, in the orphan's place:
	// recovering does not make it a's value.
	writeTestFile(t, a, dmkEnc)
	if _, err := ks.RecoverSMK(backup, []byte("Backup-Passw0rd-7"), SMKOptions{}); err == nil {
		if _, v, err := ks.GetCredential("a"); err == nil {
			t.Fatalf("a recovered as %q", v)
		}
	}
	// Its own file recovers it.
	writeTestFile(t, a, good)
	if _, err := ks.RecoverSMK(backup, []byte("Backup-Passw0rd-7"), SMKOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, v, err := ks.GetCredential("a"); err != nil || string(v) != "value a" {
		t.Fatalf("a after recovering its own file: %q, %v", v, err)
	}
}

// TestTamperExport: a database put back to format 1 is not exported, and
// an export edited to look like format 1 does not import swapped values.
func TestTamperExport(t *testing.T) {
	d, ks := authKeystore(t)
	export := filepath.Join(newTestDir(t), "app.tar")
	if _, err := ks.ExportDatabase("app", export); err != nil {
		t.Fatal(err)
	}

	p := filepath.Join(d.Keystore, databasesDir, "app", databaseFile)
	saved := readTestFile(t, p)
	m, err := formats.DecodeDatabase(saved)
	if err != nil {
		t.Fatal(err)
	}
	m.Version, m.Commit, m.MAC = formats.Version, 0, ""
	writeTestFile(t, p, mustEncode(t, m))
	_, err = ks.ExportDatabase("app", filepath.Join(newTestDir(t), "v1.tar"))
	wantCorrupt(t, "export of a database put back to format 1", nil, err, "is of format 1, in a keystore of format 2")
	writeTestFile(t, p, saved)

	// The export's database.toml at version 1, y's value as x's.
	edited := filepath.Join(newTestDir(t), "edited.tar")
	var x, y string
	rewriteTar(t, export, edited, func(name string, data []byte) []byte {
		switch {
		case name == databaseFile:
			m, err := formats.DecodeDatabase(data)
			if err != nil {
				t.Fatal(err)
			}
			m.Version, m.Commit, m.MAC = formats.Version, 0, ""
			return mustEncode(t, m)
		case strings.HasPrefix(name, secretsDir+"/x.") && strings.HasSuffix(name, ".age"):
			x = name
		case strings.HasPrefix(name, secretsDir+"/y.") && strings.HasSuffix(name, ".age"):
			y = name
		}
		return data
	})
	if x == "" || y == "" {
		t.Fatal("no x and y in the export")
	}
	rewriteTar(t, export, edited, func(name string, data []byte) []byte {
		switch name {
		case databaseFile:
			m, _ := formats.DecodeDatabase(data)
			m.Version, m.Commit, m.MAC = formats.Version, 0, ""
			return mustEncode(t, m)
		case x:
			return readTarEntry(t, export, y)
		}
		return data
	})
	_, err = ks.ImportDatabase(edited, "app3", []byte(authPW))
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), `holds the value of secret "app/y"`) {
		t.Fatalf("import of an edited export: %v", err)
	}
	if _, err := ks.loadDatabaseMeta("app3"); !notExist(err) {
		t.Fatalf("app3 exists after a refused import: %v", err)
	}
}

// TestTamperImportIdentity: an import that keeps a credential's identity
// keeps the one its value was stored with, not an edit.
func TestTamperImportIdentity(t *testing.T) {
	d, ks := authKeystore(t)
	p := filepath.Join(d.Keystore, credentialsDir, "a.toml")
	writeTestFile(t, p, bytes.Replace(readTestFile(t, p), []byte(`"user-a"`), []byte(`"attacker"`), 1))
	_, err := ks.ImportCredentials([]ImportItem{{Name: "a", Value: []byte("rotated")}})
	wantKind(t, err, ErrCorrupt)
	if c, _ := ks.loadCredentialMeta("a"); c.Revision != 1 {
		t.Fatalf("a refused import changed a: %+v", c)
	}
}

// rewriteTar copies the tar archive from to to, each entry's data through
// edit.
func rewriteTar(t *testing.T, from, to string, edit func(name string, data []byte) []byte) {
	t.Helper()
	f, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var buf bytes.Buffer
	tr, tw := tar.NewReader(f), tar.NewWriter(&buf)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		data = edit(hdr.Name, data)
		hdr.Size = int64(len(data))
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, to, buf.Bytes())
}

// readTarEntry reads one entry of a tar archive.
func readTarEntry(t *testing.T, archive, name string) []byte {
	t.Helper()
	var out []byte
	rewriteTar(t, archive, filepath.Join(newTestDir(t), "copy.tar"), func(n string, data []byte) []byte {
		if n == name {
			out = data
		}
		return data
	})
	return out
}

// TestWriteNeedsSMKToCount: while no encryption of the SMK opens, a read of
// a database by password works, but a write to it fails with 15466 and
// changes nothing: its commit could not be counted.
func TestWriteNeedsSMKToCount(t *testing.T) {
	d, _ := authKeystore(t)
	other := d
	other.Account = filepath.Join(newTestDir(t), "account")
	other.Machine = filepath.Join(newTestDir(t), "machine")
	for _, dir := range []string{other.Account, other.Machine} {
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	ks := openTestKeystore(t, Options{Dirs: other})
	if v, err := ks.GetSecret("hr", "z", []byte(authPW)); err != nil || string(v) != "value z" {
		t.Fatalf("read by password without the SMK: %q, %v", v, err)
	}
	before := treeSnapshot(t, d.Keystore, lockFile, errorlogFile)
	_, err := ks.SetSecret("hr", "w", []byte("value w"), []byte(authPW))
	wantMsg(t, err, MsgDecryption, ErrDecryption)
	if after := treeSnapshot(t, d.Keystore, lockFile, errorlogFile); len(after) != len(before) {
		t.Fatalf("a write that could not be counted changed the keystore")
	}
}
