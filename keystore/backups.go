package keystore

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/protect"
)

// Backup records (formats.Backups): every smk backup and dmk backup that
// wrote its file appends the key's thumbprint, the time and the file's
// absolute path to the key's backups.toml, so that status can say when the
// key in use was last backed up and regenerate and restore can name the
// backups they make stale.
//
// A backup is a reader: it writes nothing in the keystore, and runs under the
// shared lock so that it does not stop other readers during its scrypt.
// Recording it is a small write of its own, taken under the exclusive lock
// after the backup file is complete. If the record cannot be written (the
// lock stays busy, the disk is full, the old records are damaged), the
// backup is still good: the command warns and succeeds, rather than fail
// after writing a correct file that the user would then distrust or delete.

// backupsPath is the backup records of the SMK (db "") or of db's DMK.
func (ks *Keystore) backupsPath(db string) string {
	return ks.pathOf(backupsMeta(db))
}

// loadBackups reads a key's backup records; a key never backed up has none.
func (ks *Keystore) loadBackups(db string) (*formats.Backups, error) {
	b, err := loadMeta(ks, ks.backupsPath(db), formats.DecodeBackups)
	if notExist(err) {
		return &formats.Backups{Version: formats.Version}, nil
	}
	return b, err
}

// recordBackup records that path now holds a backup of the key with
// thumbprint (the SMK if db is "", else db's DMK). It never fails the
// backup: a record that cannot be written is a warning.
func (ks *Keystore) recordBackup(db, path, thumbprint string) {
	abs, err := filepath.Abs(path)
	if err == nil {
		err = ks.write("record backup", func(s *session) error {
			if db != "" {
				// Dropped since the backup was written: nothing to
				// record it in, and no directory to create.
				if _, err := s.ks.databaseMeta(db, missingDatabase); err != nil {
					return err
				}
			}
			b, err := s.ks.loadBackups(db)
			if err != nil {
				return err
			}
			b.Add(formats.BackupRecord{Thumbprint: thumbprint, Time: s.ks.nowUTC(), File: abs})
			data, err := b.Encode()
			if err != nil {
				return err
			}
			return s.begin().commit(s.ks.backupsPath(db), data)
		})
	}
	if err != nil {
		ks.warning(fmt.Sprintf("the backup %s was written and is good, but it could not be recorded in %s (status will not show it): %v",
			path, ks.backupsPath(db), err))
	}
}

// LastBackup is the newest recorded backup of a key in use.
type LastBackup struct {
	Key        string    // "smk" or "dmk/DB"
	Thumbprint string    // of the key in use
	Time       time.Time // zero if it was never backed up
	File       string
	// Problem says why the records could not be read; Time is then zero.
	Problem string
}

// lastBackup finds the newest record of the key with thumbprint.
func (ks *Keystore) lastBackup(key, db, thumbprint string) LastBackup {
	out := LastBackup{Key: key, Thumbprint: thumbprint}
	b, err := ks.loadBackups(db)
	if err != nil {
		out.Problem = err.Error()
		return out
	}
	if r, ok := b.Last(thumbprint); ok {
		out.Time, out.File = r.Time, r.File
	}
	return out
}

// restorePreview says, before a restore changes anything, what restoring
// backup in place of the current key would do to the values under each key
// (P18): re-encrypt them if the current key opens, orphan them if it does
// not, and recover those orphaned under the backup's key. refs and g walk
// the values of the key (credentials and DMKs' SMK encryptions, or one
// database's secrets). It only counts; damage it meets is left for the
// restore itself to report.
func (s *session) restorePreview(what string, refs func(func(itemRef) error) error, g keyGens, current string, currentOpens bool, backup *protect.Key, created time.Time) {
	counts := map[int]int{}
	err := refs(func(ref itemRef) error {
		it, ok, err := s.ks.resolve(ref)
		if err != nil || !ok {
			return err
		}
		_, orphan, err := s.ks.itemBlob(it.blob, g)
		if err != nil {
			return err
		}
		gen := g.current
		if orphan != nil {
			gen = orphan.Generation
		}
		counts[gen]++
		return nil
	})
	if err != nil {
		return
	}
	n := counts[g.current]
	bt := backup.Thumbprint()
	held := fmt.Sprintf("key %s (created %s)", bt, created.UTC().Format(time.RFC3339))
	recovered := 0
	for _, r := range g.retired {
		if r.Thumbprint == bt {
			held = fmt.Sprintf("key %s (generation %d)", bt, r.Generation)
			recovered = counts[r.Generation]
		}
	}
	msg := fmt.Sprintf("this backup holds %s; your %d %s are under key %s (generation %d)", held, n, what, current, g.current)
	switch {
	case n == 0:
		msg += ": restoring it would orphan none"
	case currentOpens:
		msg += fmt.Sprintf(", which opens: restoring it would re-encrypt all %d under the backup's key", n)
	default:
		msg += fmt.Sprintf(", which does not open here: restoring it would orphan all %d", n)
	}
	if recovered > 0 {
		msg += fmt.Sprintf(", and recover the %d orphaned under the backup's key", recovered)
	}
	s.ks.notice(msg)
}
