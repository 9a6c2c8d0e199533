package keystore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/keytree-dev/keytree/keystore/internal/fsio"
)

// Files handed to a program (keytree run --file) live in a run directory:
// a private base directory of keytree's own (RunBase) holds one directory
// per keytree run, named at random, and beside it a lock file of the same
// name that the run holds for as long as it lives:
//
//	<base>/                  0700, the account's own
//	<base>/<name>.lock       held by the run that made <name>
//	<base>/<name>/VAR        0600, a value
//
// The lock file is created and locked before the directory is made, and
// removed only after it: a directory whose lock nobody holds (or that has
// none) belongs to a run that ended without removing it (killed), and the
// next run removes it (CleanRunFiles). Everything under the base goes
// through a rooted FS, so that a link planted there leads nowhere else.

// runLockSuffix ends the name of a run's lock file.
const runLockSuffix = ".lock"

// RunFiles is one run's directory of files.
type RunFiles struct {
	files fsio.FS
	name  string // of the run's directory, in the base
	lock  *fsio.Lock
	paths map[string]bool
}

// openRunBase makes base, the directory that holds runs' directories, if it
// is missing, checks that it is a real directory that only its owner, the
// account running keytree, can use, and opens it as a root.
func openRunBase(base string) (fsio.FS, error) {
	if err := os.Mkdir(base, fsio.DirPerm); err != nil && !errors.Is(err, fs.ErrExist) {
		return fsio.FS{}, err
	}
	fi, err := os.Lstat(base)
	if err != nil {
		return fsio.FS{}, err
	}
	if !fi.IsDir() {
		// A link, even to a directory of the account's own, is refused: it
		// may be changed to lead elsewhere.
		return fsio.FS{}, &Error{
			Text: fmt.Sprintf("%s is not a directory: keytree keeps the files of keytree run there", base),
			Kind: ErrPermissions,
			Hint: "remove it, or set XDG_RUNTIME_DIR (or TMPDIR) to a directory of your own",
		}
	}
	if uid, ok := fsio.FileOwner(fi); ok && uid != os.Geteuid() {
		return fsio.FS{}, &Error{
			Text: fmt.Sprintf("%s belongs to %s, not to %s, which runs keytree: keytree will not put values in it", base, ownerName(uid), ownerName(os.Geteuid())),
			Kind: ErrPermissions,
			Hint: "someone else made it; remove it, or set XDG_RUNTIME_DIR (or TMPDIR) to a directory of your own",
		}
	}
	if err := osFiles.CheckPrivateDir(base); err != nil {
		return fsio.FS{}, err
	}
	return fsio.Open(base, fsio.Options{Report: ioError})
}

// NewRunFiles makes a new run directory in base (made private if missing;
// refused if someone else can use it). The caller writes its files with
// Write and removes it all with Remove.
func NewRunFiles(base string) (*RunFiles, error) {
	f, err := openRunBase(base)
	if err != nil {
		return nil, err
	}
	r := &RunFiles{files: f, paths: map[string]bool{}}
	for range 10 {
		r.name = "run-" + fsio.RandomName()
		lockPath := filepath.Join(base, r.name+runLockSuffix)
		if f.Exists(lockPath) || f.Exists(filepath.Join(base, r.name)) {
			continue
		}
		if r.lock, err = f.Lock(lockPath, fsio.Exclusive, 0); err != nil {
			break
		}
		if !r.lock.IsAt(f, lockPath) {
			// A clean-up took the lock file for a dead run's between its
			// creation and its locking: another name.
			r.lock.Release()
			continue
		}
		if err = f.MkdirPrivate(r.dir()); err == nil {
			return r, nil
		}
		r.releaseLock()
		break
	}
	if err == nil {
		err = errors.New("no free name for a run directory")
	}
	f.Close()
	return nil, err
}

// dir is the run's directory.
func (r *RunFiles) dir() string { return filepath.Join(r.files.Dir(), r.name) }

// Write creates the file name in the run's directory, owner-only from the
// first byte, with data, and returns its path.
func (r *RunFiles) Write(name string, data []byte) (string, error) {
	if name == "" || strings.ContainsAny(name, `/\`) || name == "." || name == ".." || r.paths[name] {
		return "", fmt.Errorf("bad file name for a value: %q", name)
	}
	p := filepath.Join(r.dir(), name)
	if err := r.files.CreateFile(p, data, false); err != nil {
		return "", err
	}
	r.paths[name] = true
	return p, nil
}

// Remove removes the run's directory and everything in it, then its lock.
func (r *RunFiles) Remove() error {
	err := r.files.RemoveTree(r.dir())
	if err == nil {
		r.releaseLock()
	}
	r.files.Close()
	return err
}

func (r *RunFiles) releaseLock() {
	lockPath := filepath.Join(r.files.Dir(), r.name+runLockSuffix)
	r.lock.Release() // first: Windows removes no file that is open
	r.files.RemoveQuietly(lockPath)
}

// CleanRunFiles removes, from base, the directories of runs that ended
// without removing them (a keytree killed while its program ran), and
// returns how many it removed. It takes each run's lock without waiting:
// a run that still holds it is alive and keeps its files. A missing base
// has nothing to clean.
func CleanRunFiles(base string) (int, error) {
	if _, err := os.Lstat(base); errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	f, err := openRunBase(base)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	entries, err := f.ReadDir(base)
	if err != nil {
		return 0, err
	}
	names := map[string]bool{}
	for _, e := range entries {
		names[e.Name()] = true
	}
	removed := 0
	var first error
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, "run-") || strings.HasSuffix(name, runLockSuffix) {
			continue
		}
		// A run makes its lock file before its directory, so a directory
		// listed without one has either lost it or been listed while the
		// listing raced the run: the lock is taken (made if need be)
		// either way, never judged from the listing.
		lockPath := filepath.Join(base, name+runLockSuffix)
		lock, err := f.Lock(lockPath, fsio.Exclusive, 0)
		if err != nil {
			continue // held: that run is alive (or the lock is not ours to judge)
		}
		p := filepath.Join(base, name)
		if e.Type() == fs.ModeDir {
			err = f.RemoveTree(p)
		} else {
			err = f.RemoveFile(p)
		}
		lock.Release() // first: Windows removes no file that is open
		if err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		removed++
		f.RemoveQuietly(lockPath)
	}
	// A lock file whose directory is gone is left by a run killed
	// between the two removals (or before it made its directory). A run
	// that made it a moment ago and has not locked it yet finds it gone
	// once it has (NewRunFiles), and takes another name.
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, "run-") || !strings.HasSuffix(name, runLockSuffix) || names[strings.TrimSuffix(name, runLockSuffix)] {
			continue
		}
		lockPath := filepath.Join(base, name)
		if lock, err := f.Lock(lockPath, fsio.Exclusive, 0); err == nil {
			lock.Release()
			f.RemoveQuietly(lockPath)
		}
	}
	return removed, first
}

// WriteOutputFile writes data to path, a file the user named (keytree
// inject -o), owner-only from the first byte and whole or not at all: it
// is written to a temporary file in path's directory, synced, and renamed
// over whatever file path names, so a reader sees the old file or the new
// one. A link at path is replaced, never followed.
func WriteOutputFile(path string, data []byte) error {
	return osFiles.ReplaceFile(filepath.Dir(path), path, data)
}
