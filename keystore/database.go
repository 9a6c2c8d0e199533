package keystore

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"time"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/protect"
)

// Files of a database, under databases/DB/.
const (
	databaseFile = "database.toml"
	secretsDir   = "secrets"
)

func (ks *Keystore) dbPath(db string, elem ...string) string {
	return ks.path(append([]string{databasesDir, db}, elem...)...)
}

func (ks *Keystore) loadDatabaseMeta(db string) (*formats.Database, error) {
	p := ks.dbPath(db, databaseFile)
	data, err := ks.files.readFile(p, formats.MaxMetadataSize)
	if err != nil {
		if notExist(err) {
			return nil, err
		}
		return nil, ks.fileError(p, err)
	}
	meta, err := formats.DecodeDatabase(data)
	if err != nil {
		return nil, errCorrupt(p, err)
	}
	return meta, nil
}

// errNoDMK is what a command that needs a database's master key reports
// when the database has none: SQL Server's 15581.
func errNoDMK(db string) error {
	return &Error{
		Number: MsgDMKNotOpen,
		Plain:  "no such database",
		Text:   "Please create a master key in the database or open the master key in the session before performing this operation.",
		Detail: []string{fmt.Sprintf("database '%s' has no master key", db)},
		Hint:   fmt.Sprintf("create one with: keytree dmk create --db %s", db),
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
	if ks.files.exists(ks.dbPath(db, databaseFile)) {
		return false, nil
	}
	entries, err := ks.files.readDir(ks.dbPath(db))
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
		inner, err := ks.files.readDir(ks.dbPath(db, secretsDir))
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
		Text: fmt.Sprintf("%s: database.toml is missing, but the directory holds files: the metadata of database '%s' is lost", ks.dbPath(db), db),
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
	for _, d := range []string{ks.dbPath(db, secretsDir), ks.dbPath(db)} {
		if err := ks.files.removeDir(d); err != nil {
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
		return nil, corruptf(ks.dbPath(db, databaseFile), "names database %q", meta.Name)
	}
	return meta, nil
}

func missingDatabase(db string) error {
	e := errNotFound("database", db)
	e.Hint = fmt.Sprintf("create it with: keytree dmk create --db %s", db)
	return e
}

func (ks *Keystore) writeDatabaseMeta(meta *formats.Database) error {
	data, err := meta.Encode()
	if err != nil {
		return err
	}
	return ks.writeFileAtomic(ks.dbPath(meta.Name, databaseFile), data)
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
	if password != nil {
		key, id, err := s.openDMKByPassword(meta, password)
		if err != nil {
			return nil, err
		}
		return &dmkState{meta: meta, key: key, passwordID: id}, nil
	}
	if !meta.SMKEncryption {
		return nil, &Error{
			Number: MsgDMKNotOpen,
			Plain:  "database needs its password",
			Text:   "Please create a master key in the database or open the master key in the session before performing this operation.",
			Detail: []string{fmt.Sprintf("the master key of database '%s' is not encrypted by the service master key", meta.Name)},
			Hint:   "open it with its password: --open-password-file FILE (- for standard input)",
			Kind:   ErrDecryption,
		}
	}
	st, err := s.openSMK()
	if err != nil {
		var ke *Error
		if errors.As(err, &ke) && ke.Number == MsgDecryption {
			ke.Hint += "; or open the database master key with its password: --open-password-file FILE"
		}
		return nil, err
	}
	path, orphan, err := s.ks.itemBlob([]string{databasesDir, meta.Name}, formats.SMKEncryptionBase, meta.Generation, smkGens(st.meta))
	if err != nil {
		return nil, err
	}
	if orphan != nil {
		return nil, &Error{
			Number: MsgDMKNotOpen,
			Plain:  "database needs its password",
			Text:   "Please create a master key in the database or open the master key in the session before performing this operation.",
			Detail: []string{fmt.Sprintf("the service master key encryption of database '%s' is orphaned: it needs service master key %s", meta.Name, orphan.Thumbprint)},
			Hint:   "open it with its password (--open-password-file FILE), or recover it: keytree smk recover --file BACKUP",
			Kind:   ErrDecryption,
		}
	}
	blob, err := s.ks.files.readFile(path, maxKeyBlobSize)
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
		return nil, corruptf(s.ks.dbPath(meta.Name, databaseFile), "names algorithm %s, but the key is %s", meta.Algorithm, key.Algorithm())
	}
	return &dmkState{meta: meta, key: key}, nil
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

// CreateDMK creates a database and its master key, encrypted by password
// and, unless opts.NoSMKEncryption, by the SMK.
func (ks *Keystore) CreateDMK(db string, password []byte, opts DMKOptions) (*DatabaseInfo, error) {
	if err := validName("database", db); err != nil {
		return nil, err
	}
	if err := checkNewPassword(password, db, opts); err != nil {
		return nil, err
	}
	alg := opts.Algorithm
	if alg == "" {
		alg = protect.X25519
	}
	// The key is made before the lock, so that the rehearsal seals the
	// one that is written (writeWithPasswords).
	key, err := protect.GenerateKey(protect.KindDMK, alg)
	if err != nil {
		return nil, err
	}
	now := ks.nowUTC()
	var info *DatabaseInfo
	exists := func() error {
		return &Error{Number: MsgDMKExists, Kind: ErrExists,
			Text: "There is already a master key in the database. Please drop it before performing this statement.",
			Hint: fmt.Sprintf("database '%s' already has one; see keytree db list", db)}
	}
	err = ks.writeWithPasswords("dmk create", func(s *session) error {
		if s.rehearsal {
			// Under the shared lock: only the scrypt work, sealing the
			// key to the password. Claiming the name may remove an empty
			// directory, and building the database writes: both wait
			// for the exclusive lock.
			if _, err := s.ks.loadDatabaseMeta(db); err == nil {
				return exists()
			}
			if _, _, err := s.newPassword(key, now, password); err != nil {
				return err
			}
			return errRehearsed
		}
		if err := s.ks.claimDatabaseName(db, exists); err != nil {
			return err
		}
		pwBlob, pe, err := s.newPassword(key, now, password)
		if err != nil {
			return err
		}
		pe.Created = now
		meta := &formats.Database{
			Version: formats.Version, Name: db, Generation: 1, Thumbprint: key.Thumbprint(),
			Algorithm: string(alg), Created: now, SMKEncryption: !opts.NoSMKEncryption,
			Passwords: []formats.PasswordEncryption{pe},
		}
		var smkBlob []byte
		var smk *smkState
		if meta.SMKEncryption {
			if smk, err = s.openSMK(); err != nil {
				return err
			}
			if smkBlob, err = sealDMKForSMK(smk, key, now, db); err != nil {
				return err
			}
		}
		metaData, err := meta.Encode()
		if err != nil {
			return err
		}
		// The database is built whole in tmp/, which every writer empties
		// first, and renamed into databases/ in one step, as db import
		// does: no state of databases/ shows a database directory without
		// its database.toml.
		st, err := ks.newStage("create")
		if err != nil {
			return err
		}
		defer st.discard()
		stage := st.dir
		b := ks.newBatch()
		if err := b.create(filepath.Join(stage, formats.PasswordBlobName(meta.Passwords[0].ID, 1)), stage, pwBlob); err != nil {
			return err
		}
		if smkBlob != nil {
			if err := b.create(filepath.Join(stage, formats.BlobName(formats.SMKEncryptionBase, 1, smk.meta.Generation)), stage, smkBlob); err != nil {
				return err
			}
		}
		if err := b.create(filepath.Join(stage, databaseFile), stage, metaData); err != nil {
			return err
		}
		if err := b.sync(); err != nil {
			return err
		}
		if err := st.commit(db); err != nil {
			return err
		}
		info = databaseInfo(meta, 0)
		return nil
	})
	return info, err
}

// A stage is a database built whole in tmp/, which every writer empties
// first, and renamed into databases/ in one step (dmk create, db import):
// no state of databases/ shows a database directory without its
// database.toml (database_gc.go).
type stage struct {
	ks        *Keystore
	dir       string
	committed bool
}

// newStage makes a stage, with its secrets/ directory, named for op.
func (ks *Keystore) newStage(op string) (*stage, error) {
	st := &stage{ks: ks, dir: ks.path(tmpDir, op+"-"+randomName())}
	for _, d := range []string{st.dir, filepath.Join(st.dir, secretsDir)} {
		if err := ks.files.mkdirPrivate(d); err != nil {
			st.discard()
			return nil, err
		}
	}
	return st, nil
}

// commit renames the stage, whose files are durable, into databases/ as
// database db: the one step that commits it.
func (st *stage) commit(db string) error {
	if err := st.ks.files.renameDir(st.dir, st.ks.dbPath(db)); err != nil {
		return err
	}
	st.committed = true
	return st.ks.files.syncDir(st.ks.path(databasesDir))
}

// discard removes the stage unless it was committed.
func (st *stage) discard() {
	if !st.committed {
		_ = st.ks.files.removeTree(st.dir) // what is left, the next writer removes
	}
}

// EncryptionKind names what protects a DMK.
type EncryptionKind string

const (
	BySMK      EncryptionKind = "smk"
	ByPassword EncryptionKind = "password"
)

// AddDMKEncryption adds an encryption of a database's master key, by the SMK
// or by a new password, and checks that it opens before it commits. A
// password that already encrypts the key is refused.
func (ks *Keystore) AddDMKEncryption(db string, by EncryptionKind, newPassword []byte, opts DMKOptions) error {
	if err := validName("database", db); err != nil {
		return err
	}
	if by == ByPassword {
		if err := checkNewPassword(newPassword, db, opts); err != nil {
			return err
		}
	}
	write := ks.write
	if by == ByPassword || opts.OpenPassword != nil {
		write = ks.writeWithPasswords
	}
	return write("dmk add-encryption", func(s *session) error {
		meta, err := s.ks.databaseMeta(db, missingDatabase)
		if err != nil {
			return err
		}
		next := *meta
		switch by {
		case BySMK:
			smk, err := s.openSMK()
			if err != nil {
				return err
			}
			if meta.SMKEncryption && ks.files.exists(s.ks.dbPath(db, formats.BlobName(formats.SMKEncryptionBase, meta.Generation, smk.meta.Generation))) {
				return &Error{Number: MsgEncryptionExists, Kind: ErrExists,
					Text:   "Adding an encryption to the symmetric key failed. An encryption by the same service master key may already exist.",
					Detail: []string{fmt.Sprintf("the master key of database '%s' is already encrypted by the service master key", db)}}
			}
			dmk, err := s.openDMK(meta, opts.OpenPassword)
			if err != nil {
				return err
			}
			blob, err := sealDMKForSMK(smk, dmk.key, meta.Created, db)
			if err != nil {
				return err
			}
			path := s.ks.dbPath(db, formats.BlobName(formats.SMKEncryptionBase, meta.Generation, smk.meta.Generation))
			if err := s.intend([]string{rel(databasesDir, db, filepath.Base(path))}, nil); err != nil {
				return err
			}
			// The name may already count as live (an orphaned encryption
			// re-added): replace it atomically.
			if err := s.ks.writeFileAtomic(path, blob); err != nil {
				return err
			}
			next.SMKEncryption = true
		case ByPassword:
			if len(meta.Passwords) >= formats.MaxPasswords {
				return &Error{Text: fmt.Sprintf("database '%s' already has %d password encryptions", db, len(meta.Passwords)), Kind: ErrRefused}
			}
			if _, _, err := s.openDMKByPassword(meta, newPassword); err == nil {
				return &Error{Number: MsgEncryptionExists, Kind: ErrExists,
					Text:   "Adding an encryption to the symmetric key failed. An encryption by the same password '********' may already exist.",
					Detail: []string{fmt.Sprintf("the master key of database '%s' is already encrypted by this password", db)}}
			} else if !isMsg(err, MsgNotEncryptedBy) {
				return err
			}
			dmk, err := s.openDMK(meta, opts.OpenPassword)
			if err != nil {
				return err
			}
			blob, pe, err := s.newPassword(dmk.key, meta.Created, newPassword)
			if err != nil {
				return err
			}
			name := formats.PasswordBlobName(pe.ID, meta.Generation)
			if err := s.intend([]string{rel(databasesDir, db, name)}, nil); err != nil {
				return err
			}
			if err := ks.files.createFile(s.ks.dbPath(db, name), blob, true); err != nil {
				return err
			}
			if err := ks.files.syncDir(s.ks.dbPath(db)); err != nil {
				return err
			}
			next.Passwords = append(append([]formats.PasswordEncryption(nil), meta.Passwords...), pe)
		default:
			return invalid(fmt.Errorf("unknown encryption %q (want smk or password)", by))
		}
		return s.ks.writeDatabaseMeta(&next)
	})
}

// DropDMKEncryption drops an encryption of a database's master key: the SMK
// encryption, or the password encryption that the given password opens. The
// last password encryption can never be dropped (P9).
func (ks *Keystore) DropDMKEncryption(db string, by EncryptionKind, password []byte) error {
	if err := validName("database", db); err != nil {
		return err
	}
	write := ks.write
	if by == ByPassword {
		write = ks.writeWithPasswords
	}
	return write("dmk drop-encryption", func(s *session) error {
		meta, err := s.ks.databaseMeta(db, missingDatabase)
		if err != nil {
			return err
		}
		next := *meta
		var obsolete []string
		switch by {
		case BySMK:
			if !meta.SMKEncryption {
				return &Error{Number: MsgNotEncryptedBy, Kind: ErrNotFound,
					Plain:  "no service master key encryption to drop",
					Text:   "The key is not encrypted using the specified decryptor.",
					Detail: []string{fmt.Sprintf("the master key of database '%s' has no service master key encryption", db)}}
			}
			next.SMKEncryption = false
			if smk, err := s.ks.loadSMKMeta(); err == nil {
				for _, n := range itemBlobNames(formats.SMKEncryptionBase, meta.Generation, smkGens(smk)) {
					obsolete = append(obsolete, rel(databasesDir, db, n))
				}
			}
		case ByPassword:
			if len(meta.Passwords) == 1 {
				return &Error{Number: MsgLastPassword, Kind: ErrRefused,
					Text:   "Cannot drop encryption by password '********'.",
					Detail: []string{fmt.Sprintf("it is the last password encryption of the master key of database '%s'", db)},
					Hint:   "a database master key always keeps a password encryption: add another password first (keytree dmk add-encryption --by password)"}
			}
			_, id, err := s.openDMKByPassword(meta, password)
			if err != nil {
				return err
			}
			next.Passwords = nil
			for _, pe := range meta.Passwords {
				if pe.ID != id {
					next.Passwords = append(next.Passwords, pe)
				}
			}
			obsolete = append(obsolete, rel(databasesDir, db, formats.PasswordBlobName(id, meta.Generation)))
		default:
			return invalid(fmt.Errorf("unknown encryption %q (want smk or password)", by))
		}
		if err := s.intend(obsolete, nil); err != nil {
			return err
		}
		return s.ks.writeDatabaseMeta(&next)
	})
}

// DropDMK drops a database's master key, and with it the database, unless
// secrets depend on it (15580).
func (ks *Keystore) DropDMK(db string) error {
	if err := validName("database", db); err != nil {
		return err
	}
	return ks.write("dmk drop", func(s *session) error {
		if _, err := s.ks.databaseMeta(db, missingDatabase); err != nil {
			return err
		}
		n := 0
		if err := s.ks.eachSecretMeta(db, func(*formats.Secret) error { n++; return nil }); err != nil {
			return err
		}
		if n > 0 {
			return &Error{Number: MsgDMKInUse, Kind: ErrRefused,
				Text: fmt.Sprintf("Cannot drop master key because %d secrets in database '%s' are encrypted by it.", n, db),
				Hint: fmt.Sprintf("remove them first (keytree secret list %s; keytree secret rm %s/NAME)", db, db)}
		}
		// The commit: one rename of the whole directory into tmp/, the
		// reverse of dmk create. Removing database.toml first instead
		// would leave a directory without it, which keytree must take for
		// a database whose metadata was lost, and keep.
		gone := s.ks.path(tmpDir, "drop-"+randomName())
		if err := ks.files.renameDir(s.ks.dbPath(db), gone); err != nil {
			return err
		}
		if err := ks.files.syncDir(ks.path(databasesDir)); err != nil {
			return err
		}
		// What is left in tmp/ if this stops halfway, the next writer
		// removes.
		_ = ks.files.removeTree(gone)
		return nil
	})
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
