package keystore

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/protect"
)

// An authenticated keystore (format 2, docs/format.md section 18) is one in
// which someone who can write the keystore, but holds no key, cannot make
// keytree hand out a wrong value or obey an edit:
//
//   - every value file is bound to its place (protect.SealBound): a
//     credential's value to the keystore's id, its name, identity,
//     revision and commit; a secret's value to its database's name, its
//     name, revision and commit, under its database's master key. A file
//     swapped, copied or moved is corruption, checked before any of the
//     value is returned.
//   - smk.toml carries a MAC under the SMK, bound to the keystore's id, and
//     database.toml one under its DMK, bound to the database's name: an
//     edit of either is corruption, never obeyed.
//   - smk.toml counts commits, database.toml and each item's metadata
//     say the commit they were written at, and the account and machine
//     directories remember them: a keystore, a database or an item older
//     than they remember is a rollback, refused until the user accepts it
//     (rollback.go, AcceptRollback).

// newFormat is the version of the smk.toml or database.toml keytree
// creates: 2 in a keystore of format 2 (keystore.toml says so, or it is
// authenticated already); else 1. A keystore of format 1 stays in format
// 1, and readable by keytree before format 2, until Upgrade.
func (s *session) newFormat() int {
	if s.ks.version == formats.Authenticated || s.keystoreAuthenticated() {
		return formats.Authenticated
	}
	return formats.Version
}

// authenticated reports whether smk.toml is of format 2.
func authenticated(m *formats.SMK) bool { return m.Version == formats.Authenticated }

// dbAuthenticated reports whether database.toml is of format 2.
func dbAuthenticated(m *formats.Database) bool { return m.Version == formats.Authenticated }

// credentialBinding is what a credential's value file is bound to: the
// keystore's id, the credential's name, identity, revision and commit.
func credentialBinding(ksID string, m *formats.Credential) []byte {
	return bindingOf("credential", ksID, m.Name, m.Identity, strconv.Itoa(m.Revision), strconv.Itoa(m.Commit))
}

// secretBinding is what a secret's value file is bound to: its database's
// name, its name, revision and commit, under its database's key. (Two
// databases imported from one export share a key; the name tells them
// apart.)
func secretBinding(db string, m *formats.Secret) []byte {
	return bindingOf("secret", db, m.Name, strconv.Itoa(m.Revision), strconv.Itoa(m.Commit))
}

// bindingOf joins a binding's fields with NUL, which no name, identity or
// number can hold, so that two different places never share a binding.
func bindingOf(fields ...string) []byte {
	return []byte("keytree/2\x00" + strings.Join(fields, "\x00"))
}

// describeBinding says, for an error, what a found binding names.
func describeBinding(b []byte) string {
	f := strings.Split(string(b), "\x00")
	switch {
	case len(f) == 7 && f[0] == "keytree/2" && f[1] == "credential":
		return fmt.Sprintf("the value of credential %q, revision %s at commit %s, of keystore %s", f[3], f[5], f[6], f[2])
	case len(f) == 6 && f[0] == "keytree/2" && f[1] == "secret":
		return fmt.Sprintf("the value of secret %q, revision %s at commit %s", f[2]+"/"+f[3], f[4], f[5])
	}
	return "another item's value"
}

// sameButIdentity reports whether two credential bindings differ in the
// identity alone.
func sameButIdentity(a, b []byte) bool {
	fa, fb := strings.Split(string(a), "\x00"), strings.Split(string(b), "\x00")
	if len(fa) != 7 || len(fb) != 7 || fa[1] != "credential" || fb[1] != "credential" {
		return false
	}
	return fa[0] == fb[0] && fa[2] == fb[2] && fa[3] == fb[3] && fa[5] == fb[5] && fa[6] == fb[6] && fa[4] != fb[4]
}

// openBound decrypts a value file and checks it is bound to want (required
// in an authenticated keystore or database). A file bound elsewhere is
// corruption that names what it holds.
func openBound(key *protect.Key, blob, want []byte, required bool) ([]byte, error) {
	value, err := protect.OpenBound(key, blob, MaxValueSize, want, required)
	var be *protect.BindingError
	if errors.As(err, &be) && be.Found != nil {
		if sameButIdentity(be.Found, want) {
			return nil, &formats.CorruptError{Reason: "the credential's identity in its metadata is not the one its value was stored with: the metadata was edited"}
		}
		return nil, &formats.CorruptError{Reason: "it holds " + describeBinding(be.Found) + ", not this item's: it was moved or copied here"}
	}
	if errors.Is(err, protect.ErrUnbound) {
		return nil, &formats.CorruptError{Reason: "it is not bound to this item, as every value of an authenticated keystore is: it was put here from elsewhere"}
	}
	if errors.As(err, &be) {
		return nil, &formats.CorruptError{Reason: "its binding was altered or forged"}
	}
	return value, err
}

