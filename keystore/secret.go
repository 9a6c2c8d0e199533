package keystore

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/keytree-dev/keytree/formats"
)

// Secret is a secret's metadata: its name in clear, its value encrypted by
// its database's master key.
type Secret struct {
	Database string
	Name     string
	Created  time.Time
	Updated  time.Time
	Orphan   *Orphan // set if --force left it under an older DMK
}

func (ks *Keystore) secretMetaPath(db, name string) string {
	return ks.pathOf(secretMeta(db, name))
}

func (ks *Keystore) loadSecretMeta(db, name string) (*formats.Secret, error) {
	return loadMeta(ks, ks.secretMetaPath(db, name), formats.DecodeSecret)
}

func (ks *Keystore) secretMeta(db, name string) (*formats.Secret, error) {
	meta, err := ks.loadSecretMeta(db, name)
	if notExist(err) {
		return nil, ks.suggestName(errNotFound("secret", db+"/"+name), "secret", db+"/"+name)
	}
	if err != nil {
		return nil, err
	}
	if meta.Name != name {
		if strings.EqualFold(meta.Name, name) {
			return nil, &Error{Text: fmt.Sprintf("the secret is named '%s/%s', not '%s/%s'", db, meta.Name, db, name), Kind: ErrNotFound,
				Hint: "names are case-sensitive, and this filesystem is not: use the name as it was created"}
		}
		return nil, corruptf(ks.secretMetaPath(db, name), "names secret %q", meta.Name)
	}
	return meta, nil
}

// eachSecretMeta calls fn with the metadata of every secret of a database.
func (ks *Keystore) eachSecretMeta(db string, fn func(*formats.Secret) error) error {
	c := &collector{ks: ks}
	return c.eachEntry(secretsDirOf(db).rel(), func(name string, isDir bool) error {
		base, ok := strings.CutSuffix(name, ".toml")
		if isDir || !ok || strings.HasPrefix(name, ".") {
			return nil
		}
		if err := formats.ValidateName("secret", base); err != nil {
			return corruptf(ks.dbPath(db, secretsDir, name), "is not a secret's file: %v", err)
		}
		meta, err := ks.secretMeta(db, base)
		if err != nil {
			return err
		}
		return fn(meta)
	})
}

// eachDatabaseMeta calls fn with the metadata of every database. An empty
// directory under databases/ is no database and is skipped; one whose
// metadata is lost or damaged is an error.
func (ks *Keystore) eachDatabaseMeta(fn func(*formats.Database) error) error {
	return ks.eachDatabase(fn, nil)
}

// eachDatabase is eachDatabaseMeta that, if damaged is not nil, hands it the
// damage of a database's metadata (lost, or not what it should be) instead
// of stopping: status reports such a database and describes the others.
func (ks *Keystore) eachDatabase(fn func(*formats.Database) error, damaged func(db string, err error) error) error {
	if damaged == nil {
		damaged = func(_ string, err error) error { return err }
	}
	c := &collector{ks: ks}
	return c.eachEntry(databasesDir, func(name string, isDir bool) error {
		if !isDir || strings.HasPrefix(name, ".") {
			return nil
		}
		if err := formats.ValidateName("database", name); err != nil {
			return corruptf(ks.path(databasesDir, name), "is not a database: %v", err)
		}
		meta, err := ks.loadDatabaseMeta(name)
		if notExist(err) {
			lost, err := ks.lostDatabase(name)
			if err != nil || !lost {
				return err
			}
			return damaged(name, ks.errLostDatabase(name))
		}
		if err == nil && meta.Name != name {
			err = corruptf(ks.pathOf(databaseMeta(name)), "names database %q", meta.Name)
		}
		if errors.Is(err, ErrCorrupt) {
			return damaged(name, err)
		}
		if err != nil {
			return err
		}
		return fn(meta)
	})
}

