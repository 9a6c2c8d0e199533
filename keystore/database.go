package keystore

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/protect"
)

func (ks *Keystore) dbPath(db string, elem ...string) string {
	return ks.path(append([]string{databasesDir, db}, elem...)...)
}

func (ks *Keystore) loadDatabaseMeta(db string) (*formats.Database, error) {
	return loadMeta(ks, ks.pathOf(databaseMeta(db)), formats.DecodeDatabase)
}

// errNoDMK is what a command that needs a database's master key reports
// when the database has none: SQL Server's 15581.
func errNoDMK(db string) error {
	return &Error{
		Number: MsgDMKNotOpen,
		Plain:  "no such database",
		Text:   "Please create a master key in the database or open the master key in the session before performing this operation.",
		Detail: []string{fmt.Sprintf("database '%s' has no master key", db)},
		Remedy: Remedy{Kind: RemedyCreateDMK, Database: db},
		Kind:   ErrNotFound,
	}
}

// A database directory holds database.toml from the moment it appears:
// dmk create and db import build the whole directory in tmp/ and rename it
// into databases/ (the commit), and dmk drop renames it back out into tmp/.
// So a directory under databases/ that holds files but no database.toml is
// never a leftover of an operation: its metadata was lost (a disk error, a
// file removed by hand). It is damage, reported and kept: nothing collects,
// sweeps or replaces it, since its files are all that is left of a database
// master key and its secrets (P16, P18).