// formerBinding returns whether a found binding is want but for a database
// name among former: a secret's binding under a former name.
func formerBinding(want []byte, former []string) func([]byte) bool {
	return func(found []byte) bool {
		fw, ff := strings.Split(string(want), "\x00"), strings.Split(string(found), "\x00")
		if len(fw) != 6 || len(ff) != 6 || fw[1] != "secret" || ff[1] != "secret" ||
			fw[0] != ff[0] || fw[3] != ff[3] || fw[4] != ff[4] || fw[5] != ff[5] {
			return false
		}
		return slices.Contains(former, ff[2])
	}
}

// openBoundOrphan is openBound for an orphan of a database with former
// names (db import under another name): its file may be bound to the
// database's name or one of them.
func openBoundOrphan(key *protect.Key, blob, want []byte, required bool, former func([]byte) bool) ([]byte, error) {
	value, err := protect.OpenBoundFunc(key, blob, MaxValueSize, func(b []byte) bool { return bytes.Equal(b, want) || former(b) }, required)
	if err != nil {
		return openBound(key, blob, want, required) // for its error
	}
	return value, nil
}

// sealValue encrypts a value to key, bound to binding if bind.
func sealValue(key *protect.Key, binding []byte, bind bool, value []byte) ([]byte, error) {
	if bind {
		return protect.SealBound(key, binding, value)
	}
	return protect.Seal(key, value)
}

// smkMAC is smk.toml's MAC: under the SMK, over every field and the
// keystore's id, so that an smk.toml copied from another keystore with the
// same SMK does not verify either.
func (ks *Keystore) smkMAC(m *formats.SMK, key *protect.Key) (string, error) {
	data, err := m.AuthData()
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(key.MAC(append([]byte("smk.toml MAC\x00"+ks.id+"\x00"), data...))), nil
}

// databaseMAC is database.toml's MAC: under the DMK, over every field but
// smk_encryption, the database's name included.
func databaseMAC(m *formats.Database, key *protect.Key) (string, error) {
	data, err := m.AuthData()
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(key.MAC(append([]byte("database.toml MAC\x00"), data...))), nil
}

// signSMK sets an authenticated smk.toml's MAC.
func (ks *Keystore) signSMK(m *formats.SMK, key *protect.Key) error {
	if !authenticated(m) {
		return nil
	}
	m.MAC = ""
	mac, err := ks.smkMAC(m, key)
	m.MAC = mac
	return err
}

// signDatabase sets an authenticated database.toml's MAC. It signs
// password_only when smk_encryption is off, and keeps it when it was
// signed before (m carries the verified value), whatever the unsigned
// smk_encryption says: only dmk add-encryption --by smk, which makes the
// encryption, clears it. What is signed without an SMK encryption stays
// so (db import turns smk_encryption off unsigned, never on).
func signDatabase(m *formats.Database, key *protect.Key) error {
	if !dbAuthenticated(m) {
		return nil
	}
	if m.PasswordOnly || !m.SMKEncryption {
		m.PasswordOnly, m.SMKEncryption = true, false
	}
	m.MAC = ""
	mac, err := databaseMAC(m, key)
	m.MAC = mac
	return err
}

// checkSMKMAC verifies an authenticated smk.toml under the key it opened.
func (ks *Keystore) checkSMKMAC(m *formats.SMK, key *protect.Key) error {
	if !authenticated(m) {
		return nil
	}
	mac, err := ks.smkMAC(m, key)
	if err != nil {
		return err
	}
	if mac != m.MAC {
		return corruptf(ks.path(smkFile), "does not verify under the service master key: it was edited, or copied from another keystore")
	}
	return nil
}

// checkDatabaseMAC verifies an authenticated database.toml under the key it
// opened.
func (ks *Keystore) checkDatabaseMAC(m *formats.Database, key *protect.Key) error {
	if !dbAuthenticated(m) {
		return nil
	}
	mac, err := databaseMAC(m, key)
	if err != nil {
		return err
	}
	if mac != m.MAC {
		return corruptf(ks.pathOf(databaseMeta(m.Name)), "does not verify under the database master key that opened: it was edited, or belongs to another database")
	}
	return nil
}

// keystoreAuthenticated reports whether the keystore is of format 2, as far
// as can be told without its key: smk.toml says so, or a protector
// directory remembers a commit (an smk.toml put back to format 1 does not
// make it format 1 again).
func (s *session) keystoreAuthenticated() bool {
	if s.smk != nil && authenticated(s.smk.meta) {
		return true
	}
	m, err := s.ks.loadSMKMeta()
	if err == nil && authenticated(m) {
		return true
	}
	n, _, err := s.ks.remembered()
	if err != nil || n > 0 {
		return true
	}
	// A copy from before the upgrade given a new id (not signed) has no
	// count remembered, but its key was a key of format 2.
	if m != nil {
		if _, ok := s.ks.keyWasFormat2(m.Thumbprint); ok {
			return true
		}
	}
	return false
}

// checkKeystoreIfItOpens opens the SMK, in a keystore of format 2, for a
// command that does not need it (a read by password, db export), if it
// can: so that a rollback of the keystore shows there too, and smk.toml's
// MAC vouches for the keystore's id, under which the database records are
// looked up. While no encryption of the SMK opens, the command goes on.
func (s *session) checkKeystoreIfItOpens() error {
	if !s.keystoreAuthenticated() {
		return nil
	}
	if _, err := s.openSMK(); err != nil && !errors.Is(err, ErrDecryption) {
		return err
	}
	return nil
}

