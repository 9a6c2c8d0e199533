package keystore

import (
	"fmt"
	"time"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/keystore/internal/fsio"
	"github.com/keytree-dev/keytree/protect"
)

// dmkScope is a database master key and its secrets, for the rekey pass.
// newPassword is the password the new key is encrypted with; if it is nil
// the key does not change (recover), and its password encryptions are
// carried over to the new generation as they are. smk, if set, re-creates
// the SMK encryption.
type dmkScope struct {
	s           *session
	meta        *formats.Database
	newPassword []byte
	smk         *smkState
	passwords   []formats.PasswordEncryption // the new generation's, once written
	// upgrade moves the database to format 2 (Upgrade).
	upgrade bool
}

func (sc *dmkScope) authenticated() (was, will bool) {
	return dbAuthenticated(sc.meta), dbAuthenticated(sc.meta) || sc.upgrade
}

func (s *session) dmkScope(meta *formats.Database, newPassword []byte, smk *smkState) *dmkScope {
	return &dmkScope{s: s, meta: meta, newPassword: newPassword, smk: smk}
}

func (sc *dmkScope) current() scopeKey {
	m := sc.meta
	return scopeKey{what: fmt.Sprintf("database master key of '%s'", m.Name), db: m.Name, generation: m.Generation,
		thumbprint: m.Thumbprint, algorithm: m.Algorithm, retired: m.Retired}
}

func (sc *dmkScope) refs(fn func(itemRef) error) error {
	return sc.s.ks.secretItemRefs(sc.meta.Name)(fn)
}

func (sc *dmkScope) itemDirs() ([]string, error) {
	return []string{secretsDirOf(sc.meta.Name).rel()}, nil
}

func (sc *dmkScope) sweep() []string {
	return []string{databaseDir(sc.meta.Name).rel(), secretsDirOf(sc.meta.Name).rel()}
}

func (sc *dmkScope) writeOwn(b *fsio.Batch, key *protect.Key, gen int, created time.Time) error {
	s, meta := sc.s, sc.meta
	dir := s.ks.pathOf(databaseDir(meta.Name))
	if sc.newPassword != nil {
		// Sealed before the first intend, where the rehearsal
		// (writeWithPasswords) runs the scrypt.
		blob, pe, err := s.newPassword(key, created, sc.newPassword)
		if err != nil {
			return err
		}
		if err := b.Create(sc.keptPath(gen, pe.ID), dir, blob); err != nil {
			return err
		}
		sc.passwords = []formats.PasswordEncryption{pe}
	} else {
		for _, pe := range meta.Passwords {
			old := sc.keptPath(meta.Generation, pe.ID)
			blob, err := s.ks.files.ReadFile(old, maxKeyBlobSize)
			if err != nil {
				return s.ks.fileError(old, err)
			}
			if err := b.Create(sc.keptPath(gen, pe.ID), dir, blob); err != nil {
				return err
			}
		}
		sc.passwords = meta.Passwords
	}
	if sc.smk != nil {
		blob, err := sealDMKForSMK(sc.smk, key, created, meta.Name)
		if err != nil {
			return err
		}
		return b.Create(s.ks.pathOf(smkEncryptionBlob(meta.Name, gen, sc.smk.meta.Generation)), dir, blob)
	}
	return nil
}

func (sc *dmkScope) commit(t *txn, key *protect.Key, gen int, created time.Time, retired []formats.Retired) error {
	version := formats.Version
	if _, will := sc.authenticated(); will {
		version = formats.Authenticated
	}
	next := &formats.Database{
		Version:       version,
		Name:          sc.meta.Name,
		Generation:    gen,
		Thumbprint:    key.Thumbprint(),
		Algorithm:     string(key.Algorithm()),
		Created:       created.UTC(),
		SMKEncryption: sc.smk != nil,
		Passwords:     sc.passwords,
		Retired:       retired,
	}
	if len(retired) > 0 {
		next.FormerNames = sc.meta.FormerNames // orphans may still be bound to them
	}
	next.PasswordOnly = sc.meta.PasswordOnly && version == formats.Authenticated
	next.Commit = sc.meta.Commit
	if err := sc.s.signDatabase(next, key); err != nil {
		return err
	}
	return t.commitDatabase(next)
}

