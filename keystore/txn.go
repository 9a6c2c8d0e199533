package keystore

import (
	"path/filepath"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/keystore/internal/fsio"
)

// A txn is one writer's change to the keystore, made in the order that
// keeps every crash recoverable (P5, P6):
//
//  1. intent: every file the change will create or make obsolete is
//     recorded in pending.toml before the first of them is created
//     (session.intend), so that the clean-up after a crash knows them;
//  2. new files are created beside the old ones, never over a name that
//     committed metadata refers to, and made durable;
//  3. the commit: one metadata file is replaced, or removed, in one rename
//     or unlink; before it the keystore is wholly old, after it wholly new;
//  4. the clean-up (runWriter, pending.go) removes what the commit made
//     obsolete, or, after a crash before the commit, what was created.
//
// An operation computes its new values first, then declares and creates:
//
//	t := s.begin()
//	t.obsolete(oldFiles...)   // or, for many files, t.sweep(dirs...) and t.batch()
//	if err := t.create(newFile, data); err != nil { ... }
//	return t.commit(metaFile, metaData)
//
// A database is created (dmk create, db import) or dropped whole:
// buildDatabase builds its directory in tmp/ and renames it into databases/,
// and commitDrop renames one out into tmp/. tmp/ needs no intent record:
// every writer empties it first.
type txn struct {
	s        *session
	declared []string // keystore-relative, slash-separated
	dirs     []string // directories with files created, synced before the commit
	b        *fsio.Batch
	// countsItself: the commit is of smk.toml, which carries its own
	// count (commitSMK).
	countsItself bool
}

// begin starts a change to the keystore.
func (s *session) begin() *txn { return &txn{s: s} }

// obsolete declares files, by path, that the commit makes obsolete.
func (t *txn) obsolete(paths ...string) {
	for _, p := range paths {
		t.declared = append(t.declared, t.s.ks.relPath(p))
	}
}

// sweep declares directories in which the change creates, or makes
// obsolete, more files than pending.toml should list one by one (a rekey's
// every value): the clean-up after a crash decides every file in them from
// committed metadata.
func (t *txn) sweep(dirs ...string) error { return t.s.intend(nil, dirs) }

// batch creates many files at once, by writer goroutines, in directories
// sweep declared; the commit makes them durable with one sync.
func (t *txn) batch() *fsio.Batch {
	if t.b == nil {
		t.b = t.s.ks.files.NewBatch(t.s.ks.dir)
	}
	return t.b
}

// intend records what is declared so far (nothing is written if nothing
// new was declared).
func (t *txn) intend() error {
	if len(t.declared) == 0 {
		return nil
	}
	return t.s.intend(t.declared, nil)
}

// create writes a new file under a name no committed metadata refers to
// yet, owner-only and synced; anything already there is a leftover of an
// operation that never committed, and is replaced.
func (t *txn) create(path string, data []byte) error {
	t.obsolete(path)
	if err := t.intend(); err != nil {
		return err
	}
	if err := t.s.ks.files.CreateOver(path, data, true); err != nil {
		return err
	}
	t.noteDir(filepath.Dir(path))
	return nil
}

// replace writes a file whose name may already count as live (an orphaned
// encryption added again): atomically, through tmp/.
func (t *txn) replace(path string, data []byte) error {
	t.obsolete(path)
	if err := t.intend(); err != nil {
		return err
	}
	return t.s.ks.writeFileAtomic(path, data)
}

func (t *txn) noteDir(dir string) {
	for _, d := range t.dirs {
		if d == dir {
			return
		}
	}
	t.dirs = append(t.dirs, dir)
}

// prepare records the intent and makes the created files' directory
// entries durable: everything the commit is to refer to is on disk.
func (t *txn) prepare() error {
	if err := t.intend(); err != nil {
		return err
	}
	for _, d := range t.dirs {
		if err := t.s.ks.files.SyncDir(d); err != nil {
			return err
		}
	}
	if t.b != nil {
		if err := t.b.Sync(); err != nil {
			return err
		}
	}
	return t.count()
}

// count advances the keystore's commit count (format 2) before the commit
// it counts: a crash between the two leaves a count one ahead of the
// state, which is harmless; the other order would leave a commit that no
// count knows, and a rollback to just before it unnoticed. A commit of
// smk.toml counts itself (commitSMK).
func (t *txn) count() error {
	if t.countsItself {
		return nil
	}
	return t.s.advanceCommit()
}

