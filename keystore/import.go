package keystore

import (
	"fmt"
	"strings"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/protect"
)

// Imports set many credentials, or many secrets of one database, in one
// batch (batch.go): all of them or none. Each item is checked as
// SetCredential and SetSecret check one, all before anything is written.

// ImportItem is one credential or secret of an import. Identity is a
// credential's; empty keeps the identity of a credential that exists.
type ImportItem struct {
	Name     string
	Identity string
	Value    []byte
}

// ImportResult says what an import did.
type ImportResult struct {
	Created, Replaced int
}

// checkImport checks what an import's items can be checked for without the
// keystore: names, sizes, one item per name.
func checkImport(what string, items []ImportItem) error {
	if len(items) == 0 {
		return invalid(fmt.Errorf("there is nothing to import"))
	}
	if len(items) > formats.MaxBatchItems {
		return invalid(fmt.Errorf("%d items are more than one import takes (%d)", len(items), formats.MaxBatchItems))
	}
	seen := map[string]string{}
	for _, it := range items {
		if err := validName(what, it.Name); err != nil {
			return err
		}
		if it.Identity != "" {
			if err := formats.ValidateIdentity(it.Identity); err != nil {
				return invalid(fmt.Errorf("%s %s: %w", what, it.Name, err))
			}
		}
		if len(it.Value) > MaxValueSize {
			return invalid(fmt.Errorf("the value of %s %s is larger than %d bytes", what, it.Name, MaxValueSize))
		}
		if prev, ok := seen[strings.ToLower(it.Name)]; ok {
			if prev == it.Name {
				return invalid(fmt.Errorf("%s %s is given twice", what, it.Name))
			}
			return invalid(fmt.Errorf("%ss %s and %s differ only in case", what, prev, it.Name))
		}
		seen[strings.ToLower(it.Name)] = it.Name
	}
	return nil
}

// foldedNames maps the lower-cased name of every item in dir to its name:
// one listing for an import's case checks, not one per item.
func (ks *Keystore) foldedNames(dir, what string) (map[string]string, error) {
	names, err := ks.itemNames(dir, what)
	if notExist(err) {
		err = nil
	}
	folded := make(map[string]string, len(names))
	for _, n := range names {
		folded[strings.ToLower(n)] = n
	}
	return folded, err
}

// ImportCredentials creates or replaces every credential of items in one
// batch. A new credential needs an identity.
func (ks *Keystore) ImportCredentials(items []ImportItem) (ImportResult, error) {
	var res ImportResult
	if err := checkImport("credential", items); err != nil {
		return res, err
	}
	err := ks.write("credential import", func(s *session) error {
		res = ImportResult{}
		st, err := s.openSMK()
		if err != nil {
			return err
		}
		g := smkGens(st.meta)
		existing, err := ks.foldedNames(credentialsDir, "credential")
		if err != nil {
			return err
		}
		now := ks.nowUTC()
		metas := make([]batchMeta, len(items))
		blobs := make([]handle, len(items))
		bindings := make([][]byte, len(items))
		for i, it := range items {
			meta := &formats.Credential{Version: formats.Version, Name: it.Name, Identity: it.Identity, Revision: 1, Created: now, Updated: now}
			old, err := ks.loadCredentialMeta(it.Name)
			switch {
			case err == nil && old.Name != it.Name:
				return errCaseTwin("credential", it.Name, old.Name)
			case err == nil:
				meta.Revision, meta.Created = old.Revision+1, old.Created
				if meta.Identity == "" {
					// The identity kept is one the old value was
					// stored with, not an edit of the metadata.
					if err := s.checkIdentity(st, old, g); err != nil {
						return err
					}
					meta.Identity = old.Identity
				}
				res.Replaced++
			case notExist(err):
				if twin := existing[strings.ToLower(it.Name)]; twin != "" && twin != it.Name {
					return errCaseTwin("credential", it.Name, twin)
				}
				if it.Identity == "" {
					return &Error{
						Text:   fmt.Sprintf("credential %s is new, and nothing gives its identity", it.Name),
						Kind:   ErrInvalid,
						Remedy: Remedy{Kind: RemedyImportIdentity},
					}
				}
				res.Created++
			default:
				return err
			}
			if meta.Revision > formats.MaxRevision {
				return fmt.Errorf("credential %s has been rewritten too many times", it.Name)
			}
			if meta.Commit, err = s.itemCommit(authenticated(st.meta), "", it.Name); err != nil {
				return err
			}
			data, err := meta.Encode()
			if err != nil {
				return err
			}
			metas[i] = batchMeta{item: formats.BatchItem{Name: it.Name}, data: data, commit: meta.Commit}
			blobs[i] = credentialBlob(it.Name, meta.Revision, g.current)
			bindings[i] = credentialBinding(ks.id, meta)
		}
		return s.commitImport(credentialsDir, st.key, authenticated(st.meta), items, blobs, bindings, metas)
	})
	return res, err
}

