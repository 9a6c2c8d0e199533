package keystore

// The statements on a database master key that are not rekeys (those are in
// dmkops.go): CREATE MASTER KEY, ALTER MASTER KEY ADD and DROP ENCRYPTION,
// and DROP MASTER KEY.

import (
	"fmt"
	"path/filepath"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/protect"
)

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
			Text:   "There is already a master key in the database. Please drop it before performing this statement.",
			Remedy: Remedy{Kind: RemedyListDatabases, Database: db}}
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
			Version: s.newFormat(), Name: db, Generation: 1, Thumbprint: key.Thumbprint(),
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
		if err := s.signDatabase(meta, key); err != nil {
			return err
		}
		metaData, err := meta.Encode()
		if err != nil {
			return err
		}
		// The database is built whole in tmp/, which every writer empties
		// first, and renamed into databases/ in one step, as db import
		// does: no state of databases/ shows a database directory without
		// its database.toml.
		err = s.begin().buildDatabase("create", db, func(stage string) error {
			b := ks.files.NewBatch(ks.dir)
			if err := b.Create(filepath.Join(stage, passwordBlob(db, meta.Passwords[0].ID, 1).base()), stage, pwBlob); err != nil {
				return err
			}
			if smkBlob != nil {
				if err := b.Create(filepath.Join(stage, smkEncryptionBlob(db, 1, smk.meta.Generation).base()), stage, smkBlob); err != nil {
					return err
				}
			}
			if err := b.Create(filepath.Join(stage, databaseFile), stage, metaData); err != nil {
				return err
			}
			return b.Sync()
		})
		if err != nil {
			return err
		}
		info = databaseInfo(meta, 0)
		return nil
	})
	return info, err
}

// EncryptionKind names what protects a DMK.
type EncryptionKind string

const (
	BySMK      EncryptionKind = "smk"
	ByPassword EncryptionKind = "password"
)

// changeEncryptions runs fn, which changes the encryptions of database db's
// master key, under the exclusive lock (and the scrypt rehearsal if scrypt
// is set: fn runs scrypt), then commits the metadata fn fills in as next.
func (ks *Keystore) changeEncryptions(op, db string, by EncryptionKind, scrypt bool, fn func(s *session, t *txn, meta, next *formats.Database) (*protect.Key, error)) error {
	return ks.writer(scrypt)(op, func(s *session) error {
		meta, err := s.ks.databaseMeta(db, missingDatabase)
		if err != nil {
			return err
		}
		if by != BySMK && by != ByPassword {
			return invalid(fmt.Errorf("unknown encryption %q (want smk or password)", by))
		}
		next := *meta
		t := s.begin()
		key, err := fn(s, t, meta, &next)
		if err != nil {
			return err
		}
		// A change of the passwords is signed by the key that opened;
		// one of the SMK encryption changes nothing the MAC covers.
		if key != nil {
			if err := s.signDatabase(&next, key); err != nil {
				return err
			}
		}
		return t.commitDatabase(&next)
	})
}

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
	scrypt := by == ByPassword || opts.OpenPassword != nil
	return ks.changeEncryptions("dmk add-encryption", db, by, scrypt, func(s *session, t *txn, meta, next *formats.Database) (*protect.Key, error) {
		switch by {
		case BySMK:
			smk, err := s.openSMK()
			if err != nil {
				return nil, err
			}
			if meta.SMKEncryption && ks.files.Exists(s.ks.pathOf(smkEncryptionBlob(db, meta.Generation, smk.meta.Generation))) {
				return nil, &Error{Number: MsgEncryptionExists, Kind: ErrExists,
					Text:   "Adding an encryption to the symmetric key failed. An encryption by the same service master key may already exist.",
					Detail: []string{fmt.Sprintf("the master key of database '%s' is already encrypted by the service master key", db)}}
			}
			dmk, err := s.openDMK(meta, opts.OpenPassword)
			if err != nil {
				return nil, err
			}
			blob, err := sealDMKForSMK(smk, dmk.key, meta.Created, db)
			if err != nil {
				return nil, err
			}
			// The name may already count as live (an orphaned encryption
			// re-added): replace it atomically.
			if err := t.replace(s.ks.pathOf(smkEncryptionBlob(db, meta.Generation, smk.meta.Generation)), blob); err != nil {
				return nil, err
			}
			next.SMKEncryption, next.PasswordOnly = true, false
			// Signed again, so that password_only is cleared.
			return dmk.key, nil
		case ByPassword:
			if len(meta.Passwords) >= formats.MaxPasswords {
				return nil, &Error{Text: fmt.Sprintf("database '%s' already has %d password encryptions", db, len(meta.Passwords)), Kind: ErrRefused}
			}
			if _, _, err := s.openDMKByPassword(meta, newPassword); err == nil {
				return nil, &Error{Number: MsgEncryptionExists, Kind: ErrExists,
					Text:   "Adding an encryption to the symmetric key failed. An encryption by the same password '********' may already exist.",
					Detail: []string{fmt.Sprintf("the master key of database '%s' is already encrypted by this password", db)}}
			} else if !isMsg(err, MsgNotEncryptedBy) {
				return nil, err
			}
			dmk, err := s.openDMK(meta, opts.OpenPassword)
			if err != nil {
				return nil, err
			}
			blob, pe, err := s.newPassword(dmk.key, meta.Created, newPassword)
			if err != nil {
				return nil, err
			}
			if err := t.create(s.ks.pathOf(passwordBlob(db, pe.ID, meta.Generation)), blob); err != nil {
				return nil, err
			}
			next.Passwords = append(append([]formats.PasswordEncryption(nil), meta.Passwords...), pe)
			return dmk.key, nil
		}
		return nil, nil
	})
}

