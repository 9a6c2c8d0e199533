package keystore

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/keystore/internal/fsio"
	"github.com/keytree-dev/keytree/protect"
)

// Rollback detection in a keystore of format 2 (docs/format.md, section
// 18.3): the commits that smk.toml, database.toml and each item's
// metadata hold, and the records of them that the account and machine
// directories keep, out of reach of whoever can write the keystore.

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
//
// A record of a database or secret accepted while only a password opens
// its key is "P H C\n", pending: the next open verifies commit C, the one
// its metadata said when it was accepted, and accepts it; any other commit
// up to H is a rollback, and stays one from then on. ("P H\n", which
// keytree wrote before it named C, accepts any commit that verifies.)
//
// A database's record written by db import, whose database.toml no key
// has verified yet, also names the master key it accepted: "A H THUMBPRINT\n".
// Another database at commit A (a dropped one of that name, put back: two
// keystores count their commits apart, and may give the same number to
// two databases) is a rollback.
type record struct {
	accepted, seen int
	pending        bool
	pinned         bool // pending, accepting only commit pin
	pin            int
	thumbprint     string
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
	if a == "P" {
		return parsePending(h, two)
	}
	h, thumbprint, three := strings.Cut(h, " ")
	if three && !formats.ValidThumbprint(thumbprint) {
		return record{}, false
	}
	na, err1 := strconv.Atoi(a)
	nh, err2 := strconv.Atoi(h)
	if err1 != nil || err2 != nil || na < 0 || nh < 1 || na > nh || nh > formats.MaxRevision || !two && na < 1 {
		return record{}, false
	}
	return record{accepted: na, seen: nh, thumbprint: thumbprint}, true
}

// parsePending reads what follows "P " in a pending record: "H" or "H C".
func parsePending(rest string, two bool) (record, bool) {
	h, c, pinned := strings.Cut(rest, " ")
	nh, err := strconv.Atoi(h)
	r := record{seen: nh, pending: true, pinned: pinned}
	ok := two && err == nil && nh >= 1 && nh <= formats.MaxRevision
	if pinned {
		nc, err := strconv.Atoi(c)
		r.pin = nc
		ok = ok && err == nil && nc >= 0 && nc <= nh
	}
	return r, ok
}

// encodeRecord writes a record accepting commit a after seeing h.
func encodeRecord(a, h int) []byte { return encodeAccepted(a, h, "") }

// encodeAccepted writes a record accepting commit a, of the master key of
// thumbprint if not empty, after seeing h.
func encodeAccepted(a, h int, thumbprint string) []byte {
	if thumbprint != "" {
		return []byte(strconv.Itoa(a) + " " + strconv.Itoa(max(a, h)) + " " + thumbprint + "\n")
	}
	if a >= h {
		return []byte(strconv.Itoa(a) + "\n")
	}
	return []byte(strconv.Itoa(a) + " " + strconv.Itoa(h) + "\n")
}

// top is the highest commit a record has seen.
func (r record) top() int { return max(r.accepted, r.seen) }

// rolledBack reports whether commit c, of the master key of thumbprint
// (a database's; empty for others), is older than the record allows.
func (r record) rolledBack(c int, thumbprint string) bool {
	if r.pending {
		return r.pinned && c != r.pin && c <= r.seen
	}
	return c < r.accepted || c > r.accepted && c <= r.seen ||
		c == r.accepted && r.thumbprint != "" && thumbprint != r.thumbprint
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
	return ks.judgeOf(files, c, "")
}

