package keystore

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keytree-dev/keytree/protect"
)

// P16: keytree never overwrites a protector secret that exists but does not
// parse. The account and machine secrets are shared by every keystore of
// the account or machine; replacing a damaged one would invalidate that
// protector's encryption in all of them, and lose a keystore whose only
// valid encryption it was.

var damagedSecret = []byte("# truncated by a full disk\n")

// wantSecretDamage checks err is the report of the damaged secret at path:
// ErrCorrupt, naming the file, with a hint to restore it or move it aside.
func wantSecretDamage(t *testing.T, what string, err error, path string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: succeeded with %s damaged", what, path)
	}
	wantKind(t, err, ErrCorrupt)
	ke := keystoreError(t, err)
	if !strings.Contains(ke.Text, path) || !strings.Contains(ke.Text, "damaged") {
		t.Errorf("%s: error %q does not name %s as damaged", what, ke.Text, path)
	}
	if !strings.Contains(ke.Hint, "restore "+path+" from a backup") || !strings.Contains(ke.Hint, "move it aside") ||
		!strings.Contains(ke.Hint, "invalidates") {
		t.Errorf("%s: hint %q", what, ke.Hint)
	}
}

func TestDamagedAccountSecretIsNotReplaced(t *testing.T) {
	// Two keystores of one account: a with both encryptions, b with
	// machine protection off, so that its account encryption is its only
	// one.
	da := testDirs(t)
	_, a := initTestKeystore(t, da)
	db := Dirs{Keystore: newTestDir(t), Account: da.Account, Machine: da.Machine}
	_, b := initTestKeystore(t, db)
	for _, ks := range []*Keystore{a, b} {
		setTestCredential(t, ks, "mail", "smtp", []byte("value"))
	}
	if _, err := b.SetMachineProtection(false); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(da.Account, protect.AccountSecretName)
	good := readTestFile(t, secret)
	writeTestFile(t, secret, damagedSecret)
	beforeA := treeSnapshot(t, da.Keystore, lockFile, errorlogFile)
	beforeB := treeSnapshot(t, db.Keystore, lockFile, errorlogFile)

	// a: the machine encryption opens the key, but the account encryption
	// cannot be re-created without replacing the secret: every command
	// that opens the key stops and says which file is damaged.
	ops := map[string]func() error{
		"credential get":     func() error { _, _, err := a.GetCredential("mail"); return err },
		"credential set":     func() error { _, err := a.SetCredential("other", "u", []byte("v")); return err },
		"smk verify":         func() error { _, err := a.VerifySMK(); return err },
		"status":             func() error { _, err := a.Status(); return err },
		"smk regenerate":     func() error { _, err := a.RegenerateSMK(SMKOptions{}); return err },
		"machine-protection": func() error { _, err := a.SetMachineProtection(false); return err },
	}
	for name, op := range ops {
		wantSecretDamage(t, name, op(), secret)
		if got := readTestFile(t, secret); !bytes.Equal(got, damagedSecret) {
			t.Fatalf("%s replaced the damaged account secret", name)
		}
	}
	if diff := diffSnapshots(beforeA, treeSnapshot(t, da.Keystore, lockFile, errorlogFile)); diff != "" {
		t.Fatalf("failed commands changed keystore a: %s", diff)
	}
	if lines := errorLogLines(t, a, "was not re-created"); len(lines) == 0 || !strings.Contains(lines[0], secret) {
		t.Errorf("error log: %q", lines)
	}

	// b: its only encryption is the account one: 15466, with the damaged
	// file as the thing to fix rather than the key to restore.
	_, _, err := b.GetCredential("mail")
	wantMsg(t, err, MsgDecryption, ErrDecryption)
	if ke := keystoreError(t, err); !strings.Contains(ke.Hint, "restore "+secret+" from a backup") ||
		!strings.Contains(strings.Join(ke.Detail, "\n"), secret) {
		t.Errorf("15466 with a damaged account secret: detail %q, hint %q", ke.Detail, ke.Hint)
	}
	if got := readTestFile(t, secret); !bytes.Equal(got, damagedSecret) {
		t.Fatal("15466 replaced the damaged account secret")
	}
	if diff := diffSnapshots(beforeB, treeSnapshot(t, db.Keystore, lockFile, errorlogFile)); diff != "" {
		t.Fatalf("15466 changed keystore b: %s", diff)
	}

	// The file restored from a backup, both keystores open as before.
	writeTestFile(t, secret, good)
	for _, ks := range []*Keystore{a, b} {
		wantCredential(t, ks, "mail", "value", "after restoring the account secret")
	}

	// Moved aside instead, a new secret is created and a heals from its
	// machine encryption; b, which had no other, is the price the hint
	// names.
	writeTestFile(t, secret, damagedSecret)
	if err := os.Rename(secret, secret+".damaged"); err != nil {
		t.Fatal(err)
	}
	var notices []string
	a2 := openTestKeystore(t, Options{Dirs: da, Notice: func(m string) { notices = append(notices, m) }})
	wantCredential(t, a2, "mail", "value", "after moving the damaged secret aside")
	if len(notices) != 1 || !strings.Contains(notices[0], "account encryption") || !strings.Contains(notices[0], "re-created") {
		t.Errorf("notices %q", notices)
	}
	if got := readTestFile(t, secret); bytes.Equal(got, damagedSecret) || bytes.Equal(got, good) {
		t.Fatal("no new account secret")
	}
	_, _, err = b.GetCredential("mail")
	wantMsg(t, err, MsgDecryption, ErrDecryption)
}