// DropDMKEncryption drops an encryption of a database's master key: the SMK
// encryption, or the password encryption that the given password opens. The
// last password encryption can never be dropped (P9). For the SMK
// encryption, password (optional) opens the key when that encryption does
// not (keyToSignDrop).
func (ks *Keystore) DropDMKEncryption(db string, by EncryptionKind, password []byte) error {
	if err := validName("database", db); err != nil {
		return err
	}
	return ks.changeEncryptions("dmk drop-encryption", db, by, by == ByPassword || password != nil, func(s *session, t *txn, meta, next *formats.Database) (*protect.Key, error) {
		switch by {
		case BySMK:
			if !meta.SMKEncryption {
				return nil, &Error{Number: MsgNotEncryptedBy, Kind: ErrNotFound,
					Plain:  "no service master key encryption to drop",
					Text:   "The key is not encrypted using the specified decryptor.",
					Detail: []string{fmt.Sprintf("the master key of database '%s' has no service master key encryption", db)}}
			}
			next.SMKEncryption = false
			if smk, err := s.ks.loadSMKMeta(); err == nil {
				t.obsolete(s.ks.itemBlobPaths(smkEncryptionBlob(db, meta.Generation, 0), smkGens(smk))...)
			}
			return s.keyToSignDrop(meta, password)
		case ByPassword:
			if len(meta.Passwords) == 1 {
				return nil, &Error{Number: MsgLastPassword, Kind: ErrRefused,
					Text:   "Cannot drop encryption by password '********'.",
					Detail: []string{fmt.Sprintf("it is the last password encryption of the master key of database '%s'", db)},
					Remedy: Remedy{Kind: RemedyAddPassword}}
			}
			key, id, err := s.openDMKByPassword(meta, password)
			if err != nil {
				return nil, err
			}
			if err := s.ks.checkDatabaseMAC(meta, key); err != nil {
				return nil, err
			}
			next.Passwords = nil
			for _, pe := range meta.Passwords {
				if pe.ID != id {
					next.Passwords = append(next.Passwords, pe)
				}
			}
			t.obsolete(s.ks.pathOf(passwordBlob(db, id, meta.Generation)))
			return key, nil
		}
		return nil, nil
	})
}

// keyToSignDrop opens, for the drop of a database's SMK encryption, its key
// through that encryption, so that database.toml is signed password_only
// (signDatabase) and the encryption, put back, is refused. Where that does
// not open (the SMK does not open, the encryption is missing, orphaned or
// damaged: all of which someone who can write the keystore can bring
// about), the key is opened by password, and without one the drop is
// refused (15581): an unsigned drop would be undone by putting the
// encryption back. A database.toml that does not verify, or is rolled
// back, stops the drop.
func (s *session) keyToSignDrop(meta *formats.Database, password []byte) (*protect.Key, error) {
	if !dbAuthenticated(meta) {
		return nil, nil
	}
	key, err := s.dmkKeyBySMK(meta)
	if err != nil {
		if password == nil {
			e := &Error{
				Number: MsgDMKNotOpen,
				Plain:  "database needs its password",
				Text:   "Please create a master key in the database or open the master key in the session before performing this operation.",
				Detail: []string{fmt.Sprintf("the service master key encryption of database '%s' does not open the key (%v); the drop is signed with the key, so open it with its password", meta.Name, err)},
				Remedy: Remedy{Kind: RemedyOpenDMK, Database: meta.Name},
				Kind:   ErrDecryption,
			}
			return nil, e
		}
		if key, _, err = s.openDMKByPassword(meta, password); err != nil {
			return nil, err
		}
	}
	if err := s.ks.checkDatabaseMAC(meta, key); err != nil {
		return nil, err
	}
	if err := s.ks.checkDatabaseRollbackOf(meta, s.acceptRollback); err != nil {
		return nil, err
	}
	return key, nil
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
				Text:   fmt.Sprintf("Cannot drop master key because %d secrets in database '%s' are encrypted by it.", n, db),
				Remedy: Remedy{Kind: RemedyRemoveSecrets, Database: db}}
		}
		return s.begin().commitDrop(db)
	})
}
