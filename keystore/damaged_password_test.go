package keystore

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestDamagedPasswordEncryption: a truncated password encryption of a
// database master key is reported with the file's name, not only as a wrong
// password (P11); a wrong password on whole files mentions no damage.
func TestDamagedPasswordEncryption(t *testing.T) {
	d := testDirs(t)
	_, ks := initTestKeystore(t, d)
	pw := []byte("Database-Passw0rd-1")
	if _, err := ks.CreateDMK("hr", pw, DMKOptions{NoSMKEncryption: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.SetSecret("hr", "s", []byte("v"), pw); err != nil {
		t.Fatal(err)
	}
	_, err := ks.GetSecret("hr", "s", []byte("Wrong-Passw0rd-1"))
	wantMsg(t, err, MsgNotEncryptedBy, ErrDecryption)
	if ke := keystoreError(t, err); strings.Contains(strings.Join(ke.Detail, "\n"), "damaged") || ke.Hint != "" {
		t.Fatalf("a wrong password reported as damage: %q, hint %q", ke.Detail, ke.Hint)
	}

	blobs, _ := filepath.Glob(filepath.Join(d.Keystore, "databases", "hr", "password.*.age"))
	if len(blobs) != 1 {
		t.Fatalf("password encryptions: %v", blobs)
	}
	writeTestFile(t, blobs[0], readTestFile(t, blobs[0])[:50])
	_, err = ks.GetSecret("hr", "s", pw)
	wantMsg(t, err, MsgNotEncryptedBy, ErrDecryption)
	ke := keystoreError(t, err)
	if !strings.Contains(strings.Join(ke.Detail, "\n"), filepath.Base(blobs[0])+" is damaged") || ke.Hint == "" {
		t.Fatalf("the damaged file is not named: %q, hint %q", ke.Detail, ke.Hint)
	}
}
