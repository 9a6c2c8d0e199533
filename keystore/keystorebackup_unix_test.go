//go:build !windows

package keystore

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A link or a FIFO where keytree keeps a file or a directory is damage: the
// backup fails naming it, and no archive is written.
func TestKeystoreBackupRefusesLinks(t *testing.T) {
	d := testDirs(t)
	ks, _ := backupTestKeystore(t, d, 1)
	outside := filepath.Join(newTestDir(t), "outside.toml")
	writeTestFile(t, outside, readTestFile(t, ks.path(credentialsDir, "c0.toml")))
	for _, c := range []struct {
		name string
		path string
		make func(p string) error
	}{
		{"symlink to a file outside", ks.path(credentialsDir, "planted.toml"), func(p string) error { return os.Symlink(outside, p) }},
		{"symlink to a directory", ks.path(databasesDir, "planted"), func(p string) error { return os.Symlink(d.Account, p) }},
		{"symlink to a secrets directory", ks.path(databasesDir, "planted"), func(p string) error { return os.Symlink(ks.path(databasesDir, "app"), p) }},
		{"fifo", ks.path(credentialsDir, "planted.1.1.age"), func(p string) error { return syscall.Mkfifo(p, 0o600) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := c.make(c.path); err != nil {
				t.Fatal(err)
			}
			defer os.Remove(c.path)
			archive := filepath.Join(newTestDir(t), "keystore.tar")
			_, err := ks.BackupKeystore(archive)
			wantKind(t, err, ErrCorrupt)
			if !strings.Contains(err.Error(), "planted") {
				t.Fatalf("error %q does not name the planted file", err)
			}
			if entries := dirEntries(t, filepath.Dir(archive)); len(entries) != 0 {
				t.Fatalf("a failed backup left %v", entries)
			}
			var buf bytes.Buffer
			_, err = ks.BackupKeystoreTo(&buf)
			wantKind(t, err, ErrCorrupt)
		})
	}
}
