package formats

import (
	"time"
	"unicode/utf8"
)

// BackupsFile is the name of a key's backup records: backups.toml beside
// smk.toml for the SMK, and in databases/DB/ for that database's DMK.
const BackupsFile = "backups.toml"

// MaxBackupRecords bounds the records kept per key: the newest are kept.
const MaxBackupRecords = 10

// MaxBackupPath bounds the length of a recorded backup file name.
const MaxBackupPath = 4096

// Backups is backups.toml: the last backups made of a master key, newest
// last, for status to say when the key in use was last backed up and for
// regenerate and restore to name the backups they make stale.
//
// It is a file of its own, not a field of smk.toml or database.toml, for
// two reasons. A backup is taken under the shared lock and must not have to
// rewrite the metadata that commits every operation on the key; and a
// keytree that does not know the records keeps working on a keystore that
// has them (its strict decoder would refuse an unknown field, but it never
// reads this file, and its clean-up keeps a file it does not recognise).
// The records are informational: nothing about a key is decided from them,
// and a damaged file costs only the records.
type Backups struct {
	Version int            `toml:"version"`
	Backups []BackupRecord `toml:"backup,omitempty"`
}

// BackupRecord is one backup: the thumbprint of the key it holds, when it
// was written, and the backup file's absolute path as it was given.
type BackupRecord struct {
	Thumbprint string    `toml:"thumbprint"`
	Time       time.Time `toml:"time"`
	File       string    `toml:"file"`
}

func (b *Backups) Validate() error {
	if err := checkVersion(b.Version); err != nil {
		return err
	}
	if len(b.Backups) > MaxBackupRecords {
		return corrupt("more than %d backup records", MaxBackupRecords)
	}
	for _, r := range b.Backups {
		if !isHex(r.Thumbprint, 40) {
			return corrupt("backup record: thumbprint %q is not 40 hex digits", r.Thumbprint)
		}
		if r.Time.IsZero() {
			return corrupt("backup record: time is missing")
		}
		if r.File == "" || len(r.File) > MaxBackupPath || !utf8.ValidString(r.File) {
			return corrupt("backup record: file is empty, longer than %d bytes, or not UTF-8", MaxBackupPath)
		}
		for _, c := range r.File {
			if c < 0x20 || c == 0x7f {
				return corrupt("backup record: file contains a control character")
			}
		}
	}
	return nil
}

// Add appends a record and keeps the newest MaxBackupRecords.
func (b *Backups) Add(r BackupRecord) {
	b.Backups = append(b.Backups, r)
	if n := len(b.Backups); n > MaxBackupRecords {
		b.Backups = append([]BackupRecord(nil), b.Backups[n-MaxBackupRecords:]...)
	}
}

// Last returns the newest record of the key with thumbprint, if any.
func (b *Backups) Last(thumbprint string) (BackupRecord, bool) {
	for i := len(b.Backups) - 1; i >= 0; i-- {
		if b.Backups[i].Thumbprint == thumbprint {
			return b.Backups[i], true
		}
	}
	return BackupRecord{}, false
}

func DecodeBackups(data []byte) (*Backups, error) {
	var b Backups
	return &b, decode(data, &b, "version")
}

func (b *Backups) Encode() ([]byte, error) { return encode(b) }