func (sc *dmkScope) ownFiles(oldGen int) []string {
	var out []string
	for _, pe := range sc.meta.Passwords {
		out = append(out, sc.keptPath(oldGen, pe.ID))
	}
	if smkMeta, err := sc.s.ks.loadSMKMeta(); err == nil {
		out = append(out, sc.s.ks.itemBlobPaths(smkEncryptionBlob(sc.meta.Name, oldGen, 0), smkGens(smkMeta))...)
	}
	return out
}

// keepable: only the password encryptions are kept. The key was not
// opened, so its SMK encryption, if any, did not open it either.
func (sc *dmkScope) keepable() []string { return passwordIDs(sc.meta.Passwords) }

func (sc *dmkScope) keptPath(gen int, id string) string {
	return sc.s.ks.pathOf(passwordBlob(sc.meta.Name, id, gen))
}

// dmkForForce opens a database's master key for an operation that may go on
// without it: with --force, a key that does not open is no obstacle (its
// secrets are kept, orphaned).
func (s *session) dmkForForce(meta *formats.Database, opts DMKOptions, restore bool) (*protect.Key, error) {
	dmk, err := s.openDMK(meta, opts.OpenPassword)
	if err == nil {
		return dmk.key, nil
	}
	if opts.Force && !isScryptStop(err) {
		return nil, nil
	}
	if restore {
		e := errCurrentKey()
		e.Detail = []string{err.Error()}
		e.Remedy = Remedy{Kind: RemedyOpenDMKOrForce}
		return nil, e
	}
	return nil, err
}

// smkForDMK opens the SMK when a database's master key is encrypted by it,
// so that operations re-create that encryption for a new key. In format 2
// the unsigned smk_encryption is not enough: password_only must not be
// set, and the encryption must be there, opening to the key database.toml
// names, with database.toml verifying under that key (or be orphaned,
// under a retired SMK). Otherwise the new key gets no SMK encryption: a
// flag edited on, or password_only edited away, never has a key sealed to
// the SMK.
func (s *session) smkForDMK(meta *formats.Database) (*smkState, error) {
	if !meta.SMKEncryption || meta.PasswordOnly {
		return nil, nil
	}
	st, err := s.openSMK()
	if err != nil || !dbAuthenticated(meta) {
		return st, err
	}
	_, orphan, err := s.ks.itemBlob(smkEncryptionBlob(meta.Name, meta.Generation, 0), smkGens(st.meta))
	switch {
	case err != nil:
		return nil, nil
	case orphan != nil:
		return st, nil
	}
	key, err := s.dmkKeyBySMK(meta)
	if err != nil || s.ks.checkDatabaseMAC(meta, key) != nil {
		return nil, nil
	}
	return st, nil
}

// RegenerateDMK replaces a database's master key with a new random one,
// re-encrypting every secret: all of it happens or none (P6). Like SQL
// Server's ALTER MASTER KEY REGENERATE WITH ENCRYPTION BY PASSWORD, the new
// key is encrypted by one password, newPassword (and by the SMK if the old
// one was); other password encryptions are not carried over.
func (ks *Keystore) RegenerateDMK(db string, newPassword []byte, opts DMKOptions) (*RekeyResult, error) {
	if err := validName("database", db); err != nil {
		return nil, err
	}
	if err := checkNewPassword(newPassword, db, opts); err != nil {
		return nil, err
	}
	var res *RekeyResult
	// The new key is made once, not once per pass of writeWithPasswords,
	// so that the rehearsal seals the key that is written.
	newKeys := map[protect.Algorithm]*protect.Key{}
	newCreated := ks.nowUTC()
	err := ks.writeWithPasswords("dmk regenerate", func(s *session) error {
		meta, err := s.ks.databaseMeta(db, missingDatabase)
		if err != nil {
			return err
		}
		oldKey, err := s.dmkForForce(meta, opts, false)
		if err != nil {
			return err
		}
		alg, err := newKeyAlgorithm(opts.Algorithm, oldKey, meta.Algorithm)
		if err != nil {
			return err
		}
		smk, err := s.smkForDMK(meta)
		if err != nil {
			return err
		}
		newKey := newKeys[alg]
		if newKey == nil {
			if newKey, err = protect.GenerateKey(protect.KindDMK, alg); err != nil {
				return err
			}
			newKeys[alg] = newKey
		}
		if _, _, err := s.newPassword(newKey, newCreated, newPassword); err != nil {
			return err
		}
		res, err = s.rekey(s.dmkScope(meta, newPassword, smk), rekeyPlan{
			oldKey: oldKey, newKey: newKey, newCreated: newCreated, force: opts.Force, progress: opts.Progress,
		})
		return err
	})
	return res, err
}