// commit replaces the metadata file at path with data: the change is made.
func (t *txn) commit(path string, data []byte) error {
	if err := t.prepare(); err != nil {
		return err
	}
	return t.s.ks.writeFileAtomic(path, data)
}

// commitRemove removes the metadata file at path: the item it describes is
// gone, and its files are obsolete.
func (t *txn) commitRemove(path string) error {
	if err := t.prepare(); err != nil {
		return err
	}
	f := t.s.ks.files
	if err := f.RemoveFile(path); err != nil {
		return err
	}
	return f.SyncDir(filepath.Dir(path))
}

// A stage is a database built whole in tmp/, which every writer empties
// first, and renamed into databases/ in one step (dmk create, db import):
// no state of databases/ shows a database directory without its
// database.toml (database_gc.go).
type stage struct {
	ks        *Keystore
	dir       string
	committed bool
	// imported: the database comes from an export (db import), and no
	// key of this keystore has verified its database.toml.
	imported bool
}

// stage makes a stage, with its secrets/ directory, named for op.
func (t *txn) stage(op string) (*stage, error) {
	ks := t.s.ks
	st := &stage{ks: ks, dir: ks.pathOf(handle{kind: kindStaged, name: op + "-" + fsio.RandomName()})}
	for _, d := range []string{st.dir, filepath.Join(st.dir, secretsDir)} {
		if err := ks.files.MkdirPrivate(d); err != nil {
			st.discard()
			return nil, err
		}
	}
	return st, nil
}

// buildDatabase builds database db whole in a stage in tmp/, where fill
// writes its files and makes them durable, and commits it with one rename
// into databases/.
func (t *txn) buildDatabase(op, db string, fill func(dir string) error) error {
	st, err := t.stage(op)
	if err != nil {
		return err
	}
	st.imported = op == "import"
	defer st.discard()
	if err := fill(st.dir); err != nil {
		return err
	}
	return t.commitStage(st, db)
}

// commitStage renames the stage, whose files are durable, into databases/
// as database db: the one step that commits it.
//
// The account and machine directories remember, just before, the commit
// its database.toml is at (rememberDatabase).
func (t *txn) commitStage(st *stage, db string) error {
	if err := t.count(); err != nil {
		return err
	}
	// Remembered before the rename: an import may bring a commit below
	// what a database of that name, dropped, left recorded, and a crash
	// must leave the record behind the database, never ahead of it.
	if data, err := st.ks.files.ReadFile(filepath.Join(st.dir, databaseFile), formats.MaxMetadataSize); err == nil {
		if m, err := formats.DecodeDatabase(data); err == nil && dbAuthenticated(m) && t.s.keystoreAuthenticated() {
			if st.imported {
				st.ks.rememberImport(db, m.Commit, m.Thumbprint)
			} else {
				st.ks.rememberDatabase(db, m.Commit)
			}
		}
	}
	if err := st.ks.files.RenameDir(st.dir, st.ks.pathOf(databaseDir(db))); err != nil {
		return err
	}
	st.committed = true
	return st.ks.files.SyncDir(st.ks.path(databasesDir))
}

// discard removes the stage unless it was committed.
func (st *stage) discard() {
	if !st.committed {
		_ = st.ks.files.RemoveTree(st.dir) // what is left, the next writer removes
	}
}

// commitDrop removes database db: one rename of its whole directory into
// tmp/, the reverse of commitStage. Removing database.toml first instead
// would leave a directory without it, which keytree must take for a
// database whose metadata was lost, and keep. What is left in tmp/ if this
// stops halfway, the next writer removes.
func (t *txn) commitDrop(db string) error {
	if err := t.count(); err != nil {
		return err
	}
	ks := t.s.ks
	// (A database is dropped without secrets, each removed, and
	// remembered so, by secret rm.)
	gone := ks.pathOf(handle{kind: kindStaged, name: "drop-" + fsio.RandomName()})
	if err := ks.files.RenameDir(ks.pathOf(databaseDir(db)), gone); err != nil {
		return err
	}
	if err := ks.files.SyncDir(ks.path(databasesDir)); err != nil {
		return err
	}
	if t.s.committed != 0 {
		ks.rememberDatabase(db, t.s.committed)
	}
	_ = ks.files.RemoveTree(gone)
	return nil
}

// relPath turns a path of the keystore into the relative, slash-separated form
// pending.toml records.
func (ks *Keystore) relPath(path string) string {
	r, err := filepath.Rel(ks.dir, path)
	if err != nil {
		panic("keystore: " + path + " is not in the keystore")
	}
	return filepath.ToSlash(r)
}