// TestDamagedAccountSecretForAlter: smk alter --new-account-dir protects the
// key for another account's secret; a damaged one there is not replaced.
func TestDamagedAccountSecretForAlter(t *testing.T) {
	_, ks := newTestKeystore(t)
	next := newTestDir(t)
	secret := filepath.Join(next, protect.AccountSecretName)
	writeTestFile(t, secret, damagedSecret)
	_, err := ks.AlterSMKNewAccount(next)
	wantSecretDamage(t, "smk alter", err, secret)
	if got := readTestFile(t, secret); !bytes.Equal(got, damagedSecret) {
		t.Fatal("smk alter replaced the damaged account secret")
	}
}

// TestDamagedMachineSecretIsNotReplaced: the machine secret (Unix) and a
// keystore's machine entropy are not replaced either. The account
// encryption opens the key, and the machine one is not re-created.
func TestDamagedMachineSecretIsNotReplaced(t *testing.T) {
	files := map[string]func(d Dirs, ks *Keystore) string{
		"entropy": func(d Dirs, ks *Keystore) string { return filepath.Join(d.Machine, ks.ID()+".entropy") },
	}
	if protect.MachineSecretName != "" {
		files["machine secret"] = func(d Dirs, ks *Keystore) string { return filepath.Join(d.Machine, protect.MachineSecretName) }
	}
	for name, file := range files {
		t.Run(name, func(t *testing.T) {
			d, ks := newTestKeystore(t)
			setTestCredential(t, ks, "mail", "smtp", []byte("value"))
			secret := file(d, ks)
			good := readTestFile(t, secret)
			writeTestFile(t, secret, damagedSecret)
			before := treeSnapshot(t, d.Keystore, lockFile, errorlogFile)
			_, _, err := ks.GetCredential("mail")
			wantSecretDamage(t, "credential get", err, secret)
			_, err = ks.RegenerateSMK(SMKOptions{})
			wantSecretDamage(t, "smk regenerate", err, secret)
			if got := readTestFile(t, secret); !bytes.Equal(got, damagedSecret) {
				t.Fatal("the damaged file was replaced")
			}
			if diff := diffSnapshots(before, treeSnapshot(t, d.Keystore, lockFile, errorlogFile)); diff != "" {
				t.Fatalf("failed commands changed the keystore: %s", diff)
			}
			writeTestFile(t, secret, good)
			wantCredential(t, ks, "mail", "value", "after restoring it")
		})
	}
}