// BackupDMK writes a database's master key to path, encrypted with password.
func (ks *Keystore) BackupDMK(db, path string, password []byte, opts DMKOptions) (*DatabaseInfo, error) {
	if err := validName("database", db); err != nil {
		return nil, err
	}
	if err := checkNewPassword(password, db, opts); err != nil {
		return nil, err
	}
	var info *DatabaseInfo
	err := ks.read("dmk backup", func(s *session) error {
		meta, err := s.ks.databaseMeta(db, missingDatabase)
		if err != nil {
			return err
		}
		dmk, err := s.openDMK(meta, opts.OpenPassword)
		if err != nil {
			return err
		}
		if err := writeKeyBackup(ks.outside, path, dmk.key, backupKeyFile(dmk.key, meta.Created, ks.now(), db), password); err != nil {
			return err
		}
		info = databaseInfo(meta, 0)
		info.Thumbprint = dmk.key.Thumbprint()
		return nil
	})
	if err == nil {
		ks.recordBackup(db, path, info.Thumbprint)
	}
	return info, err
}

// RestoreDMK makes the key in a backup a database's master key: SMK restore's
// semantics one level down. Every secret is decrypted with the current DMK
// and re-encrypted under the restored one; if the current DMK cannot be
// opened (15329) or a secret cannot be decrypted (15320), nothing changes
// unless opts.Force, which keeps what it cannot decrypt, orphaned. Restoring
// the key in use changes nothing (15588). The restored key is encrypted by
// newPassword (the backup's password if nil), and by the SMK if the database
// master key was.
func (ks *Keystore) RestoreDMK(db, path string, backupPassword, newPassword []byte, opts DMKOptions) (*RekeyResult, error) {
	if err := validName("database", db); err != nil {
		return nil, err
	}
	if newPassword != nil {
		if err := checkNewPassword(newPassword, db, opts); err != nil {
			return nil, err
		}
	} else {
		newPassword = backupPassword
	}
	key, kf, err := readKeyBackup(path, protect.KindDMK, backupPassword)
	if err != nil {
		return nil, err
	}
	var res *RekeyResult
	previewed := false
	err = ks.writeWithPasswords("dmk restore", func(s *session) error {
		meta, err := s.ks.databaseMeta(db, missingDatabase)
		if err != nil {
			return err
		}
		oldKey, err := s.dmkForForce(meta, opts, true)
		// Said once, in the pass under the exclusive lock, before
		// anything changes; also when the restore is refused (15329).
		if !s.rehearsal && !previewed && meta.Thumbprint != key.Thumbprint() && (err == nil || isMsg(err, MsgCurrentKey)) {
			previewed = true
			s.restorePreview("secrets", s.ks.secretItemRefs(db), dmkGens(meta), meta.Thumbprint, oldKey != nil, key, kf.Created)
		}
		if err != nil {
			return err
		}
		if oldKey != nil && oldKey.Equal(key) {
			res = &RekeyResult{Thumbprint: key.Thumbprint(), Algorithm: key.Algorithm(), Generation: meta.Generation, Unchanged: true}
			return nil
		}
		smk, err := s.smkForDMK(meta)
		if err != nil {
			return err
		}
		if _, _, err := s.newPassword(key, kf.Created, newPassword); err != nil {
			return err
		}
		res, err = s.rekey(s.dmkScope(meta, newPassword, smk), rekeyPlan{
			oldKey: oldKey, newKey: key, newCreated: kf.Created, force: opts.Force,
			keys: map[string]*protect.Key{key.Thumbprint(): key}, tryKeys: []*protect.Key{key}, progress: opts.Progress,
		})
		return err
	})
	return res, err
}

