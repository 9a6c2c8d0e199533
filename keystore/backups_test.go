package keystore

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/keystore/internal/fsio"
	"github.com/keytree-dev/keytree/protect"
)

// A backup is recorded once its file is written; a record that cannot be
// written (here: another process holds a shared lock past the lock
// timeout, so the exclusive lock the record needs never comes) leaves the
// backup good and the command successful, with a warning.
func TestBackupRecordCannotBeWritten(t *testing.T) {
	d, ks1 := newTestKeystore(t)
	var warnings []string
	ks2 := openTestKeystore(t, Options{Dirs: d, LockTimeout: shortLock, Warning: func(m string) { warnings = append(warnings, m) }})
	dir := newTestDir(t)
	password := []byte("Backup-pass-1")

	reader := holdLock(t, ks1, fsio.Shared, shortLock)
	first := filepath.Join(dir, "first.age")
	info, err := ks2.BackupSMK(first, password, SMKOptions{SkipPasswordPolicy: true})
	reader.Release()
	if err != nil {
		t.Fatalf("the backup failed because its record could not be written: %v", err)
	}
	if key, _, err := readKeyBackup(first, protect.KindSMK, password); err != nil || key.Thumbprint() != info.Thumbprint {
		t.Fatalf("the backup does not hold the key: %v", err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "could not be recorded") {
		t.Fatalf("warnings %q, want one saying the record could not be written", warnings)
	}
	if exists(ks1.path(formats.BackupsFile)) {
		t.Fatal("a record was written although the lock never came")
	}

	// With the lock free, the next backup is recorded, with its absolute
	// path, and status shows it.
	second := filepath.Join(dir, "second.age")
	if _, err := ks2.BackupSMK(second, password, SMKOptions{SkipPasswordPolicy: true}); err != nil {
		t.Fatal(err)
	}
	st, err := ks1.Status()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Backups) != 1 || st.Backups[0].Key != "smk" || st.Backups[0].File != second || st.Backups[0].Thumbprint != info.Thumbprint {
		t.Fatalf("status backups %+v, want the SMK's backup to %s", st.Backups, second)
	}
}
