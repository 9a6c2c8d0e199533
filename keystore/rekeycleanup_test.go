//go:build !windows

package keystore

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/keytree-dev/keytree/formats"
)

// A clean-up after a rekey that cannot list databases/ leaves pending.toml,
// with its sweep, for the next writer: the old generation's files there are
// not forgotten. (databases/ is swapped for a link to itself just after the
// commit; keytree refuses to list through a link.)
func TestRekeyCleanupKeepsSweepWhenDatabasesUnlistable(t *testing.T) {
	d, ks := newTestKeystore(t)
	if _, err := ks.CreateDMK("payroll", []byte("Payroll-pass-1"), DMKOptions{SkipPasswordPolicy: true}); err != nil {
		t.Fatal(err)
	}
	dbs := filepath.Join(d.Keystore, databasesDir)
	real := dbs + ".real"
	old := filepath.Join(dbs, "payroll", formats.BlobName(formats.SMKEncryptionBase, 1, 1))
	wantExists(t, old, true)
	swapped := false
	ks.setFault(func(kind, path string) error {
		if !swapped && kind == "rename" && path == filepath.Join(d.Keystore, smkFile) {
			swapped = true
			if err := os.Rename(dbs, real); err != nil {
				return err
			}
			return os.Symlink(real, dbs)
		}
		return nil
	})
	_, err := ks.RegenerateSMK(SMKOptions{})
	ks.setFault(nil)
	if !swapped {
		t.Fatal("the commit of smk.toml was never seen")
	}
	t.Logf("regenerate with databases/ unlistable after its commit: %v", err)
	wantExists(t, filepath.Join(d.Keystore, pendingFile), true)
	if err := os.Remove(dbs); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(real, dbs); err != nil {
		t.Fatal(err)
	}
	wantExists(t, old, true)
	// The next writer sweeps what the record names.
	setTestCredential(t, ks, "after", "u", []byte("v"))
	wantExists(t, filepath.Join(d.Keystore, pendingFile), false)
	wantExists(t, old, false)
	wantExists(t, filepath.Join(dbs, "payroll", formats.BlobName(formats.SMKEncryptionBase, 1, 2)), true)
}
