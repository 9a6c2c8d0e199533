package keystore

import (
	"fmt"
	"strings"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/protect"
)

// referencedDatabase decides garbage under databases/DB/. No operation
// leaves a database directory without database.toml (see lostDatabase):
// a file in one is kept, and the clean-up is undecided until the metadata
// is back. Only a file that does not exist (a candidate under a dropped
// database) is decided: there is nothing to remove.
func (c *collector) referencedDatabase(parts []string) (ref, known bool) {
	if len(parts) < 3 || parts[0] != databasesDir || formats.ValidateName("database", parts[1]) != nil {
		return false, false
	}
	db := parts[1]
	name := parts[len(parts)-1]
	meta, err := c.ks.loadDatabaseMeta(db)
	if notExist(err) {
		if !c.ks.files.Exists(c.ks.path(parts...)) {
			return false, true
		}
		return c.damaged()
	}
	if err != nil || meta.Name != db {
		return c.damaged()
	}
	if strings.HasPrefix(name, formats.TempPrefix) {
		return false, true
	}
	switch {
	case len(parts) == 3 && (name == databaseFile || name == formats.BackupsFile):
		return true, true
	case len(parts) == 3:
		if id, gen, ok := formats.ParsePasswordBlobName(name); ok {
			if gen != meta.Generation {
				return keptBy(meta.Retired, gen, id), true
			}
			for _, p := range meta.Passwords {
				if p.ID == id {
					return true, true
				}
			}
			return false, true
		}
		base, rev, gen, ok := formats.ParseBlobName(name)
		if !ok || base != formats.SMKEncryptionBase {
			return false, false
		}
		smk, err := c.smkMeta()
		if err != nil {
			return false, false
		}
		return meta.SMKEncryption && rev == meta.Generation && c.genReferenced(gen, smk.Generation, smk.Retired, func() bool {
			return c.ks.files.Exists(c.ks.dbPath(db, formats.BlobName(base, rev, smk.Generation)))
		}), true
	case len(parts) == 4 && parts[2] == secretsDir:
		if strings.HasSuffix(name, ".toml") {
			return true, true
		}
		base, rev, gen, ok := formats.ParseBlobName(name)
		if !ok || formats.ValidateName("secret", base) != nil {
			return false, false
		}
		sm, err := c.ks.loadSecretMeta(db, base)
		if notExist(err) {
			return false, true
		}
		if err != nil || sm.Name != base {
			return c.damaged()
		}
		return rev == sm.Revision && c.genReferenced(gen, meta.Generation, meta.Retired, func() bool {
			return c.ks.files.Exists(c.ks.dbPath(db, secretsDir, formats.BlobName(base, rev, meta.Generation)))
		}), true
	}
	return false, false
}

// secretItemRefs lists a database's secrets by name.
func (ks *Keystore) secretItemRefs(db string) func(fn func(itemRef) error) error {
	return func(fn func(itemRef) error) error {
		c := &collector{ks: ks}
		return c.eachEntry(rel(databasesDir, db, secretsDir), func(name string, isDir bool) error {
			base, ok := strings.CutSuffix(name, ".toml")
			if isDir || !ok || strings.HasPrefix(name, ".") {
				return nil
			}
			return fn(itemRef{kind: "secret", db: db, name: base})
		})
	}
}

// eachDatabaseItem walks over databases, their encryptions and their secrets
// for status and key-encryptions; damaged is as for eachDatabase.
func (s *session) eachDatabaseItem(smk *formats.SMK, fn func(item) error, damaged func(db string, err error) error) error {
	return s.ks.eachDatabase(func(m *formats.Database) error {
		if err := fn(item{kind: "database", name: "dmk/" + m.Name}); err != nil {
			return err
		}
		for range m.Passwords {
			if err := fn(item{kind: "dmk-encryption", name: "dmk/" + m.Name, protector: string(protect.KindPassword)}); err != nil {
				return err
			}
		}
		// The password encryptions --force kept of retired keys.
		for _, r := range m.Retired {
			for range r.Kept {
				it := item{kind: "dmk-encryption", name: fmt.Sprintf("dmk/%s (generation %d)", m.Name, r.Generation),
					protector: string(protect.KindPassword), orphan: &Orphan{Generation: r.Generation, Thumbprint: r.Thumbprint}, kept: true}
				if err := fn(it); err != nil {
					return err
				}
			}
		}
		if m.SMKEncryption && smk != nil {
			_, orphan, err := s.ks.itemBlob([]string{databasesDir, m.Name}, formats.SMKEncryptionBase, m.Generation, smkGens(smk))
			if err != nil {
				return err
			}
			it := item{kind: "dmk-encryption", name: "dmk/" + m.Name, orphan: orphan, protector: string(protect.KindSMK), thumbprint: smk.Thumbprint}
			if orphan != nil {
				it.thumbprint = orphan.Thumbprint
			}
			if err := fn(it); err != nil {
				return err
			}
		}
		return s.ks.eachSecretMeta(m.Name, func(sm *formats.Secret) error {
			_, orphan, err := s.ks.itemBlob([]string{databasesDir, m.Name, secretsDir}, sm.Name, sm.Revision, dmkGens(m))
			if err != nil {
				return err
			}
			it := item{kind: "secret", name: "secret/" + m.Name + "/" + sm.Name, orphan: orphan, protector: string(protect.KindDMK), thumbprint: m.Thumbprint}
			if orphan != nil {
				it.thumbprint = orphan.Thumbprint
			}
			return fn(it)
		})
	}, damaged)
}