// refuseFormat1Database refuses a database of format 1 in a keystore of
// format 2: Upgrade moves every database before the keystore, and every
// database made or imported since is of format 2, so one of format 1 was
// put there, to have its unbound values and unauthenticated metadata
// believed.
func (s *session) refuseFormat1Database(m *formats.Database) error {
	if dbAuthenticated(m) || !s.keystoreAuthenticated() {
		return nil
	}
	return corruptf(s.ks.pathOf(databaseMeta(m.Name)), "is of format 1, in a keystore of format 2: it was replaced by an older or forged copy")
}

// bindImport makes an imported database's metadata and values agree with
// the place it is imported to, where that needs its key: a database.toml of
// format 2 imported under another name is signed again for that name, and
// a database of format 1 imported into a keystore of format 2 has its
// values bound and its metadata signed (moved to format 2 as Upgrade
// would). The key is opened with password from the password encryptions
// unpacked in stage. Otherwise nothing changes and no password is needed.
func (s *session) bindImport(stage string, meta *formats.Database, name string, staged map[string]stagedSecret, password []byte) error {
	upgrade := !dbAuthenticated(meta) && s.keystoreAuthenticated()
	rename := dbAuthenticated(meta) && name != meta.Name
	if !upgrade && !rename {
		meta.Name = name
		return nil
	}
	why := fmt.Sprintf("it was exported as '%s' and is imported as '%s'", meta.Name, name)
	if upgrade {
		why = "its export is of format 1, and this keystore binds every value to its place"
	}
	if password == nil {
		return &Error{
			Number: MsgDMKNotOpen,
			Plain:  "the import needs the database's password",
			Text:   "Please create a master key in the database or open the master key in the session before performing this operation.",
			Detail: []string{"the imported database must be signed with its master key: " + why},
			Remedy: Remedy{Kind: RemedyOpenDMK, Database: name},
			Kind:   ErrDecryption,
		}
	}
	key, err := s.openStagedDMK(stage, meta, password)
	if err != nil {
		return err
	}
	// Every value is bound again to its new place: under the new name, or
	// for the first time (format 1, where one that is bound already, an
	// export edited to look like format 1, must be bound to itself).
	for sname, st := range staged {
		path := filepath.Join(stage, secretsDir, st.blob)
		blob, err := s.ks.files.ReadFile(path, maxBlobSize)
		if err != nil {
			return err
		}
		_, _, gen, _ := formats.ParseBlobName(st.blob)
		if gen != meta.Generation {
			continue // an orphan: its key is not this one (docs/security.md, section 5.2)
		}
		value, err := openBound(key, blob, secretBinding(meta.Name, st.meta), !upgrade)
		if err != nil {
			return errBadImportValue(sname, err)
		}
		ct, err := protect.SealBound(key, secretBinding(name, st.meta), value)
		clear(value)
		if err != nil {
			return err
		}
		if err := s.ks.files.CreateOver(path, ct, true); err != nil {
			return err
		}
	}
	meta.Version = formats.Authenticated
	if rename && len(meta.Retired) > 0 {
		// Its orphans keep the old name's binding.
		meta.FormerNames = append(meta.FormerNames, meta.Name)
		if len(meta.FormerNames) > formats.MaxFormerNames {
			meta.FormerNames = meta.FormerNames[len(meta.FormerNames)-formats.MaxFormerNames:]
		}
	}
	meta.Name = name
	return s.signDatabase(meta, key)
}

func errBadImportValue(name string, err error) error {
	return &Error{Text: fmt.Sprintf("the value of secret '%s' in the export cannot be decrypted by its database's master key: %v", name, err), Kind: ErrCorrupt}
}

// openStagedDMK opens an imported database's master key with password,
// from its password encryptions unpacked in stage, and checks its
// database.toml under it.
func (s *session) openStagedDMK(stage string, meta *formats.Database, password []byte) (*protect.Key, error) {
	key, _, err := s.openDMKByPasswordIn(stage, meta, password)
	if err != nil {
		return nil, err
	}
	return key, s.ks.checkDatabaseMAC(meta, key)
}

// checkIdentity checks, in a keystore of format 2, that a credential's
// identity in its metadata is the one its value was stored with (the value
// file's binding names it), before an import keeps it for the new value.
// An orphaned credential's value cannot be opened: its identity is kept as
// it is.
func (s *session) checkIdentity(st *smkState, m *formats.Credential, g keyGens) error {
	if !authenticated(st.meta) {
		return nil
	}
	blob, path, orphan, err := s.ks.readItemBlob(credentialBlob(m.Name, m.Revision, 0), g)
	if err != nil {
		return s.ks.fileError(path, err)
	}
	if orphan != nil {
		return nil
	}
	value, err := openBound(st.key, blob, credentialBinding(s.ks.id, m), true)
	clear(value)
	if err != nil {
		return valueError("credential", m.Name, path, err)
	}
	return nil
}
