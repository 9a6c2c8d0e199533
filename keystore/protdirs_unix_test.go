//go:build !windows

package keystore

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keytree-dev/keytree/protect"
)

// TestRepairCreatesNoDirectory: a read-only command whose account
// directory does not exist (a typo, a wrong HOME) reads through the machine
// encryption, leaves the account encryption as it was, creates nothing, and
// says so once; with CreateProtectorDirs it heals.
func TestRepairCreatesNoDirectory(t *testing.T) {
	f := newHealFixture(t)
	before := f.blob(t, "account")
	d := f.dirs
	d.Account = filepath.Join(newTestDir(t), "typo", "account")
	var notices []string
	ks := openTestKeystore(t, Options{Dirs: d, Notice: func(m string) { notices = append(notices, m) }})
	info, err := ks.Status()
	if err != nil {
		t.Fatalf("status with a missing account directory: %v", err)
	}
	acct := info.SMK.Encryptions[0]
	if acct.Valid || acct.Recreated || !strings.Contains(acct.RepairErr, "does not exist") {
		t.Fatalf("account encryption: %+v", acct)
	}
	wantExists(t, filepath.Dir(d.Account), false)
	if !bytes.Equal(f.blob(t, "account"), before) {
		t.Fatal("the account encryption was rewritten")
	}
	if len(notices) != 1 || !strings.Contains(notices[0], "could not be re-created") {
		t.Errorf("notices %q", notices)
	}

	ks = openTestKeystore(t, Options{Dirs: d, CreateProtectorDirs: true})
	v, err := ks.VerifySMK()
	if err != nil || !v.Encryptions[0].Recreated {
		t.Fatalf("with CreateProtectorDirs: %+v, %v", v, err)
	}
	wantExists(t, filepath.Join(d.Account, protect.AccountSecretName), true)
}

// TestNoSecretInAnotherAccountsDir: root with HOME pointing at a user's
// home finds that user's (empty) account directory; keytree does not put a
// root-owned secret there.
func TestNoSecretInAnotherAccountsDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a directory another account owns")
	}
	f := newHealFixture(t)
	d := f.dirs
	d.Account = filepath.Join(newTestDir(t), "alice-account")
	if err := os.Mkdir(d.Account, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(d.Account, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	var notices []string
	ks := openTestKeystore(t, Options{Dirs: d, Notice: func(m string) { notices = append(notices, m) }})
	v, err := ks.VerifySMK()
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if v.Encryptions[0].Recreated || !strings.Contains(v.Encryptions[0].RepairErr, "belongs to") {
		t.Fatalf("account encryption: %+v", v.Encryptions[0])
	}
	if entries, _ := os.ReadDir(d.Account); len(entries) != 0 {
		t.Fatalf("keytree wrote into another account's directory: %v", entries)
	}
	if len(notices) != 1 {
		t.Errorf("notices %q", notices)
	}
}
