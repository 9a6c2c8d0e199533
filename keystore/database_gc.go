package keystore

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/protect"
)

// referencedDatabase decides garbage under databases/DB/, h being what p
// holds. No operation leaves a database directory without database.toml
// (see lostDatabase): a file in one is kept, and the clean-up is undecided
// until the metadata is back. Only a file that does not exist (a candidate
// under a dropped database) is decided: there is nothing to remove.
func (c *collector) referencedDatabase(p string, h handle) (ref, known bool) {
	if h.kind == kindDatabaseDir {
		return false, false
	}
	meta, err := c.ks.loadDatabaseMeta(h.db)
	if notExist(err) {
		if !c.ks.files.Exists(c.ks.path(filepath.FromSlash(p))) {
			return false, true
		}
		return c.damaged()
	}
	if err != nil || meta.Name != h.db {
		return c.damaged()
	}
	switch h.kind {
	case kindTemp:
		return false, true
	case kindDatabase, kindDatabaseBackups, kindSecret:
		return true, true
	case kindPassword:
		if h.gen != meta.Generation {
			return keptBy(meta.Retired, h.gen, h.name), true
		}
		for _, p := range meta.Passwords {
			if p.ID == h.name {
				return true, true
			}
		}
		return false, true
	case kindSMKEncryption:
		smk, err := c.smkMeta()
		if err != nil {
			return false, false
		}
		return meta.SMKEncryption && c.liveBlob(h, meta.Generation, smk.Generation, smk.Retired), true
	case kindSecretBlob:
		sm, err := c.ks.loadSecretMeta(h.db, h.name)
		if notExist(err) {
			return false, true
		}
		if err != nil || sm.Name != h.name {
			return c.damaged()
		}
		return c.liveBlob(h, sm.Revision, meta.Generation, meta.Retired), true
	}
	return false, false
}

// secretItemRefs lists a database's secrets by name.
func (ks *Keystore) secretItemRefs(db string) func(fn func(itemRef) error) error {
	return func(fn func(itemRef) error) error {
		c := &collector{ks: ks}
		return c.eachEntry(secretsDirOf(db).rel(), func(name string, isDir bool) error {
			base, ok := strings.CutSuffix(name, ".toml")
			if isDir || !ok || strings.HasPrefix(name, ".") {
				return nil
			}
			return fn(itemRef{kind: itemSecret, db: db, name: base})
		})
	}
}

// eachDatabaseItem walks over databases, their encryptions and their secrets
// for status and key-encryptions; damaged is as for eachDatabase.
func (s *session) eachDatabaseItem(smk *formats.SMK, fn func(item) error, damaged func(db string, err error) error) error {
	return s.ks.eachDatabase(func(m *formats.Database) error {
		for range m.Passwords {
			if err := fn(item{name: "dmk/" + m.Name, protector: string(protect.KindPassword)}); err != nil {
				return err
			}
		}
		// The password encryptions --force kept of retired keys.
		for _, r := range m.Retired {
			for range r.Kept {
				it := item{name: fmt.Sprintf("dmk/%s (generation %d)", m.Name, r.Generation),
					protector: string(protect.KindPassword), orphan: &Orphan{Generation: r.Generation, Thumbprint: r.Thumbprint}, kept: true}
				if err := fn(it); err != nil {
					return err
				}
			}
		}
		if m.SMKEncryption && smk != nil {
			_, orphan, err := s.ks.itemBlob(smkEncryptionBlob(m.Name, m.Generation, 0), smkGens(smk))
			if err != nil {
				return err
			}
			it := item{name: "dmk/" + m.Name, orphan: orphan, protector: string(protect.KindSMK), thumbprint: smk.Thumbprint}
			if orphan != nil {
				it.thumbprint = orphan.Thumbprint
			}
			if err := fn(it); err != nil {
				return err
			}
		}
		return s.ks.eachSecretMeta(m.Name, func(sm *formats.Secret) error {
			_, orphan, err := s.ks.itemBlob(secretBlob(m.Name, sm.Name, sm.Revision, 0), dmkGens(m))
			if err != nil {
				return err
			}
			it := item{name: "secret/" + m.Name + "/" + sm.Name, orphan: orphan, protector: string(protect.KindDMK), thumbprint: m.Thumbprint}
			if orphan != nil {
				it.thumbprint = orphan.Thumbprint
			}
			return fn(it)
		})
	}, damaged)
}