// ImportSecrets creates or replaces every secret of items in database db,
// in one batch. openPassword opens a DMK that the SMK does not encrypt.
func (ks *Keystore) ImportSecrets(db string, items []ImportItem, openPassword []byte) (ImportResult, error) {
	var res ImportResult
	if err := validName("database", db); err != nil {
		return res, err
	}
	if err := checkImport("secret", items); err != nil {
		return res, err
	}
	for _, it := range items {
		if it.Identity != "" {
			return res, invalid(fmt.Errorf("secret %s: a secret has no identity", it.Name))
		}
	}
	err := ks.writer(openPassword != nil)("secret import", func(s *session) error {
		res = ImportResult{}
		meta, err := ks.databaseMeta(db, errNoDMK)
		if err != nil {
			return err
		}
		dmk, err := s.openDMK(meta, openPassword)
		if err != nil {
			return err
		}
		g := dmkGens(meta)
		dir := secretsDirOf(db).rel()
		existing, err := ks.foldedNames(dir, "secret")
		if err != nil {
			return err
		}
		now := ks.nowUTC()
		metas := make([]batchMeta, len(items))
		blobs := make([]handle, len(items))
		bindings := make([][]byte, len(items))
		for i, it := range items {
			next := &formats.Secret{Version: formats.Version, Name: it.Name, Revision: 1, Created: now, Updated: now}
			old, err := ks.loadSecretMeta(db, it.Name)
			switch {
			case err == nil && old.Name != it.Name:
				return errCaseTwin("secret", db+"/"+it.Name, db+"/"+old.Name)
			case err == nil:
				next.Revision, next.Created = old.Revision+1, old.Created
				res.Replaced++
			case notExist(err):
				if twin := existing[strings.ToLower(it.Name)]; twin != "" && twin != it.Name {
					return errCaseTwin("secret", db+"/"+it.Name, db+"/"+twin)
				}
				res.Created++
			default:
				return err
			}
			if next.Revision > formats.MaxRevision {
				return fmt.Errorf("secret %s/%s has been rewritten too many times", db, it.Name)
			}
			if next.Commit, err = s.itemCommit(dbAuthenticated(meta), db, it.Name); err != nil {
				return err
			}
			data, err := next.Encode()
			if err != nil {
				return err
			}
			metas[i] = batchMeta{item: formats.BatchItem{DB: db, Name: it.Name}, data: data, commit: next.Commit}
			blobs[i] = secretBlob(db, it.Name, next.Revision, g.current)
			bindings[i] = secretBinding(db, next)
		}
		return s.commitImport(dir, dmk.key, dbAuthenticated(meta), items, blobs, bindings, metas)
	})
	return res, err
}

// commitImport encrypts each item's value to key into its blob, in dir
// (keystore-relative), and commits the items' metadata as one batch. The
// intent sweeps dir: after a crash, whatever committed metadata does not
// reference there (the new values before the commit, the old ones after
// it) is removed. Each value is bound to its binding if bind.
func (s *session) commitImport(dir string, key *protect.Key, bind bool, items []ImportItem, blobs []handle, bindings [][]byte, metas []batchMeta) error {
	t := s.begin()
	if err := t.sweep(dir); err != nil {
		return err
	}
	b := t.batch()
	for i, it := range items {
		ct, err := sealValue(key, bindings[i], bind, it.Value)
		if err != nil {
			return err
		}
		p := s.ks.pathOf(blobs[i])
		if err := b.Create(p, s.ks.dirOf(blobs[i]), ct); err != nil {
			return err
		}
	}
	if err := t.commitBatch(metas); err != nil {
		return err
	}
	if bind {
		for _, m := range metas {
			s.ks.rememberItem(m.item.DB, m.item.Name, m.commit)
		}
	}
	return nil
}
