package keystore

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keytree-dev/keytree/protect"
)

// The SMK's two encryptions heal each other, as SQL Server's start-up check
// does (P1, P2); both invalid is error 15466 with nothing changed (P3).

type healFixture struct {
	dirs  Dirs
	res   *InitResult
	value []byte
}

func newHealFixture(t *testing.T) *healFixture {
	return newHealFixtureOf(t, false)
}

// newFormat1HealFixture is newHealFixture in a keystore of format 1, whose
// smk.toml an edit can change unnoticed.
func newFormat1HealFixture(t *testing.T) *healFixture {
	return newHealFixtureOf(t, true)
}

func newHealFixtureOf(t *testing.T, format1 bool) *healFixture {
	t.Helper()
	f := &healFixture{dirs: testDirs(t), value: []byte("p@ss\x00word\n")}
	res, err := Init(Options{Dirs: f.dirs, format1: format1}, protect.X25519)
	if err != nil {
		t.Fatalf("init: %v", err)
	}
	f.res = res
	setTestCredential(t, openTestKeystore(t, Options{Dirs: f.dirs}), "sa", "sa-login", f.value)
	return f
}

func (f *healFixture) blob(t *testing.T, kind string) []byte {
	t.Helper()
	return readTestFile(t, filepath.Join(f.dirs.Keystore, smkDir, kind+".1.age"))
}

// checkOpens checks that d opens the SMK with every enabled encryption
// valid and nothing to repair, and reads the credential back.
func (f *healFixture) checkOpens(t *testing.T, d Dirs) {
	t.Helper()
	ks := openTestKeystore(t, Options{Dirs: d})
	info, err := ks.VerifySMK()
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	for _, e := range info.Encryptions {
		if e.Enabled != e.Valid || e.Recreated {
			t.Fatalf("encryption after repair: %+v", e)
		}
	}
	_, v, err := ks.GetCredential("sa")
	if err != nil || !bytes.Equal(v, f.value) {
		t.Fatalf("credential: %q, %v", v, err)
	}
}

// TestHealAccountEncryption is P2: another account invalidates the account
// encryption only; the machine encryption opens the SMK and keytree
// re-creates the account encryption for the new account.
func TestHealAccountEncryption(t *testing.T) {
	f := newHealFixture(t)
	oldAccount, oldMachine := f.blob(t, "account"), f.blob(t, "machine")

	d := f.dirs
	d.Account = newTestDir(t)
	var notices []string
	ks := openTestKeystore(t, Options{Dirs: d, Notice: func(m string) { notices = append(notices, m) }})
	info, err := ks.VerifySMK()
	if err != nil {
		t.Fatalf("verify with a new account: %v", err)
	}
	if info.Thumbprint != f.res.Thumbprint {
		t.Fatalf("thumbprint %s, want %s", info.Thumbprint, f.res.Thumbprint)
	}
	acct, mach := info.Encryptions[0], info.Encryptions[1]
	if acct.Protector != protect.KindAccount || acct.Valid || !acct.Recreated || acct.Reason == "" || acct.RepairErr != "" {
		t.Fatalf("account encryption: %+v", acct)
	}
	if mach.Protector != protect.KindMachine || !mach.Valid || mach.Recreated {
		t.Fatalf("machine encryption: %+v", mach)
	}
	if bytes.Equal(f.blob(t, "account"), oldAccount) {
		t.Fatal("the account encryption's file was not re-created")
	}
	if !bytes.Equal(f.blob(t, "machine"), oldMachine) {
		t.Fatal("the valid machine encryption was rewritten")
	}
	wantExists(t, filepath.Join(d.Account, protect.AccountSecretName), true)
	if len(notices) != 1 || !strings.Contains(notices[0], "account") || !strings.Contains(notices[0], "re-created") {
		t.Errorf("notices %q", notices)
	}
	if lines := errorLogLines(t, ks, "re-created"); len(lines) != 1 || !strings.Contains(lines[0], "account") {
		t.Errorf("error log repair lines %q", lines)
	}

	// Healed for good: the next command finds nothing to repair.
	f.checkOpens(t, d)
	// The new account encryption opens the SMK on its own: with the
	// machine encryption lost too, the new account heals it in turn.
	d2 := d
	d2.Machine = newTestDir(t)
	info, err = openTestKeystore(t, Options{Dirs: d2}).VerifySMK()
	if err != nil || !info.Encryptions[0].Valid || !info.Encryptions[1].Recreated {
		t.Fatalf("new account alone: %+v, %v", info, err)
	}
	// And the old account no longer opens it.
	d3 := Dirs{Keystore: d.Keystore, Account: f.dirs.Account, Machine: newTestDir(t)}
	_, err = openTestKeystore(t, Options{Dirs: d3}).VerifySMK()
	wantMsg(t, err, MsgDecryption, ErrDecryption)
}

