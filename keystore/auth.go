package keystore

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/keystore/internal/fsio"
	"github.com/keytree-dev/keytree/protect"
)

// An authenticated keystore (format 2, docs/format.md section 18) is one in
// which someone who can write the keystore, but holds no key, cannot make
// keytree hand out a wrong value or obey an edit:
//
//   - every value file is bound to its place (protect.SealBound): a
//     credential's value to the keystore's id, its name, identity and
//     revision; a secret's value to its database's name, its name and
//     revision, under its database's master key. A file swapped, copied or
//     moved is corruption, checked before any of the value is returned.
//   - smk.toml carries a MAC under the SMK, bound to the keystore's id, and
//     database.toml one under its DMK, bound to the database's name: an
//     edit of either is corruption, never obeyed.
//   - smk.toml counts commits, and the account and machine directories
//     remember the highest count each has seen for the keystore: a keystore
//     older than what they remember is a rollback, refused until the user
//     accepts it (AcceptRollback).

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

// signDatabase sets an authenticated database.toml's MAC.
func signDatabase(m *formats.Database, key *protect.Key) error {
	if !dbAuthenticated(m) {
		return nil
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

// The commit counter each protector directory remembers for a keystore:
// DIR/ID.commit holds the highest commit of keystore ID seen by keytree
// under that account or on that machine (a record).
const maxCommitFile = 48

func (ks *Keystore) commitFiles() []string { return ks.recordFiles(ks.id + ".commit") }

// recordFiles lists record name in the account and the machine directory.
func (ks *Keystore) recordFiles(name string) []string {
	var files []string
	for _, dir := range []string{ks.accountDir, ks.machineDir} {
		if dir != "" {
			files = append(files, filepath.Join(dir, name))
		}
	}
	return files
}

// A record is what a protector directory remembers of the commit of a
// keystore, a database or an item: "C\n", the commit it saw last; or,
// once the user accepted an older commit than it had seen (a restore,
// accept-rollback, an import of an older export), "A H\n": A the commit
// accepted, H the highest it had seen. A commit below A is a rollback, and
// so is one above A up to H: it belongs to the state the user discarded,
// put back. A commit above H is newer. Both are decimal, 0 <= A <= H; A is
// 0 for a keystore or item accepted as it is in format 1, which has no
// commit.
type record struct {
	accepted, seen int
	path           string
}

// parseRecord reads a record.
func parseRecord(data []byte) (record, bool) {
	s, ok := strings.CutSuffix(string(data), "\n")
	if !ok {
		return record{}, false
	}
	a, h, two := strings.Cut(s, " ")
	if !two {
		h = a
	}
	na, err1 := strconv.Atoi(a)
	nh, err2 := strconv.Atoi(h)
	if err1 != nil || err2 != nil || na < 0 || nh < 1 || na > nh || nh > formats.MaxRevision || !two && na < 1 {
		return record{}, false
	}
	return record{accepted: na, seen: nh}, true
}

// encodeRecord writes a record accepting commit a after seeing h.
func encodeRecord(a, h int) []byte {
	if a >= h {
		return []byte(strconv.Itoa(a) + "\n")
	}
	return []byte(strconv.Itoa(a) + " " + strconv.Itoa(h) + "\n")
}

// top is the highest commit a record has seen.
func (r record) top() int { return max(r.accepted, r.seen) }

// rolledBack reports whether commit c is older than the record allows.
func (r record) rolledBack(c int) bool {
	return c < r.accepted || c > r.accepted && c <= r.seen
}

// recordsIn reads the records in files. A file that cannot be read, or
// does not hold a record, remembers nothing: a new account, another
// machine, or a write cut short by a power loss (records are not synced).
// Only the account running keytree can write there, so nothing is lost to
// an attacker by it; a file keytree may not use (open to others) is an
// error, as for a protector secret.
func (ks *Keystore) recordsIn(files []string) ([]record, error) {
	var recs []record
	for _, path := range files {
		data, err := ks.outside.ReadFile(path, maxCommitFile)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			var ke *Error
			if errors.As(err, &ke) {
				return nil, err
			}
			continue
		}
		if r, ok := parseRecord(data); ok {
			r.path = path
			recs = append(recs, r)
		}
	}
	return recs, nil
}

// judge compares commit c with the records in files: it returns the
// record c is a rollback against, if any, and whether c is newer than
// some record (which is then raised to it, once c is trusted).
func (ks *Keystore) judge(files []string, c int) (against *record, newer bool, err error) {
	recs, err := ks.recordsIn(files)
	if err != nil {
		return nil, false, err
	}
	newer = len(recs) < len(files)
	for i := range recs {
		if recs[i].rolledBack(c) {
			return &recs[i], false, nil
		}
		newer = newer || c > recs[i].top()
	}
	return nil, newer && c > 0, nil
}

// remembered returns the highest commit the protector directories accept
// for this keystore, and the file that remembers it (rememberedIn).
func (ks *Keystore) remembered() (int, string, error) { return ks.rememberedIn(ks.commitFiles()) }

// rememberedIn returns the highest commit the records in files accept,
// and the file that holds it.
func (ks *Keystore) rememberedIn(files []string) (int, string, error) {
	recs, err := ks.recordsIn(files)
	best, from := 0, ""
	for _, r := range recs {
		if r.accepted > best {
			best, from = r.accepted, r.path
		}
	}
	return best, from, err
}

// highestSeen returns the highest commit the records in files have seen.
func (ks *Keystore) highestSeen(files []string) int {
	recs, _ := ks.recordsIn(files)
	h := 0
	for _, r := range recs {
		h = max(h, r.top())
	}
	return h
}

// remember records the keystore's commit n (rememberIn).
func (ks *Keystore) remember(n int) { ks.rememberIn(ks.commitFiles(), n) }

// rememberIn records commit n in those of files whose protector directory
// exists and has seen less. It is best effort: a directory keytree cannot
// write (another account's, read-only) keeps what it had. The record is
// replaced whole (a new file renamed over it) but not synced: every commit
// writes it, and a record lost to a power loss only remembers less.
func (ks *Keystore) rememberIn(files []string, n int) {
	for _, path := range files {
		dir := filepath.Dir(path)
		if !ks.ownProtectorDir(dir) {
			continue
		}
		if data, err := ks.outside.ReadFile(path, maxCommitFile); err == nil {
			if old, ok := parseRecord(data); ok && old.top() >= n {
				continue
			}
		}
		_ = ks.replaceRecord(dir, path, encodeRecord(n, n))
	}
}

// replaceRecord replaces a small record in a protector directory: written
// beside it, renamed over it, not synced.
func (ks *Keystore) replaceRecord(dir, path string, data []byte) error {
	tmp := filepath.Join(dir, formats.TempPrefix+fsio.RandomName())
	if err := ks.outside.CreateFile(tmp, data, false); err != nil {
		ks.outside.RemoveQuietly(tmp)
		return err
	}
	if err := ks.outside.RenameReplace(tmp, path); err != nil {
		ks.outside.RemoveQuietly(tmp)
		return err
	}
	return nil
}

// forget records the keystore's commit n as accepted, lower or not: the
// user accepted the keystore as it is (AcceptRollback). n = 0 is a
// keystore of format 1.
func (ks *Keystore) forget(n int) error { return ks.forgetIn(ks.commitFiles(), n, false) }

// forgetIn records commit n as accepted in every protector directory of
// files, lower or not, keeping the highest commit each has seen, so that
// a commit between the two stays a rollback: synced, or, if quick,
// replaced whole but not synced, as rememberIn does. n = 0 where nothing
// was seen removes the record.
func (ks *Keystore) forgetIn(files []string, n int, quick bool) error {
	for _, path := range files {
		dir := filepath.Dir(path)
		if !ks.ownProtectorDir(dir) {
			continue
		}
		h := n
		if data, err := ks.outside.ReadFile(path, maxCommitFile); err == nil {
			if old, ok := parseRecord(data); ok {
				h = max(h, old.top())
			}
		}
		var err error
		switch {
		case h == 0:
			err = ks.outside.RemoveFile(path)
			if errors.Is(err, fs.ErrNotExist) {
				err = nil
			}
		case quick:
			err = ks.replaceRecord(dir, path, encodeRecord(n, h))
		default:
			err = ks.outside.ReplaceFile(dir, path, encodeRecord(n, h))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// dropRecordIn removes the records in files: what they remembered is
// taken, instead, from the next commit that verifies (a database or secret
// accepted by AcceptRollback that only a password opens).
func (ks *Keystore) dropRecordIn(files []string) error {
	for _, path := range files {
		if !ks.ownProtectorDir(filepath.Dir(path)) {
			continue
		}
		if err := ks.outside.RemoveFile(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// Each protector directory also remembers every service master key it has
// seen in a keystore of format 2: DIR/THUMBPRINT.format2, empty. A keystore
// of format 1 with such a key is an older copy (or a forged one), whatever
// its id says: keytree never moves a keystore back to format 1, and a key
// moves to a keystore of format 1 only from a backup, which keytree
// restores into a keystore of format 2 (docs/format.md, section 18).
func (ks *Keystore) format2Markers(thumbprint string) []string {
	var files []string
	for _, dir := range []string{ks.accountDir, ks.machineDir} {
		if dir != "" && formats.ValidThumbprint(thumbprint) {
			files = append(files, filepath.Join(dir, thumbprint+".format2"))
		}
	}
	return files
}

// keyWasFormat2 reports whether a protector directory remembers the key
// of thumbprint in a keystore of format 2, and which file says so.
func (ks *Keystore) keyWasFormat2(thumbprint string) (string, bool) {
	for _, path := range ks.format2Markers(thumbprint) {
		if ks.outside.Exists(path) {
			return path, true
		}
	}
	return "", false
}

// markFormat2Key makes the protector directories remember the key of
// thumbprint as a key of a keystore of format 2; best effort, as remember.
func (ks *Keystore) markFormat2Key(thumbprint string) {
	for _, path := range ks.format2Markers(thumbprint) {
		dir := filepath.Dir(path)
		if ks.outside.Exists(path) || !ks.ownProtectorDir(dir) {
			continue
		}
		_ = ks.replaceRecord(dir, path, nil)
	}
}

// unmarkFormat2Key forgets that the key of thumbprint was of format 2.
func (ks *Keystore) unmarkFormat2Key(thumbprint string) {
	for _, path := range ks.format2Markers(thumbprint) {
		dir := filepath.Dir(path)
		if ks.outside.Exists(path) && ks.ownProtectorDir(dir) {
			_ = ks.outside.RemoveFile(path)
		}
	}
}

// ownProtectorDir reports whether keytree may write its small records in
// a protector directory: it exists, is private, and belongs to the account
// running keytree (as for a new protector secret, checkSecretDir). Another
// account's directory is read, never written.
func (ks *Keystore) ownProtectorDir(dir string) bool {
	role := roleOfProtectorDir(ks, dir)
	return ks.outside.Exists(dir) && checkSecretDir(dir, role.dir.String(), createFile) == nil &&
		checkOwnDir(ks.outside, dir, role) == nil
}

func roleOfProtectorDir(ks *Keystore, dir string) dirRole {
	if dir == ks.machineDir {
		return machineRole
	}
	return accountRole
}

// checkRollback compares the keystore's commit count with what the
// protector directories remember. A keystore of format 1 has none: it is a
// rollback if a directory remembers any, since keytree never turns an
// authenticated keystore back into format 1.
func (s *session) checkRollback(m *formats.SMK) error {
	if s.acceptRollback {
		return nil
	}
	files := s.ks.commitFiles()
	against, newer, err := s.ks.judge(files, m.Commit)
	if err != nil {
		return err
	}
	if !authenticated(m) && against == nil {
		// A keystore id is not signed: an older copy of the keystore from
		// before its upgrade, given a new id, has no count remembered.
		// But its key has been the key of a keystore of format 2.
		if marker, ok := s.ks.keyWasFormat2(m.Thumbprint); ok {
			if recs, _ := s.ks.recordsIn(files); len(recs) == 0 {
				against = &record{accepted: 1, seen: 1, path: marker}
			}
		}
	}
	if against == nil {
		// Only when there is something new to remember: the records are
		// written at each commit (commitSMK, advanceCommit), and a read
		// that finds them current touches nothing more.
		if newer {
			s.ks.remember(m.Commit)
			s.ks.markFormat2Key(m.Thumbprint)
		}
		return nil
	}
	what := fmt.Sprintf("commit %d", m.Commit)
	if !authenticated(m) {
		what = "format 1, which has no commit count"
	}
	return &Error{
		Text: fmt.Sprintf("the keystore has been rolled back: smk.toml is at %s, but %s", what, against.says(m.Commit)),
		Detail: []string{"someone replaced the keystore, or part of it, with an older copy; it may hand out old values or old keys",
			"if you restored it from a backup on purpose, accept it as it is now"},
		Remedy: Remedy{Kind: RemedyAcceptRollback},
		Kind:   ErrCorrupt,
	}
}

// says tells, for an error, what the record remembers against commit c.
func (r record) says(c int) string {
	if c < r.accepted {
		return fmt.Sprintf("%s remembers commit %d", r.path, r.accepted)
	}
	return fmt.Sprintf("%s remembers commit %d, accepted after commit %d had been seen: commit %d is of the state given up then", r.path, r.accepted, r.seen, c)
}

// AcceptResult is what AcceptRollback accepted.
type AcceptResult struct {
	// Commit is the keystore's commit accepted, Before the one the
	// protector directories remembered.
	Commit, Before int
	// Databases were rolled back and are accepted as they are, their
	// database.toml verified under their key (opened by the SMK).
	// Pending ones only a password opens: each is accepted as it is when
	// its key next opens.
	Databases, Pending []string
	// Credentials and Secrets (DB/NAME) were rolled back and are
	// accepted as they are, their value verified under its key.
	// PendingSecrets are of databases only a password opens: each is
	// accepted as it is when it is next read.
	Credentials, Secrets, PendingSecrets []string
}

// AcceptRollback makes the protector directories remember the keystore's
// commit as it is now, after a deliberate restore from an older copy. The
// SMK must open and smk.toml verify under it: only the keystore's own
// state is accepted, never an edit. So is every database rolled back
// (acceptDatabases).
func (ks *Keystore) AcceptRollback() (*AcceptResult, error) {
	res := &AcceptResult{}
	err := ks.write("accept-rollback", func(s *session) error {
		s.acceptRollback = true
		st, err := s.openSMK()
		if err != nil {
			return err
		}
		// A damaged count is replaced: accepting is what repairs it. A
		// keystore of format 1 (a copy from before an upgrade) has no
		// count: it is accepted at commit 0, and the directories forget
		// that its key was of format 2.
		res.Before, _, _ = ks.remembered()
		seen := ks.highestSeen(ks.commitFiles())
		res.Commit = st.meta.Commit
		if !authenticated(st.meta) {
			ks.unmarkFormat2Key(st.meta.Thumbprint)
		}
		if err := ks.forget(res.Commit); err != nil {
			return err
		}
		if err := s.acceptDatabases(res); err != nil {
			return err
		}
		if err := s.acceptItems(res); err != nil {
			return err
		}
		return ks.forgetAbsent(seen)
	})
	return res, err
}

// acceptDatabases accepts every database whose database.toml is older than
// the protector directories remember. Its commit is taken only from a
// database.toml that verifies: one whose key the SMK opens is opened, and
// remembered at its commit; for one that only a password opens (it has no
// SMK encryption file), the record is removed, and the next time its key
// opens (its database.toml verified) its commit is remembered. A database
// whose SMK encryption does not open, or that does not verify, is left as
// it is.
func (s *session) acceptDatabases(res *AcceptResult) error {
	names, err := s.ks.DatabaseNames()
	if err != nil {
		return err
	}
	for _, db := range names {
		m, err := s.ks.loadDatabaseMeta(db)
		if err != nil || m.Name != db {
			continue
		}
		files := s.ks.databaseFiles(db)
		if !dbAuthenticated(m) {
			// Of format 1, it has no commit: accepted at commit 0.
			if err := s.ks.forgetIn(files, 0, false); err != nil {
				return err
			}
			continue
		}
		if against, _, err := s.ks.judge(files, m.Commit); err != nil || against == nil {
			continue
		}
		// smk_encryption is not signed: whether the SMK encryption is
		// tried depends on its file alone.
		if !s.ks.files.Exists(s.ks.pathOf(smkEncryptionBlob(db, m.Generation, s.smk.meta.Generation))) {
			if err := s.ks.dropRecordIn(files); err != nil {
				return err
			}
			res.Pending = append(res.Pending, db)
			continue
		}
		bySMK := *m
		bySMK.SMKEncryption = true
		if _, err := s.openDMK(&bySMK, nil); err != nil {
			continue // it does not open, or does not verify: not accepted
		}
		if err := s.ks.forgetIn(files, m.Commit, false); err != nil {
			return err
		}
		res.Databases = append(res.Databases, db)
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

// A database's rollback. database.toml of format 2 says the commit it was
// written at (signed by its DMK), and the account and machine directories
// remember, for each database of the keystore, the highest such commit
// they saw (ID.HASH.database, beside ID.commit), and the commit that
// dropped it. A database.toml put back from an older copy (an older DMK
// generation, a password dropped since) is below it, and so is a database
// dropped and put back. The record is written just after each commit of
// database.toml: a crash in between leaves it one step behind, which a
// rollback to just before that commit would pass (docs/security.md,
// section 5.2).
// A database's rollback. smk.toml, signed and counted, holds for every
// database of a keystore of format 2 the lowest commit its database.toml
// may be at (formats.SMK.Databases); database.toml, signed by its DMK,
// says the commit it was written at. A database.toml put back from an
// older copy (an older DMK generation, a password dropped since) is below
// its entry, and one dropped and put back has none. The entry is raised
// just after each commit of database.toml (setFloor): a crash in between
// leaves it one step behind, which a rollback to just before that commit
// would pass (docs/security.md, section 5.2).

// commitToBe is the commit count of this session's next commit in a
// keystore of format 2, and 0 in one of format 1 (advanceCommit).
func (s *session) commitToBe() (int, error) {
	if s.committed != 0 {
		return s.committed, nil
	}
	st, err := s.countingSMK()
	if st == nil {
		return 0, err
	}
	return s.nextCommit(st.meta), nil
}

// signDatabase signs an authenticated database.toml about to be committed,
// with the commit it is written at: this session's, and in any case past
// the one it had (a database imported from another keystore brings that
// keystore's count).
func (s *session) signDatabase(m *formats.Database, key *protect.Key) error {
	if dbAuthenticated(m) {
		c, err := s.commitToBe()
		if err != nil {
			return err
		}
		m.Commit = max(c, m.Commit+1)
	}
	return signDatabase(m, key)
}

// databaseFiles lists the files in the protector directories that
// remember database db's commit: named by a hash of its name, so that no
// database name, on no file system, makes two records one.
func (ks *Keystore) databaseFiles(db string) []string {
	h := sha256.Sum256([]byte("keytree database record\x00" + db))
	return ks.recordFiles(ks.id + "." + hex.EncodeToString(h[:10]) + ".database")
}

// rememberDatabase has the protector directories remember that database
// db's database.toml is at commit n, lower or not: a write just made it so
// (or dropped the database at n). Best effort, as remember.
func (ks *Keystore) rememberDatabase(db string, n int) {
	_ = ks.forgetIn(ks.databaseFiles(db), n, true)
}

// checkDatabaseRollbackOf refuses, in a keystore of format 2, a
// database.toml older than the protector directories remember for its
// database, unless accepting (while AcceptRollback runs); one newer is
// remembered. m must have verified under the database's key.
func (ks *Keystore) checkDatabaseRollbackOf(m *formats.Database, accepting bool) error {
	if accepting {
		return nil
	}
	newer, err := ks.databaseRollback(m)
	if newer != nil {
		ks.rememberIn(newer, m.Commit)
	}
	return err
}

// databaseRollback is checkDatabaseRollbackOf without a write: it returns
// the files to raise to the database's commit if it is newer than they
// remember.
func (ks *Keystore) databaseRollback(m *formats.Database) ([]string, error) {
	if !dbAuthenticated(m) {
		return nil, nil
	}
	files := ks.databaseFiles(m.Name)
	against, newer, err := ks.judge(files, m.Commit)
	if err != nil || against == nil {
		if newer {
			return files, err
		}
		return nil, err
	}
	return nil, &Error{
		Text: fmt.Sprintf("database '%s' has been rolled back: its database.toml is at commit %d, but %s", m.Name, m.Commit, against.says(m.Commit)),
		Detail: []string{"someone replaced the database, or its database.toml, with an older copy, or put back a database that was dropped; it may hand out old values, or open with a password dropped since",
			"if you restored it from a backup on purpose, accept it as it is now"},
		Remedy: Remedy{Kind: RemedyAcceptRollback},
		Kind:   ErrCorrupt,
	}
}

// acceptRestoredDatabases has the protector directories remember every
// database in databases/ at the commit its database.toml says, and every
// item at its commit, lower or not (keystore restore: as the count, taken
// as the archive has it, the archive being the user's choice); those of
// format 1 at commit 0. Each is still checked under its key when it is
// read. Those the archive does not hold are remembered as removed past
// seen, the highest commit the directories had seen (forgetAbsent).
func (ks *Keystore) acceptRestoredDatabases(seen int) {
	_ = ks.eachCredential(func(m *formats.Credential) error {
		_ = ks.forgetIn(ks.itemFiles("", m.Name), m.Commit, true)
		return nil
	})
	names, err := ks.DatabaseNames()
	if err != nil {
		return
	}
	for _, db := range names {
		if m, err := ks.loadDatabaseMeta(db); err == nil && m.Name == db {
			_ = ks.forgetIn(ks.databaseFiles(db), m.Commit, false)
			_ = ks.eachSecretMeta(db, func(sm *formats.Secret) error {
				_ = ks.forgetIn(ks.itemFiles(db, sm.Name), sm.Commit, true)
				return nil
			})
		}
	}
	_ = ks.forgetAbsent(seen)
}

// Each item of format 2 (a credential, a secret of a database of format 2)
// holds the commit it was written at, which its value file is bound to,
// and the account and machine directories remember it in ID.HASH.item,
// named by a hash of the item's kind, database and name, as a database's
// commit. A credential or secret put back to an older copy of its
// metadata and value file holds an older commit than they remember; one
// removed and put back, one below the commit of its removal.

// itemFiles lists the files in the protector directories that remember
// the commit of credential name (db empty) or of secret db/name.
func (ks *Keystore) itemFiles(db, name string) []string {
	kind := "credential"
	if db != "" {
		kind = "secret"
	}
	h := sha256.Sum256([]byte("keytree item record\x00" + kind + "\x00" + db + "\x00" + name))
	return ks.recordFiles(ks.id + "." + hex.EncodeToString(h[:10]) + ".item")
}

// rememberItem has the protector directories remember that an item is at
// commit n, lower or not: a write just made it so (or removed it at n).
// Best effort, as remember.
func (ks *Keystore) rememberItem(db, name string, n int) {
	_ = ks.forgetIn(ks.itemFiles(db, name), n, true)
}

// itemCommit is the commit a bound item is written at (0 for one that is
// not bound): this session's, which is past every commit the keystore
// holds (db import raises the count past those it brings), and past what
// the protector directories have seen for it. Nothing the keystore's
// files say of the item goes into it: they are not verified here.
func (s *session) itemCommit(bound bool, db, name string) (int, error) {
	if !bound {
		return 0, nil
	}
	c, err := s.commitToBe()
	if err != nil {
		return 0, err
	}
	return max(c, s.ks.highestSeen(s.ks.itemFiles(db, name))+1), nil
}

// forgetRemovedItem has the protector directories remember that an item
// was removed by this session's commit: an older copy put back is below
// it.
func (s *session) forgetRemovedItem(bound bool, db, name string) {
	if bound && s.committed != 0 {
		s.ks.rememberItem(db, name, s.committed)
	}
}

// checkItemRollback refuses a bound item whose commit is older than the
// protector directories remember for it. It returns the files to raise to
// commit once the item's value verifies (a newer commit, written by
// another account or machine), or nil.
func (ks *Keystore) checkItemRollback(bound bool, db, name string, commit int) ([]string, error) {
	if !bound {
		return nil, nil
	}
	files := ks.itemFiles(db, name)
	against, newer, err := ks.judge(files, commit)
	if err != nil || against == nil {
		if newer {
			return files, err
		}
		return nil, err
	}
	what, item := "credential", name
	if db != "" {
		what, item = "secret", db+"/"+name
	}
	return nil, &Error{
		Text: fmt.Sprintf("%s '%s' has been rolled back: its metadata is at commit %d, but %s", what, item, commit, against.says(commit)),
		Detail: []string{"someone replaced the " + what + " with an older copy, or put it back after it was removed; it would hand out an old value",
			"if you restored it from a backup on purpose, accept it as it is now"},
		Remedy: Remedy{Kind: RemedyAcceptRollback},
		Kind:   ErrCorrupt,
	}
}

// raiser returns what raises files to commit n, or nil for no files.
func (ks *Keystore) raiser(files []string, n int) func() {
	if files == nil {
		return nil
	}
	return func() { ks.rememberIn(files, n) }
}

// acceptItems accepts every credential and secret older than the protector
// directories remember, as acceptDatabases does databases: an item's commit
// is taken only from a value that verifies under its key (bound to that
// commit). The records of a database's secrets that only a password opens
// are removed: the next read that verifies one remembers its commit. An
// item whose value does not verify, or is an orphan, is left as it is.
func (s *session) acceptItems(res *AcceptResult) error {
	st := s.smk
	err := s.ks.eachCredential(func(m *formats.Credential) error {
		files := s.ks.itemFiles("", m.Name)
		if !authenticated(st.meta) {
			// Of format 1, it has no commit: accepted at commit 0.
			return s.ks.forgetIn(files, 0, true)
		}
		if against, _, err := s.ks.judge(files, m.Commit); err != nil || against == nil {
			return nil
		}
		if !s.ks.verifies(st.key, credentialBlob(m.Name, m.Revision, 0), smkGens(st.meta), credentialBinding(s.ks.id, m)) {
			return nil
		}
		res.Credentials = append(res.Credentials, m.Name)
		return s.ks.forgetIn(files, m.Commit, false)
	})
	if err != nil {
		return err
	}
	names, err := s.ks.DatabaseNames()
	if err != nil {
		return err
	}
	for _, db := range names {
		m, err := s.ks.loadDatabaseMeta(db)
		if err != nil || m.Name != db {
			continue
		}
		var key *protect.Key
		opened := false
		err = s.ks.eachSecretMeta(db, func(sm *formats.Secret) error {
			files := s.ks.itemFiles(db, sm.Name)
			if !dbAuthenticated(m) {
				return s.ks.forgetIn(files, 0, true)
			}
			if against, _, err := s.ks.judge(files, sm.Commit); err != nil || against == nil {
				return nil
			}
			if !opened {
				opened = true
				if s.ks.files.Exists(s.ks.pathOf(smkEncryptionBlob(db, m.Generation, st.meta.Generation))) {
					bySMK := *m
					bySMK.SMKEncryption = true
					if dmk, err := s.openDMK(&bySMK, nil); err == nil {
						key = dmk.key
					}
				}
			}
			item := db + "/" + sm.Name
			if key == nil {
				res.PendingSecrets = append(res.PendingSecrets, item)
				return s.ks.dropRecordIn(files)
			}
			if !s.ks.verifies(key, secretBlob(db, sm.Name, sm.Revision, 0), dmkGens(m), secretBinding(db, sm)) {
				return nil
			}
			res.Secrets = append(res.Secrets, item)
			return s.ks.forgetIn(files, sm.Commit, false)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// forgetAbsent has the protector directories remember every database and
// item of this keystore they hold a record of, but the keystore no longer
// holds (a restore or an accepted rollback went back to before it was
// made), as removed past seen, the highest commit they had seen: a copy
// of it put back is a rollback.
func (ks *Keystore) forgetAbsent(seen int) error {
	present := map[string]bool{}
	note := func(files []string) {
		if len(files) > 0 {
			present[filepath.Base(files[0])] = true
		}
	}
	_ = ks.eachCredential(func(m *formats.Credential) error {
		note(ks.itemFiles("", m.Name))
		return nil
	})
	names, _ := ks.DatabaseNames()
	for _, db := range names {
		note(ks.databaseFiles(db))
		_ = ks.eachSecretMeta(db, func(sm *formats.Secret) error {
			note(ks.itemFiles(db, sm.Name))
			return nil
		})
	}
	for _, dir := range []string{ks.accountDir, ks.machineDir} {
		if dir == "" || !ks.ownProtectorDir(dir) {
			continue
		}
		entries, err := ks.outside.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			n := e.Name()
			if !strings.HasPrefix(n, ks.id+".") || present[n] ||
				!strings.HasSuffix(n, ".database") && !strings.HasSuffix(n, ".item") {
				continue
			}
			if err := ks.forgetIn([]string{filepath.Join(dir, n)}, seen+1, true); err != nil {
				return err
			}
		}
	}
	return nil
}

// verifies reports whether an item's value file, of the key's current
// generation, opens under key and is bound to binding.
func (ks *Keystore) verifies(key *protect.Key, h handle, g keyGens, binding []byte) bool {
	blob, _, orphan, err := ks.readItemBlob(h, g)
	if err != nil || orphan != nil {
		return false
	}
	value, err := openBound(key, blob, binding, true)
	clear(value)
	return err == nil
}
