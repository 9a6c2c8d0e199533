package keystore

import (
	"fmt"
	"sort"
	"strings"

	"github.com/keytree-dev/keytree/formats"
)

// UpgradeResult reports what Upgrade did.
type UpgradeResult struct {
	// Already: the keystore was of format 2; nothing changed.
	Already bool
	// Databases lists the databases moved to format 2.
	Databases []string
	// Values counts the values re-encrypted bound to their place.
	Values int
	// NeedPasswords lists, with the error, the databases that need a
	// password that passwords did not give.
	NeedPasswords []string
}

// Upgrade moves a keystore of format 1 to format 2 (docs/format.md,
// section 11): every value is encrypted again, under the same key, bound to
// its place, and smk.toml and every database.toml are signed. passwords
// opens the databases whose master key the SMK does not encrypt: if one
// of them has none, nothing changes. A database that does not open (a
// wrong password) stops the upgrade there; the databases moved before it
// stay moved.
//
// Each database moves in one rekey pass under its own key (a new
// generation of the same key, committed by one rename of database.toml),
// then the SMK's scope in one pass committed by smk.toml: each step is
// atomic and crash-safe like a regenerate. A crash between steps leaves
// some databases of format 2 in a keystore of format 1, which opens as it
// is; the next Upgrade goes on from there.
func (ks *Keystore) Upgrade(passwords map[string][]byte) (*UpgradeResult, error) {
	res := &UpgradeResult{}
	var todo []string
	err := ks.write("upgrade", func(s *session) error {
		todo = nil
		st, err := s.openSMK()
		if err != nil {
			return err
		}
		var needPassword []string
		err = ks.eachDatabaseMeta(func(m *formats.Database) error {
			if dbAuthenticated(m) {
				return nil
			}
			if !m.SMKEncryption && passwords[m.Name] == nil {
				needPassword = append(needPassword, m.Name)
			}
			todo = append(todo, m.Name)
			return nil
		})
		if err != nil {
			return err
		}
		for db := range passwords {
			if _, err := ks.databaseMeta(db, missingDatabase); err != nil {
				return err
			}
		}
		if len(needPassword) > 0 {
			sort.Strings(needPassword)
			res.NeedPasswords = needPassword
			return &Error{
				Number: MsgDMKNotOpen,
				Plain:  "databases need their passwords",
				Text:   "Please create a master key in the database or open the master key in the session before performing this operation.",
				Detail: []string{fmt.Sprintf("the master key of %s is not encrypted by the service master key; nothing was changed",
					databaseList(needPassword))},
				Remedy: Remedy{Kind: RemedyOpenDMK, Database: needPassword[0]},
				Kind:   ErrDecryption,
			}
		}
		if authenticated(st.meta) && len(todo) == 0 {
			res.Already = true
			return nil
		}
		// keystore.toml first: from here on, keytree before format 2
		// refuses the keystore, at its first file, with a message that
		// says so, rather than at a database of format 2.
		return ks.markFormat2()
	})
	if err != nil || res.Already {
		return res, err
	}
	for _, db := range todo {
		n, err := ks.upgradeDatabase(db, passwords[db])
		if err != nil {
			return res, err
		}
		res.Databases = append(res.Databases, db)
		res.Values += n
	}
	err = ks.write("upgrade", func(s *session) error {
		st, err := s.openSMK()
		if err != nil || authenticated(st.meta) {
			return err
		}
		if err := st.refuseDisowned(); err != nil {
			return err
		}
		r, err := s.rekey(&smkScope{s: s, old: st.meta, upgrade: true},
			rekeyPlan{oldKey: st.key, newKey: st.key, newCreated: st.meta.Created})
		if err != nil {
			return err
		}
		res.Values += r.Reencrypted
		return nil
	})
	return res, err
}

// upgradeDatabase moves one database to format 2: its secrets encrypted
// again under the same key, bound, and database.toml signed.
func (ks *Keystore) upgradeDatabase(db string, password []byte) (int, error) {
	n := 0
	err := ks.writer(password != nil)("upgrade", func(s *session) error {
		meta, err := ks.databaseMeta(db, missingDatabase)
		if err != nil || dbAuthenticated(meta) {
			return err
		}
		dmk, err := s.openDMK(meta, password)
		if err != nil {
			return err
		}
		var smk *smkState
		if meta.SMKEncryption {
			if smk, err = s.openSMK(); err != nil {
				return err
			}
		}
		sc := s.dmkScope(meta, nil, smk)
		sc.upgrade = true
		r, err := s.rekey(sc, rekeyPlan{oldKey: dmk.key, newKey: dmk.key, newCreated: meta.Created})
		if err != nil {
			return err
		}
		n = r.Reencrypted
		return nil
	})
	return n, err
}

// databaseList names databases for a message: database 'a', or databases
// 'a', 'b' and 'c'.
func databaseList(dbs []string) string {
	q := make([]string, len(dbs))
	for i, db := range dbs {
		q[i] = "'" + db + "'"
	}
	if len(q) == 1 {
		return "database " + q[0]
	}
	return "databases " + strings.Join(q[:len(q)-1], ", ") + " and " + q[len(q)-1]
}

// markFormat2 writes keystore.toml at version 2 (docs/format.md, section
// 18): one atomic replace, before anything else of the upgrade.
func (ks *Keystore) markFormat2() error {
	if ks.version == formats.Authenticated {
		return nil
	}
	data, err := ks.files.ReadFile(ks.path(keystoreFile), formats.MaxMetadataSize)
	if err != nil {
		return ks.fileError(ks.path(keystoreFile), err)
	}
	meta, err := formats.DecodeKeystore(data)
	if err != nil {
		return errCorrupt(ks.path(keystoreFile), err)
	}
	if meta.ID != ks.id {
		return corruptf(ks.path(keystoreFile), "names keystore %s, but it was opened as %s", meta.ID, ks.id)
	}
	meta.Version = formats.Authenticated
	if data, err = meta.Encode(); err != nil {
		return err
	}
	if err := ks.writeFileAtomic(ks.path(keystoreFile), data); err != nil {
		return err
	}
	ks.version = formats.Authenticated
	return nil
}