// TestHealMachineEncryption is P1: the keystore on another machine (another
// machine directory) opens through the account encryption, and keytree
// re-creates the machine encryption for the new machine.
func TestHealMachineEncryption(t *testing.T) {
	f := newHealFixture(t)
	oldAccount, oldMachine := f.blob(t, "account"), f.blob(t, "machine")

	d := f.dirs
	d.Machine = newTestDir(t)
	ks := openTestKeystore(t, Options{Dirs: d})
	// A reader (credential get) finds the repair and makes it.
	_, v, err := ks.GetCredential("sa")
	if err != nil || !bytes.Equal(v, f.value) {
		t.Fatalf("credential on the new machine: %q, %v", v, err)
	}
	if bytes.Equal(f.blob(t, "machine"), oldMachine) {
		t.Fatal("the machine encryption's file was not re-created")
	}
	if !bytes.Equal(f.blob(t, "account"), oldAccount) {
		t.Fatal("the valid account encryption was rewritten")
	}
	wantExists(t, filepath.Join(d.Machine, ks.ID()+".entropy"), true)
	if protect.MachineSecretName != "" {
		wantExists(t, filepath.Join(d.Machine, protect.MachineSecretName), true)
	}
	if lines := errorLogLines(t, ks, "re-created"); len(lines) != 1 || !strings.Contains(lines[0], "machine") {
		t.Errorf("error log repair lines %q", lines)
	}
	f.checkOpens(t, d)

	// VerifySMK reports the repair itself.
	d2 := d
	d2.Machine = newTestDir(t)
	info, err := openTestKeystore(t, Options{Dirs: d2}).VerifySMK()
	if err != nil {
		t.Fatal(err)
	}
	if m := info.Encryptions[1]; m.Valid || !m.Recreated || m.Reason == "" {
		t.Fatalf("machine encryption: %+v", m)
	}
	if a := info.Encryptions[0]; !a.Valid || a.Recreated {
		t.Fatalf("account encryption: %+v", a)
	}
}

// TestBothEncryptionsInvalid is P3: with neither protector able to open
// the SMK, every command that needs it fails with 15466, logs it, and
// changes nothing.
func TestBothEncryptionsInvalid(t *testing.T) {
	f := newHealFixture(t)
	skip := []string{lockFile, errorlogFile}
	before := treeSnapshot(t, f.dirs.Keystore, skip...)

	d := Dirs{Keystore: f.dirs.Keystore, Account: newTestDir(t), Machine: newTestDir(t)}
	ks := openTestKeystore(t, Options{Dirs: d})
	ops := map[string]func() error{
		"smk verify":     func() error { _, err := ks.VerifySMK(); return err },
		"credential get": func() error { _, _, err := ks.GetCredential("sa"); return err },
		"credential set": func() error { _, err := ks.SetCredential("new", "u", []byte("v")); return err },
		"machine off":    func() error { _, err := ks.SetMachineProtection(false); return err },
		"status": func() error {
			st, err := ks.Status()
			if st == nil || st.SMK == nil || st.Credentials != 1 {
				t.Errorf("status with both encryptions invalid: %+v", st)
			} else {
				for _, e := range st.SMK.Encryptions {
					if e.Valid || e.Recreated {
						t.Errorf("status shows encryption %+v", e)
					}
				}
			}
			return err
		},
		"key-encryptions": func() error {
			rows, err := ks.KeyEncryptions()
			n := 0
			for _, r := range rows {
				if r.Key == "service master key" {
					n++
					if r.State != "invalid" {
						t.Errorf("row %+v", r)
					}
				}
			}
			if n != 2 {
				t.Errorf("key-encryptions rows %+v", rows)
			}
			return err
		},
	}
	for name, op := range ops {
		logged := len(errorLogLines(t, ks, "15466"))
		err := op()
		if err == nil {
			t.Errorf("%s: succeeded with both encryptions invalid", name)
			continue
		}
		ke := keystoreError(t, err)
		if ke.Number != MsgDecryption || ke.Text != "An error occurred during decryption." ||
			ke.Remedy.Kind != RemedyRestoreSMK || ke.Remedy.InvalidEncryptions != 2 {
			t.Errorf("%s: error %+v", name, ke)
		}
		if len(ke.Detail) != 2 {
			t.Errorf("%s: detail %q should give both encryptions' reasons", name, ke.Detail)
		}
		wantKind(t, err, ErrDecryption)
		if got := len(errorLogLines(t, ks, "error 15466")); got <= logged {
			t.Errorf("%s: nothing appended to the error log", name)
		}
	}
	if diff := diffSnapshots(before, treeSnapshot(t, f.dirs.Keystore, skip...)); diff != "" {
		t.Fatalf("failed commands changed the keystore: %s", diff)
	}
	for _, dir := range []string{d.Account, d.Machine} {
		if got := dirEntries(t, dir); len(got) != 0 {
			t.Fatalf("failed commands created protector secrets: %v", got)
		}
	}
	// A listing needs no key and still works, its identities unchecked.
	creds, err := ks.ListCredentials()
	if err != nil || len(creds) != 1 || creds[0].Name != "sa" || !creds[0].Unchecked {
		t.Fatalf("list: %+v, %v", creds, err)
	}
	// Nothing changed: the right protectors still open everything.
	f.checkOpens(t, f.dirs)
}