// RecoverDMK opens an old backup of a database's master key and
// re-encrypts, under the current DMK, every orphaned secret that key opens.
// The DMK moves to a new generation with its encryptions unchanged. Without
// a backup (path ""), password opens the password encryptions that --force
// kept of the database's retired keys instead.
func (ks *Keystore) RecoverDMK(db, path string, password []byte, opts DMKOptions) (*RekeyResult, error) {
	if err := validName("database", db); err != nil {
		return nil, err
	}
	backup, err := readBackupIfNamed(path, protect.KindDMK, password)
	if err != nil {
		return nil, err
	}
	var res *RekeyResult
	err = ks.writer((backup == nil && password != nil) || opts.OpenPassword != nil)("dmk recover", func(s *session) error {
		meta, err := s.ks.databaseMeta(db, missingDatabase)
		if err != nil {
			return err
		}
		if len(meta.Retired) == 0 {
			return &Error{Text: fmt.Sprintf("database '%s' has no orphaned secrets", db), Kind: ErrNotFound,
				Remedy: Remedy{Kind: RemedyListOrphans}}
		}
		keys := []*protect.Key{backup}
		if backup == nil {
			if keys, err = s.keptDMKKeys(meta, password); err != nil {
				return err
			}
		}
		dmk, err := s.openDMK(meta, opts.OpenPassword)
		if err != nil {
			return err
		}
		smk, err := s.smkForDMK(meta)
		if err != nil {
			return err
		}
		res, err = s.rekey(s.dmkScope(meta, nil, smk), rekeyPlan{
			oldKey: dmk.key, newKey: dmk.key, newCreated: meta.Created,
			keys: keysByThumbprint(keys), tryKeys: keys, mustRecover: true, progress: opts.Progress,
		})
		return err
	})
	return res, err
}

// keptDMKKeys opens, with password, the password encryptions that --force
// kept of a database's retired master keys (formats.Retired.Kept), as the
// current key's are opened: the recovery after a --force given a mistyped
// --open-password-file.
func (s *session) keptDMKKeys(meta *formats.Database, password []byte) ([]*protect.Key, error) {
	var keys []*protect.Key
	for _, r := range meta.Retired {
		if len(r.Kept) == 0 {
			continue
		}
		old := &formats.Database{Name: meta.Name, Generation: r.Generation, Thumbprint: r.Thumbprint, Algorithm: r.Algorithm}
		for _, id := range r.Kept {
			old.Passwords = append(old.Passwords, formats.PasswordEncryption{ID: id})
		}
		key, _, err := s.openDMKByPassword(old, password)
		if isMsg(err, MsgNotEncryptedBy) {
			continue
		}
		if err != nil {
			return nil, err
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, &Error{
			Number: MsgNotEncryptedBy,
			Plain:  "wrong password",
			Text:   "The key is not encrypted using the specified decryptor.",
			Detail: []string{fmt.Sprintf("no kept password encryption of an earlier master key of database '%s' opens with that password", meta.Name)},
			Remedy: Remedy{Kind: RemedyOldPasswordOrRecoverDMK, Database: meta.Name},
			Kind:   ErrDecryption,
		}
	}
	return keys, nil
}

func passwordIDs(list []formats.PasswordEncryption) []string {
	var ids []string
	for _, pe := range list {
		ids = append(ids, pe.ID)
	}
	return ids
}
