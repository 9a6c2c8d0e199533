package keystore

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/protect"
)

// Credential is a credential's metadata: its name and identity (a user name,
// say) in clear, its value encrypted by the SMK.
type Credential struct {
	Name     string
	Identity string
	Created  time.Time
	Updated  time.Time
	Orphan   *Orphan // set if --force left it under an older SMK
	// Unchecked (credential list, keystore of format 2) says that Identity
	// is as the metadata holds it, not checked against its value's
	// binding: the SMK did not open, or the credential is an orphan.
	Unchecked bool
}

func (ks *Keystore) credentialMetaPath(name string) string {
	return ks.pathOf(credentialMeta(name))
}

func (ks *Keystore) loadCredentialMeta(name string) (*formats.Credential, error) {
	return loadMeta(ks, ks.credentialMetaPath(name), formats.DecodeCredential)
}

// credentialMeta loads a credential's metadata for an operation on it. On a
// case-insensitive filesystem "Foo" finds foo.toml: the name inside tells.
func (ks *Keystore) credentialMeta(name string) (*formats.Credential, error) {
	meta, err := ks.loadCredentialMeta(name)
	if notExist(err) {
		return nil, ks.suggestName(errNotFound("credential", name), "credential", name)
	}
	if err != nil {
		return nil, err
	}
	if meta.Name != name {
		if strings.EqualFold(meta.Name, name) {
			return nil, &Error{Text: fmt.Sprintf("the credential is named '%s', not '%s'", meta.Name, name), Kind: ErrNotFound,
				Hint: "names are case-sensitive, and this filesystem is not: use the name as it was created"}
		}
		return nil, corruptf(ks.credentialMetaPath(name), "names credential %q", meta.Name)
	}
	return meta, nil
}

func smkGens(m *formats.SMK) keyGens { return keyGens{current: m.Generation, retired: m.Retired} }

func validName(what, name string) error {
	if err := formats.ValidateName(what, name); err != nil {
		return invalid(err)
	}
	return nil
}

// ValidName checks the name of a credential, database or secret (what) as
// every operation does, for a command that must refuse a name before it
// asks anything (an invalid name is ErrInvalid).
func ValidName(what, name string) error { return validName(what, name) }

// SetCredential creates or replaces a credential. The value is encrypted by
// the SMK; the previous value, if any, is removed only once the new one is
// committed.
func (ks *Keystore) SetCredential(name, identity string, value []byte) (created bool, err error) {
	if err := validName("credential", name); err != nil {
		return false, err
	}
	if err := formats.ValidateIdentity(identity); err != nil {
		return false, invalid(err)
	}
	if len(value) > MaxValueSize {
		return false, invalid(fmt.Errorf("the value is larger than %d bytes", MaxValueSize))
	}
	err = ks.write("credential set", func(s *session) error {
		st, err := s.openSMK()
		if err != nil {
			return err
		}
		g := smkGens(st.meta)
		now := s.ks.nowUTC()
		meta := &formats.Credential{Version: formats.Version, Name: name, Identity: identity, Revision: 1, Created: now, Updated: now}
		old, err := s.ks.loadCredentialMeta(name)
		switch {
		case err == nil && old.Name != name:
			return errCaseTwin("credential", name, old.Name)
		case err == nil:
			meta.Revision, meta.Created = old.Revision+1, old.Created
		case notExist(err):
			created, old = true, nil
			twin, err := s.ks.caseTwin(credentialsDir, name, false)
			if err != nil {
				return err
			}
			if twin != "" {
				return errCaseTwin("credential", name, twin)
			}
		default:
			return err
		}
		if meta.Revision > formats.MaxRevision {
			return fmt.Errorf("credential %s has been rewritten too many times", name)
		}
		bound := authenticated(st.meta)
		if meta.Commit, err = s.itemCommit(bound, "", name); err != nil {
			return err
		}
		t := s.begin()
		if old != nil {
			t.obsolete(s.ks.itemBlobPaths(credentialBlob(name, old.Revision, 0), g)...)
		}
		ct, err := sealValue(st.key, credentialBinding(s.ks.id, meta), bound, value)
		if err != nil {
			return err
		}
		if err := t.create(s.ks.pathOf(credentialBlob(name, meta.Revision, g.current)), ct); err != nil {
			return err
		}
		data, err := meta.Encode()
		if err != nil {
			return err
		}
		if err := t.commit(s.ks.credentialMetaPath(name), data); err != nil {
			return err
		}
		if bound {
			s.ks.rememberItem("", name, meta.Commit)
		}
		return nil
	})
	return created, err
}

