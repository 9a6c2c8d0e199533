package keystore

import (
	"errors"
	"path/filepath"
	"slices"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/keystore/internal/fsio"
)

// A session is one operation under the keystore's lock. It caches what the
// operation has read, so a key is decrypted at most once per command.
type session struct {
	ks      *Keystore
	mode    fsio.LockMode
	op      string
	smk     *smkState
	pending *formats.Pending
	// fullCheck decrypts both SMK encryptions, ignoring the machine
	// encryption's memoized check (smk verify).
	fullCheck bool
	// createDirs lets the operation create a missing protector
	// directory (smk restore; see creation in protectors.go).
	createDirs bool
	// work is the command's scrypt work (passwords.go), shared by all its
	// sessions; rehearsal marks writeWithPasswords' first pass under the
	// shared lock, which stops at the first change to the disk.
	work      *scryptWork
	rehearsal bool
	// acceptRollback skips the rollback check (AcceptRollback).
	acceptRollback bool
	// committed is the commit count this session wrote to smk.toml, 0
	// if none.
	committed int
	// commitFloor is a count the session's commit must pass: the highest
	// commit a database imported from another keystore brings (db
	// import), so that no commit in the keystore is ever above its count.
	commitFloor int
	// seen is the highest commit the protector directories have seen for
	// the keystore, read once (seenLoaded) by nextCommit.
	seen       int
	seenLoaded bool
}

// creation is what the session may create for a protector secret it
// needs: a directory only in the operations documented to, or with
// Options.CreateProtectorDirs.
func (s *session) creation() creation {
	if s.createDirs {
		return createDir
	}
	return s.ks.repairCreation()
}

// errNeedsWrite is returned inside a reader's session when the operation
// found something to repair and must run again as a writer.
var errNeedsWrite = errors.New("keystore: repair needs the exclusive lock")

// read runs fn under a shared lock; if fn finds a repair to make (an invalid
// SMK encryption), it runs fn again under the exclusive lock.
func (ks *Keystore) read(op string, fn func(*session) error) error {
	l, err := ks.lock(fsio.Shared, ks.lockTimeout)
	if err != nil {
		return err
	}
	work := newScryptWork()
	if ks.batchInPending() {
		err = errBatchUnfinished
	} else {
		err = fn(&session{ks: ks, mode: fsio.Shared, op: op, work: work})
	}
	l.Release()
	if errors.Is(err, errNeedsWrite) || err == errBatchUnfinished {
		return ks.writeWork(op, work, fn)
	}
	ks.rotateErrorLogAfterRead()
	return err
}

// write runs fn under the exclusive lock. It first finishes the clean-up
// of any operation that crashed, and afterwards removes whatever fn
// recorded as possibly left behind and is not referenced by committed
// metadata, whether fn succeeded or not.
func (ks *Keystore) write(op string, fn func(*session) error) error {
	return ks.writeWork(op, newScryptWork(), fn)
}

// writeWork is write with the scrypt work of an earlier pass.
func (ks *Keystore) writeWork(op string, work *scryptWork, fn func(*session) error) error {
	l, err := ks.lock(fsio.Exclusive, ks.lockTimeout)
	if err != nil {
		return err
	}
	defer l.Release()
	if err := ks.recoverPending(); err != nil {
		return err
	}
	return ks.runWriter(op, work, fn)
}

// lockedInit is write for a keystore that has no keystore.toml yet.
func (ks *Keystore) lockedInit(fn func(*session) error) error {
	l, err := ks.lock(fsio.Exclusive, ks.lockTimeout)
	if err != nil {
		return err
	}
	defer l.Release()
	return ks.runWriter("init", newScryptWork(), fn)
}

func (ks *Keystore) runWriter(op string, work *scryptWork, fn func(*session) error) error {
	s := &session{ks: ks, mode: fsio.Exclusive, op: op, work: work}
	err := fn(s)
	// Rotated by writers only: see logEvent.
	ks.rotateErrorLog()
	// A batch still recorded in s.pending may be committed on disk: only
	// the next writer, from pending.toml, can tell, and finish it. A
	// clean-up now would remove the new values of the items not yet moved,
	// then the record, and leave half the batch for good.
	if s.pending != nil && s.pending.Batch == nil {
		if undecided, cerr := ks.collect(s.pending); cerr == nil && !undecided {
			if rerr := ks.files.RemoveFile(ks.path(pendingFile)); rerr == nil {
				_ = ks.files.SyncDir(ks.dir)
			}
		}
	}
	return err
}