// switchMachineProtection turns machine protection on or off, checking that
// this changes it and creates or removes the machine encryption, and that
// doing it again changes nothing.
func (f *healFixture) switchMachineProtection(t *testing.T, ks *Keystore, on bool) {
	t.Helper()
	state := map[bool]string{false: "off", true: "on"}[on]
	if changed, err := ks.SetMachineProtection(on); err != nil || !changed {
		t.Fatalf("machine protection %s: %v, %v", state, changed, err)
	}
	wantExists(t, filepath.Join(f.dirs.Keystore, smkDir, "machine.1.age"), on)
	if changed, err := ks.SetMachineProtection(on); err != nil || changed {
		t.Fatalf("machine protection %s again: changed %v, %v", state, changed, err)
	}
}

// TestMachineProtectionOffThenAccountChange: with the machine encryption
// turned off, the account encryption is the only one, and losing it is 15466
// (P5's price).
func TestMachineProtectionOffThenAccountChange(t *testing.T) {
	f := newHealFixture(t)
	ks := openTestKeystore(t, Options{Dirs: f.dirs})
	f.switchMachineProtection(t, ks, false)
	info, err := ks.VerifySMK()
	if err != nil || info.MachineProtection || info.Encryptions[1].Enabled || !info.Encryptions[0].Valid {
		t.Fatalf("after off: %+v, %v", info, err)
	}
	// The SMK opens with no machine directory contents at all.
	f.checkOpens(t, Dirs{Keystore: f.dirs.Keystore, Account: f.dirs.Account, Machine: newTestDir(t)})

	before := treeSnapshot(t, f.dirs.Keystore, lockFile, errorlogFile)
	d := f.dirs
	d.Account = newTestDir(t)
	ks2 := openTestKeystore(t, Options{Dirs: d})
	_, err = ks2.VerifySMK()
	wantMsg(t, err, MsgDecryption, ErrDecryption)
	_, _, err = ks2.GetCredential("sa")
	wantMsg(t, err, MsgDecryption, ErrDecryption)
	if diff := diffSnapshots(before, treeSnapshot(t, f.dirs.Keystore, lockFile, errorlogFile)); diff != "" {
		t.Fatalf("15466 changed the keystore: %s", diff)
	}
	if len(errorLogLines(t, ks2, "error 15466")) < 2 {
		t.Error("15466 not logged")
	}
}

// TestMachineProtectionOn is P5's other half: turning it back on re-creates
// the machine encryption, which then heals a lost account encryption.
func TestMachineProtectionOn(t *testing.T) {
	f := newHealFixture(t)
	ks := openTestKeystore(t, Options{Dirs: f.dirs})
	if _, err := ks.SetMachineProtection(false); err != nil {
		t.Fatal(err)
	}
	f.switchMachineProtection(t, ks, true)
	d := f.dirs
	d.Account = newTestDir(t)
	info, err := openTestKeystore(t, Options{Dirs: d}).VerifySMK()
	if err != nil || !info.MachineProtection || !info.Encryptions[0].Recreated || !info.Encryptions[1].Valid {
		t.Fatalf("account healed from the re-enabled machine encryption: %+v, %v", info, err)
	}
	f.checkOpens(t, d)
}

// TestHealDamagedEncryptionFile: a damaged (not merely foreign) encryption
// file is invalid, and is re-created from the other one.
func TestHealDamagedEncryptionFile(t *testing.T) {
	for _, kind := range []string{"account", "machine"} {
		t.Run(kind, func(t *testing.T) {
			f := newHealFixture(t)
			p := filepath.Join(f.dirs.Keystore, smkDir, kind+".1.age")
			blob := f.blob(t, kind)
			blob[len(blob)-5] ^= 0xff
			writeTestFile(t, p, blob)
			info, err := openTestKeystore(t, Options{Dirs: f.dirs}).VerifySMK()
			if err != nil {
				t.Fatal(err)
			}
			i := 0
			if kind == "machine" {
				i = 1
			}
			if e := info.Encryptions[i]; e.Valid || !e.Recreated {
				t.Fatalf("%s encryption: %+v", kind, e)
			}
			f.checkOpens(t, f.dirs)
		})
	}
}