// judgeOf is judge for a database, whose master key has thumbprint.
func (ks *Keystore) judgeOf(files []string, c int, thumbprint string) (against *record, newer bool, err error) {
	recs, err := ks.recordsIn(files)
	if err != nil {
		return nil, false, err
	}
	newer = len(recs) < len(files)
	for i := range recs {
		if recs[i].rolledBack(c, thumbprint) {
			return &recs[i], false, nil
		}
		newer = newer || recs[i].pending || c > recs[i].top()
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
		if !r.pending && r.accepted > best {
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
	_ = ks.eachOwnRecord(files, func(dir, path string, old *record) error {
		h := n
		if old != nil {
			if !old.pending && old.top() >= n {
				return nil
			}
			h = max(h, old.top()) // a pending record, accepted at n
		}
		_ = ks.replaceRecord(dir, path, encodeRecord(n, h))
		return nil
	})
}

// eachOwnRecord calls fn with each of files whose protector directory is
// keytree's own to write (ownProtectorDir), and the record it holds, or
// nil if it holds none that parses.
func (ks *Keystore) eachOwnRecord(files []string, fn func(dir, path string, old *record) error) error {
	for _, path := range files {
		dir := filepath.Dir(path)
		if !ks.ownProtectorDir(dir) {
			continue
		}
		var old *record
		if data, err := ks.outside.ReadFile(path, maxCommitFile); err == nil {
			if r, ok := parseRecord(data); ok {
				old = &r
			}
		}
		if err := fn(dir, path, old); err != nil {
			return err
		}
	}
	return nil
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
	return ks.acceptIn(files, n, "", quick)
}

// acceptIn is forgetIn, naming in the record the master key of thumbprint
// if not empty.
func (ks *Keystore) acceptIn(files []string, n int, thumbprint string, quick bool) error {
	return ks.eachOwnRecord(files, func(dir, path string, old *record) error {
		h := n
		if old != nil {
			h = max(h, old.top())
		}
		switch {
		case h == 0:
			if err := ks.outside.RemoveFile(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			return nil
		case quick:
			return ks.replaceRecord(dir, path, encodeAccepted(n, h, thumbprint))
		default:
			return ks.outside.ReplaceFile(dir, path, encodeAccepted(n, h, thumbprint))
		}
	})
}

// pendIn makes the records in files pending on commit c (a database or
// secret accepted by AcceptRollback that only a password opens, at the
// commit its metadata says): the next open verifies c before it accepts
// it, and the highest commit they have seen is kept.
func (ks *Keystore) pendIn(files []string, c int) error {
	return ks.eachOwnRecord(files, func(dir, path string, old *record) error {
		if old == nil {
			return nil
		}
		h := max(old.top(), c)
		return ks.outside.ReplaceFile(dir, path, []byte("P "+strconv.Itoa(h)+" "+strconv.Itoa(c)+"\n"))
	})
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
	if r.pending {
		return fmt.Sprintf("%s remembers commit %d, accepted after commit %d had been seen, to be opened by password: commit %d is not it", r.path, r.pin, r.seen, c)
	}
	if c == r.accepted && r.thumbprint != "" {
		return fmt.Sprintf("%s remembers commit %d of another master key, %s: it is another database of that name, put back", r.path, r.accepted, r.thumbprint)
	}
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
	// Pending ones only a password opens: each is accepted as it is now
	// (its commit), once its key next opens and it verifies.
	Databases, Pending []string
	// Credentials and Secrets (DB/NAME) were rolled back and are
	// accepted as they are, their value verified under its key.
	// PendingSecrets are of databases only a password opens: each is
	// accepted as it is now (its commit), once it is next read and
	// verifies.
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
		// The keystore's own record is written last: until it is, the
		// keystore is still refused as rolled back, so that an accept
		// cut short (kill -9) is run again, not taken for done.
		if err := s.acceptDatabases(res); err != nil {
			return err
		}
		if err := s.acceptItems(res); err != nil {
			return err
		}
		if err := ks.forgetAbsent(seen); err != nil {
			return err
		}
		if !authenticated(st.meta) {
			ks.unmarkFormat2Key(st.meta.Thumbprint)
		}
		return ks.forget(res.Commit)
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
	return s.ks.eachReadableDatabase(func(db string, m *formats.Database) error {
		files := s.ks.databaseFiles(db)
		if !dbAuthenticated(m) {
			// Of format 1, it has no commit: accepted at commit 0.
			return s.ks.forgetIn(files, 0, false)
		}
		if against, _, err := s.ks.judgeOf(files, m.Commit, m.Thumbprint); err != nil || against == nil {
			return nil
		}
		key, found := s.openBySMKFile(m)
		switch {
		case !found:
			res.Pending = append(res.Pending, db)
			return s.ks.pendIn(files, m.Commit)
		case key == nil:
			return nil // it does not open, or does not verify: not accepted
		}
		res.Databases = append(res.Databases, db)
		return s.ks.forgetIn(files, m.Commit, false)
	})
}

// eachReadableDatabase calls fn with every database whose database.toml
// reads and names it; the others are left to the commands that report
// them.
func (ks *Keystore) eachReadableDatabase(fn func(db string, m *formats.Database) error) error {
	names, err := ks.DatabaseNames()
	if err != nil {
		return err
	}
	for _, db := range names {
		m, err := ks.loadDatabaseMeta(db)
		if err != nil || m.Name != db {
			continue
		}
		if err := fn(db, m); err != nil {
			return err
		}
	}
	return nil
}

// openBySMKFile opens a database's key through its SMK encryption file,
// whatever smk_encryption (which is not signed) says, unless the signed
// password_only forbids it, and verifies its
// database.toml under it: found says the file is there, key is nil if it
// does not open or verify.
func (s *session) openBySMKFile(m *formats.Database) (key *protect.Key, found bool) {
	if m.PasswordOnly {
		return nil, false // signed: a file there is not to be used
	}
	if !s.ks.files.Exists(s.ks.pathOf(smkEncryptionBlob(m.Name, m.Generation, s.smk.meta.Generation))) {
		return nil, false
	}
	bySMK := *m
	bySMK.SMKEncryption = true
	dmk, err := s.openDMK(&bySMK, nil)
	if err != nil {
		return nil, true
	}
	return dmk.key, true
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

// rememberImport has the protector directories accept database db,
// imported at commit n with the master key of thumbprint, which no key has
// verified yet: the record names the key, so that another database of
// that name at the same commit is not taken for it.
func (ks *Keystore) rememberImport(db string, n int, thumbprint string) {
	_ = ks.acceptIn(ks.databaseFiles(db), n, thumbprint, true)
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
	against, newer, err := ks.judgeOf(files, m.Commit, m.Thumbprint)
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

// acceptRestoredItems has the protector directories remember every
// database in databases/ at the commit its database.toml says, and every
// item at its commit, lower or not (keystore restore: taken as the archive
// has it, the archive being the user's choice); those of format 1 at
// commit 0. A commit above count, the restored smk.toml's, is an edit and
// is not remembered. Each is still checked under its key when it is read.
// Those the archive does not hold are remembered as removed past seen, the
// highest commit the directories had seen (forgetAbsent).
func (ks *Keystore) acceptRestoredItems(seen, count int) {
	accept := func(files []string, commit int, quick bool) {
		if commit <= count {
			_ = ks.forgetIn(files, commit, quick)
		}
	}
	_ = ks.eachCredential(func(m *formats.Credential) error {
		accept(ks.itemFiles("", m.Name), m.Commit, true)
		return nil
	})
	_ = ks.eachReadableDatabase(func(db string, m *formats.Database) error {
		accept(ks.databaseFiles(db), m.Commit, false)
		_ = ks.eachSecretMeta(db, func(sm *formats.Secret) error {
			accept(ks.itemFiles(db, sm.Name), sm.Commit, true)
			return nil
		})
		return nil
	})
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
	return s.ks.eachReadableDatabase(func(db string, m *formats.Database) error {
		var key *protect.Key
		opened, found := false, false
		return s.ks.eachSecretMeta(db, func(sm *formats.Secret) error {
			files := s.ks.itemFiles(db, sm.Name)
			if !dbAuthenticated(m) {
				return s.ks.forgetIn(files, 0, true)
			}
			if against, _, err := s.ks.judge(files, sm.Commit); err != nil || against == nil {
				return nil
			}
			if !opened {
				opened = true
				key, found = s.openBySMKFile(m)
			}
			item := db + "/" + sm.Name
			switch {
			case !found:
				res.PendingSecrets = append(res.PendingSecrets, item)
				return s.ks.pendIn(files, sm.Commit)
			case key == nil:
				return nil // its key does not open, or does not verify: not accepted
			}
			if !s.ks.verifies(key, secretBlob(db, sm.Name, sm.Revision, 0), dmkGens(m), secretBinding(db, sm)) {
				return nil
			}
			res.Secrets = append(res.Secrets, item)
			return s.ks.forgetIn(files, sm.Commit, false)
		})
	})
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