// intend records, durably and before the files exist, paths an operation is
// about to create or make obsolete (candidates) and directories in which it
// will create or obsolete many files (sweep). Paths are relative to the
// keystore, with forward slashes.
func (s *session) intend(candidates, sweep []string) error {
	if s.rehearsal {
		return errRehearsed
	}
	if s.mode != fsio.Exclusive {
		panic("keystore: intend outside a writer")
	}
	if s.pending == nil {
		s.pending = &formats.Pending{Version: formats.Version, Operation: s.op, Started: s.ks.nowUTC()}
		if kept := s.ks.keptPending; kept != nil {
			// A record the clean-up kept lists files still to decide:
			// they stay listed until a clean-up decides them.
			s.pending.Candidates = slices.Clone(kept.Candidates)
			s.pending.Sweep = slices.Clone(kept.Sweep)
		}
	}
	before := len(s.pending.Candidates) + len(s.pending.Sweep)
	for _, c := range candidates {
		if !slices.Contains(s.pending.Candidates, c) {
			s.pending.Candidates = append(s.pending.Candidates, c)
		}
	}
	for _, d := range sweep {
		if !slices.Contains(s.pending.Sweep, d) {
			s.pending.Sweep = append(s.pending.Sweep, d)
		}
	}
	if len(s.pending.Candidates)+len(s.pending.Sweep) == before {
		return nil
	}
	return s.writePending()
}

// writePending replaces pending.toml with the session's record, durably.
func (s *session) writePending() error {
	data, err := s.pending.Encode()
	if err != nil {
		return err
	}
	return s.ks.writeFileAtomic(s.ks.path(pendingFile), data)
}

// rel turns slash-separated keystore-relative elements into a relative path
// for pending.toml.
func rel(elem ...string) string { return filepath.ToSlash(filepath.Join(elem...)) }

// nextCommit is the commit count of the next smk.toml this session writes:
// one past the highest it has seen.
func (s *session) nextCommit(m *formats.SMK) int {
	if !s.seenLoaded {
		// Past every commit the account and machine directories have
		// seen: after an accepted rollback, the commits of the state
		// given up stay rollbacks (forgetIn).
		s.seen, s.seenLoaded = s.ks.highestSeen(s.ks.commitFiles()), true
	}
	c := max(m.Commit, s.committed, s.commitFloor, s.seen)
	if s.smk != nil {
		c = max(c, s.smk.meta.Commit)
	}
	return c + 1
}

// countingSMK returns the open SMK of a keystore of format 2, which counts
// its commits, opening it if need be; nil in a keystore of format 1, whose
// key is not opened for that.
func (s *session) countingSMK() (*smkState, error) {
	st := s.smk
	if st == nil {
		if m, err := s.ks.loadSMKMeta(); err != nil || !authenticated(m) {
			return nil, nil
		}
		var err error
		if st, err = s.openSMK(); err != nil {
			return nil, err
		}
	}
	if !authenticated(st.meta) {
		return nil, nil
	}
	return st, nil
}

// advanceCommit counts, in an authenticated smk.toml, a writer's commit
// that does not write smk.toml (a credential or secret set, a DMK
// operation...), just before that commit (txn.count), once per session,
// and has the protector directories remember it. Counting needs the SMK:
// in a keystore of format 2 a write to a database opened by password fails
// with 15466 while no encryption of the SMK opens, as every command that
// needs the SMK does (P3). Any failure stops the operation before its
// commit.
func (s *session) advanceCommit() error {
	if s.committed != 0 {
		return nil
	}
	st, err := s.countingSMK()
	if st == nil {
		return err
	}
	next := *st.meta
	next.Commit = s.nextCommit(&next)
	if err := s.ks.signSMK(&next, st.key); err != nil {
		return err
	}
	data, err := next.Encode()
	if err != nil {
		return err
	}
	if err := s.ks.writeFileAtomic(s.ks.path(smkFile), data); err != nil {
		return err
	}
	st.meta, s.committed = &next, next.Commit
	s.ks.remember(next.Commit)
	return nil
}
