package keystore

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/keytree-dev/keytree/formats"
)

// recoverPending finishes the clean-up of an operation that stopped before it
// could: it empties tmp/ and collects what pending.toml lists. It runs under
// the exclusive lock, before every writer.
func (ks *Keystore) recoverPending() error {
	ks.keptPending = nil
	data, err := ks.files.ReadFile(ks.path(pendingFile), formats.MaxPendingSize)
	if errors.Is(err, fs.ErrNotExist) {
		return ks.emptyTmp()
	}
	var p *formats.Pending
	if err == nil {
		p, err = formats.DecodePending(data)
	}
	if err == nil && p.Batch != nil {
		// A committed batch: its metadata waits in tmp/, which is
		// emptied only once it is in place.
		if err := ks.moveBatch(p.Batch); err != nil {
			return err
		}
		p.Batch = nil
		data, err := p.Encode()
		if err != nil {
			return err
		}
		if err := ks.writeFileAtomic(ks.path(pendingFile), data); err != nil {
			return err
		}
	}
	if err := ks.emptyTmp(); err != nil {
		return err
	}
	var ke *Error
	if errors.As(err, &ke) && ke.Kind == ErrPermissions {
		return err
	}
	if err != nil {
		// An unreadable record: look everywhere. Garbage is decided from
		// committed metadata, so a full sweep removes no more than the
		// right record would have.
		p = &formats.Pending{Sweep: []string{smkDir, credentialsDir, allDatabases}}
	}
	undecided, err := ks.collect(p)
	if err != nil || undecided {
		// Keep the record: what could not be decided (its metadata is
		// damaged) is looked at again by the next writer, and this
		// writer's own intents are added to it, not written over it.
		ks.keptPending = p
		return err
	}
	if err := ks.files.RemoveFile(ks.path(pendingFile)); err != nil {
		return err
	}
	return ks.files.SyncDir(ks.dir)
}

func (ks *Keystore) emptyTmp() error {
	entries, err := ks.files.ReadDir(ks.path(tmpDir))
	if errors.Is(err, fs.ErrNotExist) {
		return ks.files.MkdirPrivate(ks.path(tmpDir))
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := ks.path(tmpDir, e.Name())
		if e.Type() == fs.ModeDir {
			if err := ks.files.RemoveTree(p); err != nil {
				return err
			}
			continue
		}
		if err := ks.files.RemoveFile(p); err != nil {
			return err
		}
	}
	return nil
}

// collect removes the files that p names, or that lie in the directories it
// sweeps, and that committed metadata does not reference. A file whose status
// cannot be decided (its metadata is damaged, say) is kept, and undecided
// reports that there was one.
func (ks *Keystore) collect(p *formats.Pending) (undecided bool, err error) {
	c := &collector{ks: ks}
	var first error
	keep := func(err error) {
		if first == nil {
			first = err
		}
	}
	for _, cand := range p.Candidates {
		if !safeRel(cand) {
			continue
		}
		keep(c.consider(cand))
	}
	for _, dir := range p.Sweep {
		if dir == allDatabases {
			keep(c.eachEntry(databasesDir, func(name string, isDir bool) error {
				if !isDir || formats.ValidateName("database", name) != nil {
					return nil
				}
				if err := c.sweep(secretsDirOf(name).rel()); err != nil {
					return err
				}
				return c.sweep(databaseDir(name).rel())
			}))
			continue
		}
		if strings.HasSuffix(dir, "/*") {
			parent := strings.TrimSuffix(dir, "/*")
			if !safeRel(parent) {
				continue
			}
			keep(c.eachEntry(parent, func(name string, isDir bool) error {
				if !isDir {
					return nil
				}
				return c.sweep(rel(parent, name))
			}))
			continue
		}
		if !safeRel(dir) {
			continue
		}
		keep(c.sweep(dir))
	}
	return c.undecided, first
}

// allDatabases, in a sweep list, sweeps every database directory and its
// secrets: the full sweep after an unreadable pending.toml.
const allDatabases = databasesDir + "/**"

// safeRel accepts a clean, relative, slash-separated path inside the
// keystore: pending.toml is read from disk and trusted no further.
func safeRel(p string) bool {
	if p == "" || strings.ContainsAny(p, "\\\x00:") || path.IsAbs(p) || path.Clean(p) != p {
		return false
	}
	return p != ".." && !strings.HasPrefix(p, "../")
}

type collector struct {
	ks        *Keystore
	smk       *formats.SMK
	smkErr    error
	smkSet    bool
	undecided bool // some file's status could not be decided
}