// GetCredential returns a credential and its value.
func (ks *Keystore) GetCredential(name string) (*Credential, []byte, error) {
	if err := validName("credential", name); err != nil {
		return nil, nil, err
	}
	var (
		cred  *Credential
		value []byte
	)
	err := ks.read("credential get", func(s *session) error {
		meta, v, err := newResolver(s, nil, nil).credential(name)
		if err != nil {
			return err
		}
		cred, value = credentialOf(meta, nil), v
		return nil
	})
	return cred, value, err
}

// valueError reports a value that the right key could not open: the file
// is damaged.
func valueError(what, name, path string, err error) error {
	if errors.Is(err, protect.ErrDecrypt) {
		return &Error{Text: fmt.Sprintf("the %s '%s' cannot be decrypted: %s is damaged", what, name, path), Kind: ErrCorrupt,
			Hint: "restore it from a backup of the keystore, or set it again", Err: err}
	}
	return (&Keystore{}).fileError(path, err)
}

func credentialOf(m *formats.Credential, o *Orphan) *Credential {
	return &Credential{Name: m.Name, Identity: m.Identity, Created: m.Created, Updated: m.Updated, Orphan: o}
}

// ListCredentials returns every credential's metadata, sorted by name. In
// a keystore of format 2 it opens the SMK and checks each credential as
// credential get does (its value's binding, which names its identity, and
// its records), so that no edited identity is listed. Where that cannot be
// done it lists the metadata as it is, marked Unchecked: an orphan, whose
// key is retired, and every credential while no encryption of the SMK
// opens (a listing needs no key). In a keystore of format 1, which binds no
// identity, it opens no key.
func (ks *Keystore) ListCredentials() ([]*Credential, error) {
	var out []*Credential
	err := ks.read("credential list", func(s *session) error {
		var g keyGens
		if meta, err := s.ks.loadSMKMeta(); err == nil {
			g = smkGens(meta)
		} else if !notExist(err) {
			return err
		}
		var r *resolver
		// keystore.toml's version counts too: an smk.toml removed, or put
		// back to format 1, must not make the identities pass unchecked.
		bound, unchecked := s.ks.version == formats.Authenticated || s.keystoreAuthenticated(), false
		if bound {
			if _, err := s.openSMK(); isMsg(err, MsgDecryption) {
				unchecked = true
			} else if err != nil {
				return err
			} else {
				r = newResolver(s, nil, nil)
			}
		}
		return s.ks.eachCredential(func(m *formats.Credential) error {
			var orphan *Orphan
			if g.current != 0 {
				_, o, err := s.ks.itemBlob(credentialBlob(m.Name, m.Revision, 0), g)
				if err != nil {
					return err
				}
				orphan = o
			}
			if r != nil && orphan == nil {
				checked, value, err := r.credential(m.Name)
				clear(value)
				if err != nil {
					return err
				}
				m = checked
			}
			c := credentialOf(m, orphan)
			c.Unchecked = bound && (unchecked || orphan != nil)
			out = append(out, c)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

// eachCredential calls fn with the metadata of every credential.
func (ks *Keystore) eachCredential(fn func(*formats.Credential) error) error {
	c := &collector{ks: ks}
	return c.eachEntry(credentialsDir, func(name string, isDir bool) error {
		base, ok := strings.CutSuffix(name, ".toml")
		if isDir || !ok || strings.HasPrefix(name, ".") {
			return nil
		}
		if err := formats.ValidateName("credential", base); err != nil {
			return corruptf(ks.path(credentialsDir, name), "is not a credential's file: %v", err)
		}
		meta, err := ks.credentialMeta(base)
		if err != nil {
			return err
		}
		return fn(meta)
	})
}

// RemoveCredential removes a credential. It needs no key: removing the
// metadata is the commit, and the value's file goes with the clean-up.
func (ks *Keystore) RemoveCredential(name string) error {
	if err := validName("credential", name); err != nil {
		return err
	}
	return ks.write("credential rm", func(s *session) error {
		meta, err := s.ks.credentialMeta(name)
		if err != nil {
			return err
		}
		// The value's files are named by the SMK's generations, so
		// smk.toml must be read to record them for the clean-up. If it
		// cannot be read (a transient error, damage), the removal fails:
		// committing it anyway would leave the value on disk with
		// nothing to say it is garbage, for good.
		smk, err := s.ks.loadSMKMeta()
		if notExist(err) {
			return corruptf(s.ks.path(smkFile), "is missing, but the keystore holds credential '%s'", name)
		}
		if err != nil {
			return err
		}
		t := s.begin()
		t.obsolete(s.ks.itemBlobPaths(credentialBlob(name, meta.Revision, 0), smkGens(smk))...)
		if err := t.commitRemove(s.ks.credentialMetaPath(name)); err != nil {
			return err
		}
		s.forgetRemovedItem(authenticated(smk), "", name)
		return nil
	})
}