// lostDatabase reports whether databases/DB exists and holds something
// without holding database.toml. An empty directory (or one holding only an
// empty secrets/) holds nothing to lose, and is not damage.
func (ks *Keystore) lostDatabase(db string) (bool, error) {
	if ks.files.Exists(ks.pathOf(databaseMeta(db))) {
		return false, nil
	}
	entries, err := ks.files.ReadDir(ks.pathOf(databaseDir(db)))
	if notExist(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, e := range entries {
		if e.Name() != secretsDir || e.Type() != fs.ModeDir {
			return true, nil
		}
		inner, err := ks.files.ReadDir(ks.pathOf(secretsDirOf(db)))
		if err != nil {
			return false, err
		}
		if len(inner) > 0 {
			return true, nil
		}
	}
	return false, nil
}

// errLostDatabase is the damage of a database directory without
// database.toml.
func (ks *Keystore) errLostDatabase(db string) error {
	return &Error{
		Text: fmt.Sprintf("%s: database.toml is missing, but the directory holds files: the metadata of database '%s' is lost", ks.pathOf(databaseDir(db)), db),
		Hint: "restore database.toml from a copy of the keystore; if the database is not needed, move the directory out of the keystore. keytree neither removes nor replaces it",
		Kind: ErrCorrupt,
	}
}

// databaseMissing reports a database that has no database.toml: as damage
// if its directory holds files, else as missing.
func (ks *Keystore) databaseMissing(db string, missing func(string) error) error {
	lost, err := ks.lostDatabase(db)
	if err != nil {
		return err
	}
	if lost {
		return ks.errLostDatabase(db)
	}
	err = missing(db)
	var e *Error
	if errors.As(err, &e) && errors.Is(err, ErrNotFound) {
		return ks.suggestName(e, "database", db)
	}
	return err
}

// claimDatabaseName checks, for dmk create and db import, that no database
// named db exists (exists builds the error if one does) and that no damaged
// one is in the way. An empty directory left there is removed, so that the
// staged directory can be renamed into place.
func (ks *Keystore) claimDatabaseName(db string, exists func() error) error {
	if meta, err := ks.loadDatabaseMeta(db); !notExist(err) {
		if err != nil {
			return err
		}
		if meta.Name != db && strings.EqualFold(meta.Name, db) {
			// A case-insensitive file system found the twin itself.
			return errCaseTwin("database", db, meta.Name)
		}
		return exists()
	}
	lost, err := ks.lostDatabase(db)
	if err != nil {
		return err
	}
	if lost {
		return ks.errLostDatabase(db)
	}
	twin, err := ks.caseTwin(databasesDir, db, true)
	if err != nil {
		return err
	}
	if twin != "" {
		return errCaseTwin("database", db, twin)
	}
	for _, d := range []string{ks.pathOf(secretsDirOf(db)), ks.pathOf(databaseDir(db))} {
		if err := ks.files.RemoveDir(d); err != nil {
			return err
		}
	}
	return nil
}

// databaseMeta loads a database's metadata for an operation on it, checking
// the name it records (case-insensitive filesystems) and reporting a missing
// database as missing, or as damaged if its directory lost database.toml.
func (ks *Keystore) databaseMeta(db string, missing func(string) error) (*formats.Database, error) {
	meta, err := ks.loadDatabaseMeta(db)
	if notExist(err) {
		return nil, ks.databaseMissing(db, missing)
	}
	if err != nil {
		return nil, err
	}
	if meta.Name != db {
		if strings.EqualFold(meta.Name, db) {
			return nil, &Error{Text: fmt.Sprintf("the database is named '%s', not '%s'", meta.Name, db), Kind: ErrNotFound,
				Hint: "names are case-sensitive, and this filesystem is not: use the name as it was created"}
		}
		return nil, corruptf(ks.pathOf(databaseMeta(db)), "names database %q", meta.Name)
	}
	return meta, nil
}

func missingDatabase(db string) error {
	e := errNotFound("database", db)
	e.Remedy = Remedy{Kind: RemedyCreateDatabase, Database: db}
	return e
}

// commitDatabase commits t with a database's new metadata.
//
// In a keystore of format 2 the database.toml it replaces must not have
// been rolled back, and the account and machine directories remember the
// new one's commit after the commit (checkDatabaseRollbackOf).
func (t *txn) commitDatabase(meta *formats.Database) error {
	if old, err := t.s.ks.loadDatabaseMeta(meta.Name); err == nil {
		if _, err := t.s.ks.databaseRollback(old); err != nil {
			return err
		}
	}
	data, err := meta.Encode()
	if err != nil {
		return err
	}
	if err := t.commit(t.s.ks.pathOf(databaseMeta(meta.Name)), data); err != nil {
		return err
	}
	if dbAuthenticated(meta) && meta.Commit != 0 {
		t.s.ks.rememberDatabase(meta.Name, meta.Commit)
	}
	return nil
}

func dmkGens(m *formats.Database) keyGens { return keyGens{current: m.Generation, retired: m.Retired} }

// dmkState is an open database master key.
type dmkState struct {
	meta *formats.Database
	key  *protect.Key
	// passwordID is the password encryption that opened it, if one did.
	passwordID string
}

// openDMK opens a database's master key: with the password, if one is given
// (SQL Server's OPEN MASTER KEY DECRYPTION BY PASSWORD), else through its SMK
// encryption. Without either it fails with 15581. The key that opens must be
// the one database.toml names, with the algorithm it names (P12).
func (s *session) openDMK(meta *formats.Database, password []byte) (*dmkState, error) {
	if err := s.refuseFormat1Database(meta); err != nil {
		return nil, err
	}
	if password != nil {
		key, id, err := s.openDMKByPassword(meta, password)
		if err != nil {
			return nil, err
		}
		if err := s.ks.checkDatabaseMAC(meta, key); err != nil {
			return nil, err
		}
		if err := s.checkKeystoreIfItOpens(); err != nil {
			return nil, err
		}
		if err := s.ks.checkDatabaseRollbackOf(meta, s.acceptRollback); err != nil {
			return nil, err
		}
		return &dmkState{meta: meta, key: key, passwordID: id}, nil
	}
	if !meta.SMKEncryption || meta.PasswordOnly {
		return nil, &Error{
			Number: MsgDMKNotOpen,
			Plain:  "database needs its password",
			Text:   "Please create a master key in the database or open the master key in the session before performing this operation.",
			Detail: []string{fmt.Sprintf("the master key of database '%s' is not encrypted by the service master key", meta.Name)},
			Remedy: Remedy{Kind: RemedyOpenDMK, Database: meta.Name},
			Kind:   ErrDecryption,
		}
	}
	key, err := s.dmkKeyBySMK(meta)
	if err != nil {
		return nil, err
	}
	if err := s.ks.checkDatabaseMAC(meta, key); err != nil {
		return nil, err
	}
	if err := s.ks.checkDatabaseRollbackOf(meta, s.acceptRollback); err != nil {
		return nil, err
	}
	return &dmkState{meta: meta, key: key}, nil
}

// dmkKeyBySMK opens a database's master key through its SMK encryption,
// and checks that it is the key, of the algorithm, that database.toml
// names; not database.toml's MAC.
func (s *session) dmkKeyBySMK(meta *formats.Database) (*protect.Key, error) {
	st, err := s.openSMK()
	if err != nil {
		var ke *Error
		if errors.As(err, &ke) && ke.Number == MsgDecryption {
			ke.Remedy.OrOpenDMK = true
		}
		return nil, err
	}
	path, orphan, err := s.ks.itemBlob(smkEncryptionBlob(meta.Name, meta.Generation, 0), smkGens(st.meta))
	if err != nil {
		return nil, err
	}
	if orphan != nil {
		return nil, &Error{
			Number: MsgDMKNotOpen,
			Plain:  "database needs its password",
			Text:   "Please create a master key in the database or open the master key in the session before performing this operation.",
			Detail: []string{fmt.Sprintf("the service master key encryption of database '%s' is orphaned: it needs service master key %s", meta.Name, orphan.Thumbprint)},
			Remedy: Remedy{Kind: RemedyOpenDMKOrRecoverSMK, Database: meta.Name},
			Kind:   ErrDecryption,
		}
	}
	blob, err := s.ks.files.ReadFile(path, maxKeyBlobSize)
	if err != nil {
		return nil, s.ks.fileError(path, err)
	}
	key, kf, err := openKeyFile(st.key, blob, protect.KindDMK, meta.Thumbprint)
	if err != nil {
		return nil, dmkOpenError(path, err)
	}
	if kf.Database != meta.Name {
		return nil, corruptf(path, "holds the master key of database %q, not of %q", kf.Database, meta.Name)
	}
	if string(key.Algorithm()) != meta.Algorithm {
		return nil, corruptf(s.ks.pathOf(databaseMeta(meta.Name)), "names algorithm %s, but the key is %s", meta.Algorithm, key.Algorithm())
	}
	return key, nil
}

func dmkOpenError(path string, err error) error {
	var km *keyMismatchError
	if errors.As(err, &km) {
		return corruptf(path, "holds database master key %s, not the one database.toml names (%s)", km.got.Thumbprint(), km.want)
	}
	if errors.Is(err, protect.ErrDecrypt) {
		return corruptf(path, "cannot be decrypted by the service master key")
	}
	return errCorrupt(path, err)
}

func errNotEncryptedBy(db string) error {
	return &Error{
		Number: MsgNotEncryptedBy,
		Plain:  "wrong password",
		Text:   "The key is not encrypted using the specified decryptor.",
		Detail: []string{fmt.Sprintf("no password encryption of the master key of database '%s' opens with that password", db)},
		Kind:   ErrDecryption,
	}
}

func newPasswordID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// sealDMKForSMK seals the DMK of database db to the SMK and checks it
// opens. The key file inside names the database: every SMK encryption is
// made in this keystore, under the database's current name, so openDMK can
// refuse an encryption copied in from another database, whose key would
// otherwise be grafted in by editing database.toml to name it.
func sealDMKForSMK(smk *smkState, key *protect.Key, created time.Time, db string) ([]byte, error) {
	kf := keyFileOf(key, created)
	kf.Database = db
	plain, err := kf.Encode()
	if err != nil {
		return nil, err
	}
	blob, err := protect.Seal(smk.key, plain)
	if err != nil {
		return nil, err
	}
	if _, kf, err := openKeyFile(smk.key, blob, protect.KindDMK, key.Thumbprint()); err != nil || kf.Database != db {
		return nil, fmt.Errorf("the new service master key encryption does not open: %v", err)
	}
	return blob, nil
}

// DMKOptions tune the database master key operations.
type DMKOptions struct {
	// OpenPassword opens the DMK by password instead of by the SMK.
	OpenPassword []byte
	// NoSMKEncryption creates a DMK that only passwords open.
	NoSMKEncryption bool
	// SkipPasswordPolicy accepts a new password that fails the policy.
	SkipPasswordPolicy bool
	// Force continues past secrets that cannot be decrypted (P7).
	Force bool
	// Algorithm of a new or regenerated key; empty: x25519, or the
	// current key's.
	Algorithm protect.Algorithm
	Progress  func(done, total int)
}

// checkNewPassword applies the policy to a new password of database db's
// master key; the database's name is one of the words it must not be built
// from.
func checkNewPassword(pw []byte, db string, opts DMKOptions) error {
	if opts.SkipPasswordPolicy {
		return nil
	}
	return CheckPassword(pw, db)
}

// DatabaseInfo describes a database.
type DatabaseInfo struct {
	Name          string
	Thumbprint    string
	Algorithm     protect.Algorithm
	Generation    int
	Created       time.Time
	SMKEncryption bool
	Passwords     int
	Secrets       int
}

func databaseInfo(m *formats.Database, secrets int) *DatabaseInfo {
	return &DatabaseInfo{Name: m.Name, Thumbprint: m.Thumbprint, Algorithm: protect.Algorithm(m.Algorithm),
		Generation: m.Generation, Created: m.Created, SMKEncryption: m.SMKEncryption, Passwords: len(m.Passwords), Secrets: secrets}
}