func (c *collector) sweep(dir string) error {
	return c.eachEntry(dir, func(name string, isDir bool) error {
		if isDir {
			return nil
		}
		return c.consider(rel(dir, name))
	})
}

// eachEntry calls fn for every entry of dir, reading the directory in chunks
// so that a sweep of a large directory uses little memory.
func (c *collector) eachEntry(dir string, fn func(name string, isDir bool) error) error {
	f, err := c.ks.files.OpenDir(c.ks.path(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	for {
		entries, err := f.ReadDir(1024)
		for _, e := range entries {
			if ferr := fn(e.Name(), e.Type() == fs.ModeDir); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (c *collector) consider(p string) error {
	ref, known := c.referenced(p)
	if !known || ref {
		return nil
	}
	return c.ks.files.RemoveFile(c.ks.path(p))
}

func (c *collector) smkMeta() (*formats.SMK, error) {
	if !c.smkSet {
		c.smk, c.smkErr = c.ks.loadSMKMeta()
		c.smkSet = true
	}
	if c.smkErr != nil {
		c.undecided = true
	}
	return c.smk, c.smkErr
}

// damaged notes that a file's status could not be decided because metadata
// it depends on could not be read: the clean-up is worth trying again. A
// file keytree does not recognise is simply kept, and is not such a case.
func (c *collector) damaged() (ref, known bool) {
	c.undecided = true
	return false, false
}

// referenced reports whether committed metadata refers to the file at p,
// and whether that could be decided at all.
func (c *collector) referenced(p string) (ref, known bool) {
	h := parseHandle(p)
	if h.db != "" {
		return c.referencedDatabase(p, h)
	}
	switch h.kind {
	case kindStaged:
		return false, true
	case kindTemp:
		// Only in directories whose files the clean-up decides: one in
		// smk/ is kept, as is everything there it does not recognise.
		return false, h.dir == tmpDir || h.dir == credentialsDir
	case kindMachineCheck, kindCredential:
		return true, true
	case kindProtector:
		meta, err := c.smkMeta()
		if err != nil {
			return false, false
		}
		if h.gen != meta.Generation {
			return keptBy(meta.Retired, h.gen, h.name), true
		}
		// Both encryptions of the current generation are kept, even
		// the machine one while smk.toml says machine protection is off:
		// smk.toml is not authenticated, and an edit of it must not be
		// enough to delete a way to open the key. smk machine-protection
		// off removes that file itself; one that is there anyway is
		// reported when the SMK is opened (disabledMachineEncryption).
		return true, true
	case kindCredentialBlob:
		smk, err := c.smkMeta()
		if err != nil {
			return false, false
		}
		meta, err := c.ks.loadCredentialMeta(h.name)
		if errors.Is(err, fs.ErrNotExist) {
			return false, true
		}
		if err != nil || meta.Name != h.name {
			return c.damaged()
		}
		return c.liveBlob(h, meta.Revision, smk.Generation, smk.Retired), true
	}
	return false, false
}

// keptBy reports whether retired generation gen keeps its own encryption
// name (formats.Retired.Kept).
func keptBy(retired []formats.Retired, gen int, name string) bool {
	r, ok := formats.RetiredGeneration(retired, gen)
	return ok && slices.Contains(r.Kept, name)
}

// liveBlob decides an item's blob h: it is live if it holds the revision
// rev the item's metadata names, under a generation genReferenced keeps.
func (c *collector) liveBlob(h handle, rev, current int, retired []formats.Retired) bool {
	return h.rev == rev && c.genReferenced(h.gen, current, retired, func() bool {
		return c.ks.files.Exists(c.ks.pathOf(h.atGen(current)))
	})
}

// genReferenced decides whether an item's blob under key generation gen is
// live: it is if gen is the current generation, or if gen is retired (the
// blob is an orphan kept for recovery) and the item has no blob under the
// current generation.
//
// An older generation that is not retired is treated like a retired one: a
// committed operation moves every item it does not orphan to the new
// generation, so such a blob without a current one is no leftover but the
// item's only copy (one a --force skipped without retiring its generation,
// before keytree orphaned unreadable values, or a file put back by hand).
// Only a newer generation, which no commit has made current, is garbage
// whatever else exists: an interrupted operation's new files (P6).
func (c *collector) genReferenced(gen, current int, retired []formats.Retired, hasCurrent func() bool) bool {
	if gen == current {
		return true
	}
	if _, ok := formats.RetiredGeneration(retired, gen); ok || gen < current {
		return !hasCurrent()
	}
	return false
}

func exists(p string) bool { // for paths outside the keystore, and tests
	_, err := os.Lstat(p)
	return err == nil
}