// SetSecret creates or replaces a secret. The value is encrypted to the
// database's master key, whose recipient is derived from the key itself
// after opening it, never read from metadata (P12).
func (ks *Keystore) SetSecret(db, name string, value []byte, openPassword []byte) (created bool, err error) {
	if err := validName("database", db); err != nil {
		return false, err
	}
	if err := validName("secret", name); err != nil {
		return false, err
	}
	if len(value) > MaxValueSize {
		return false, invalid(fmt.Errorf("the value is larger than %d bytes", MaxValueSize))
	}
	err = ks.writer(openPassword != nil)("secret set", func(s *session) error {
		meta, err := s.ks.databaseMeta(db, errNoDMK)
		if err != nil {
			return err
		}
		dmk, err := s.openDMK(meta, openPassword)
		if err != nil {
			return err
		}
		g := dmkGens(meta)
		now := ks.nowUTC()
		next := &formats.Secret{Version: formats.Version, Name: name, Revision: 1, Created: now, Updated: now}
		old, err := s.ks.loadSecretMeta(db, name)
		switch {
		case err == nil && old.Name != name:
			return errCaseTwin("secret", db+"/"+name, db+"/"+old.Name)
		case err == nil:
			next.Revision, next.Created = old.Revision+1, old.Created
		case notExist(err):
			created, old = true, nil
			twin, err := s.ks.caseTwin(secretsDirOf(db).rel(), name, false)
			if err != nil {
				return err
			}
			if twin != "" {
				return errCaseTwin("secret", db+"/"+name, db+"/"+twin)
			}
		default:
			return err
		}
		bound := dbAuthenticated(dmk.meta)
		if next.Commit, err = s.itemCommit(bound, db, name); err != nil {
			return err
		}
		t := s.begin()
		if old != nil {
			t.obsolete(s.ks.itemBlobPaths(secretBlob(db, name, old.Revision, 0), g)...)
		}
		ct, err := sealValue(dmk.key, secretBinding(db, next), bound, value)
		if err != nil {
			return err
		}
		if err := t.create(s.ks.pathOf(secretBlob(db, name, next.Revision, g.current)), ct); err != nil {
			return err
		}
		data, err := next.Encode()
		if err != nil {
			return err
		}
		if err := t.commit(s.ks.secretMetaPath(db, name), data); err != nil {
			return err
		}
		if bound {
			s.ks.rememberItem(db, name, next.Commit)
		}
		return nil
	})
	return created, err
}

// GetSecret returns a secret's value.
func (ks *Keystore) GetSecret(db, name string, openPassword []byte) ([]byte, error) {
	if err := validName("database", db); err != nil {
		return nil, err
	}
	if err := validName("secret", name); err != nil {
		return nil, err
	}
	var value []byte
	err := ks.read("secret get", func(s *session) error {
		var err error
		rs := newResolver(s, map[string][]byte{db: openPassword}, nil)
		defer rs.close()
		value, err = rs.secret(db, name)
		return err
	})
	return value, err
}

// ListSecrets returns the secrets of one database, or of all databases if db
// is empty, sorted. It opens no key.
func (ks *Keystore) ListSecrets(db string) ([]*Secret, error) {
	if db != "" {
		if err := validName("database", db); err != nil {
			return nil, err
		}
	}
	var out []*Secret
	err := ks.read("secret list", func(s *session) error {
		list := func(meta *formats.Database) error {
			return s.ks.eachSecretMeta(meta.Name, func(m *formats.Secret) error {
				_, orphan, err := s.ks.itemBlob(secretBlob(meta.Name, m.Name, m.Revision, 0), dmkGens(meta))
				if err != nil {
					return err
				}
				out = append(out, &Secret{Database: meta.Name, Name: m.Name, Created: m.Created, Updated: m.Updated, Orphan: orphan})
				return nil
			})
		}
		if db != "" {
			meta, err := s.ks.databaseMeta(db, missingDatabase)
			if err != nil {
				return err
			}
			return list(meta)
		}
		return s.ks.eachDatabaseMeta(list)
	})
	sort.Slice(out, func(i, j int) bool {
		if out[i].Database != out[j].Database {
			return out[i].Database < out[j].Database
		}
		return out[i].Name < out[j].Name
	})
	return out, err
}

// RemoveSecret removes a secret. It needs no key.
func (ks *Keystore) RemoveSecret(db, name string) error {
	if err := validName("database", db); err != nil {
		return err
	}
	if err := validName("secret", name); err != nil {
		return err
	}
	return ks.write("secret rm", func(s *session) error {
		meta, err := s.ks.databaseMeta(db, missingDatabase)
		if err != nil {
			return err
		}
		sm, err := s.ks.secretMeta(db, name)
		if err != nil {
			return err
		}
		t := s.begin()
		t.obsolete(s.ks.itemBlobPaths(secretBlob(db, name, sm.Revision, 0), dmkGens(meta))...)
		if err := t.commitRemove(s.ks.secretMetaPath(db, name)); err != nil {
			return err
		}
		s.forgetRemovedItem(dbAuthenticated(meta), db, name)
		return nil
	})
}

// ListDatabases describes every database, sorted by name.
func (ks *Keystore) ListDatabases() ([]*DatabaseInfo, error) {
	var out []*DatabaseInfo
	err := ks.read("db list", func(s *session) error {
		return s.ks.eachDatabaseMeta(func(m *formats.Database) error {
			n := 0
			if err := s.ks.eachSecretMeta(m.Name, func(*formats.Secret) error { n++; return nil }); err != nil {
				return err
			}
			out = append(out, databaseInfo(m, n))
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}
