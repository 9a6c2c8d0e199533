// Package fsio is keytree's file layer: every read, write, rename and
// removal keytree makes, confined to one directory tree with os.Root, with
// owner-only files from the first byte, durable renames and batches, the
// keystore's lock, and the fault hook through which the crash tests stop an
// operation at any step.
//
// It knows nothing of keytree's keys, files or messages and imports nothing
// of keytree: what it finds wrong on disk it returns as the typed errors of
// errors.go, which its user may turn into its own (Options.Report).
package fsio

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

const (
	// DirPerm and FilePerm are the modes of what keytree creates on Unix.
	DirPerm  = 0o700
	FilePerm = 0o600
)

// TempPrefix begins the name of every temporary file this package writes.
const TempPrefix = ".tmp-"

// Fault is called before each step that changes the disk (and before each
// read), with the step's kind ("create", "write", "sync", "rename",
// "remove", "mkdir", "rmdir", "syncdir", "syncfs", "read") and its path. An
// error stops the step as a crash would; the crash tests count and stop
// steps with it. In keytree itself it is nil.
type Fault func(step, path string) error

// Options configure an FS.
type Options struct {
	// Fault, if set, sees every step (see Fault).
	Fault Fault
	// Report, if set, is given every error of errors.go the FS finds, and
	// the FS returns what it returns: the user's own error for it.
	Report func(error) error
}

// FS does file I/O in one directory tree. Paths are given whole and appear
// whole in errors; with a root, each is resolved beneath the root's
// directory handle, so that no path, and no symbolic link planted in the
// tree, can lead outside it (os.Root). An FS without a root (Plain) works on
// the paths as they are: it serves the files outside the keystore that the
// user names (backups, exports) and the protector directories.
//
// Inside the root it also refuses links it would otherwise follow within
// the root: a directory it lists or removes in, and a file it reads, must be
// the real thing, or they are reported as a NotOursError. A tampered tree can
// then damage itself, never anything else.
type FS struct {
	root *os.Root
	dir  string // the root's directory, as the user named it
	o    Options
	view *view
}

// A view is a handle of one directory below the root, through which an FS
// made by View opens and describes that directory's files: one system
// call each instead of one for every directory on the way.
type view struct {
	dir  string
	root *os.Root
}

// View returns f with its opens and lstats of files directly in dir made
// through a handle of dir, which must be a real directory below the root
// (realDir); everything else goes through f as before. Close releases the
// handle (and not f's root). It is meant for reads: a directory renamed
// away while a view holds it would be read where it went.
func (f FS) View(dir string) (FS, error) {
	if f.root == nil {
		return f, nil
	}
	if err := f.realDir(dir); err != nil {
		return FS{}, err
	}
	n, err := f.name(dir)
	if err != nil {
		return FS{}, err
	}
	r, err := f.root.OpenRoot(n)
	if err != nil {
		return FS{}, pathErr(dir, err)
	}
	f.view = &view{dir: dir, root: r}
	return f, nil
}

// CloseView releases a View's handle.
func (f FS) CloseView() error {
	if f.view == nil {
		return nil
	}
	return f.view.root.Close()
}

// viewed is the view's root and the name in it for a path directly in the
// view's directory, if f has a view and path is there.
func (f FS) viewed(path string) (*os.Root, string, bool) {
	if f.view == nil || filepath.Dir(path) != f.view.dir {
		return nil, "", false
	}
	name := filepath.Base(path)
	if name == "." || name == ".." || name == string(filepath.Separator) {
		return nil, "", false
	}
	return f.view.root, name, true
}

// Plain returns an FS without a root.
func Plain(o Options) FS { return FS{o: o} }

// Open opens dir as the root of an FS.
func Open(dir string, o Options) (FS, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return FS{}, err
	}
	return FS{root: r, dir: dir, o: o}, nil
}

// Close releases the root's directory handle.
func (f FS) Close() error {
	if f.root == nil {
		return nil
	}
	return f.root.Close()
}

// Dir is the root's directory, or "" without a root.
func (f FS) Dir() string { return f.dir }

// WithFault returns f with fault as its hook.
func (f FS) WithFault(fault Fault) FS {
	f.o.Fault = fault
	return f
}

// Step runs the fault hook for a step the caller takes itself.
func (f FS) Step(kind, path string) error {
	if f.o.Fault == nil {
		return nil
	}
	return f.o.Fault(kind, path)
}

// report passes an error of errors.go to Options.Report.
func (f FS) report(err error) error {
	if f.o.Report == nil {
		return err
	}
	return f.o.Report(err)
}

// name turns path into the name the root resolves, relative to its
// directory; without a root it is the path itself.
func (f FS) name(path string) (string, error) {
	if f.root == nil {
		return path, nil
	}
	rel, err := filepath.Rel(f.dir, path)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return "", &fs.PathError{Op: "open", Path: path, Err: errors.New("outside the keystore")}
	}
	return rel, nil
}

// pathErr puts the whole path back into an error from the root, which
// names files by their relative name.
func pathErr(path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return &fs.PathError{Op: pe.Op, Path: path, Err: pe.Err}
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return &fs.PathError{Op: le.Op, Path: path, Err: le.Err}
	}
	return err
}

// OpenFile opens path as os.OpenFile does, within the root.
func (f FS) OpenFile(path string, flag int, perm fs.FileMode) (*os.File, error) {
	if r, n, ok := f.viewed(path); ok {
		h, err := r.OpenFile(n, flag, perm)
		return h, pathErr(path, err)
	}
	n, err := f.name(path)
	if err != nil {
		return nil, err
	}
	if f.root == nil {
		return os.OpenFile(n, flag, perm)
	}
	h, err := f.root.OpenFile(n, flag, perm)
	return h, pathErr(path, err)
}

// Lstat describes path, or the link at path, without following it.
func (f FS) Lstat(path string) (fs.FileInfo, error) {
	if r, n, ok := f.viewed(path); ok {
		fi, err := r.Lstat(n)
		return fi, pathErr(path, err)
	}
	n, err := f.name(path)
	if err != nil {
		return nil, err
	}
	if f.root == nil {
		return os.Lstat(n)
	}
	fi, err := f.root.Lstat(n)
	return fi, pathErr(path, err)
}

// Exists reports whether something, a link included, is at path.
func (f FS) Exists(path string) bool {
	_, err := f.Lstat(path)
	return err == nil
}

// realDir checks that dir and every directory between it and the root is a
// directory and not a link to one (nor, on Windows, a junction): the
// directories keytree lists, creates in and removes in must be its own.
func (f FS) realDir(dir string) error {
	if f.root == nil {
		return nil
	}
	n, err := f.name(dir)
	if err != nil || n == "." {
		return err
	}
	elems := strings.Split(n, string(filepath.Separator))
	for i := range elems {
		p := filepath.Join(elems[:i+1]...)
		fi, err := f.root.Lstat(p)
		if err != nil {
			return pathErr(filepath.Join(f.dir, p), err)
		}
		if fi.Mode().Type() != fs.ModeDir {
			return f.NotOurs(filepath.Join(f.dir, p), fi.Mode(), "a directory")
		}
	}
	return nil
}

// NotOurs reports a link, or any other kind of file, where keytree keeps a
// file or directory of its own.
func (f FS) NotOurs(path string, mode fs.FileMode, want string) error {
	return f.report(&NotOursError{Path: path, Mode: mode, Want: want})
}

// OpenDir opens a directory of keytree's for listing, refusing links.
func (f FS) OpenDir(dir string) (*os.File, error) {
	if err := f.realDir(dir); err != nil {
		return nil, err
	}
	return f.OpenFile(dir, os.O_RDONLY, 0)
}

// ReadDir lists the entries of one of keytree's directories, sorted by
// name: the crash tests count steps, and need them in the same order every
// run.
func (f FS) ReadDir(dir string) ([]fs.DirEntry, error) {
	d, err := f.OpenDir(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	entries, err := d.ReadDir(-1)
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return entries, err
}

// MkdirPrivate creates dir (and missing parents) and makes dir owner-only,
// whatever the umask (on Windows, with a protected DACL: fixDirMode), and
// makes sure an existing dir is a directory.
func (f FS) MkdirPrivate(dir string) error {
	if fi, err := f.Lstat(dir); err == nil {
		if fi.Mode().Type() == fs.ModeDir {
			return f.realDir(dir)
		}
		if f.root != nil {
			return f.NotOurs(dir, fi.Mode(), "a directory")
		}
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			return nil
		}
		return fmt.Errorf("%s is not a directory", dir)
	}
	if err := f.Step("mkdir", dir); err != nil {
		return err
	}
	n, err := f.name(dir)
	if err != nil {
		return err
	}
	if f.root == nil {
		if err := os.MkdirAll(n, DirPerm); err != nil {
			return err
		}
	} else if err := f.root.MkdirAll(n, DirPerm); err != nil {
		return pathErr(dir, err)
	}
	return f.fixDirMode(dir)
}

// CreateFile creates path exclusively, owner-only from the first byte, and
// writes data. With sync it also makes the contents durable; bulk
// operations pass false and make a whole Batch durable at once.
func (f FS) CreateFile(path string, data []byte, sync bool) error {
	return f.createWith(path, sync, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// CreateOver creates path with data, replacing a leftover of the same name
// (a file of an operation that never committed, which the clean-up has not
// removed yet). A leftover is rare, so the file is created exclusively first,
// and only a name already taken is removed and created again: a bulk
// operation makes no removal call per file. The fault hook sees the
// removal's step either way. A link at path is removed, never followed.
func (f FS) CreateOver(path string, data []byte, sync bool) error {
	if err := f.Step("remove", path); err != nil {
		return err
	}
	err := f.CreateFile(path, data, sync)
	if errors.Is(err, fs.ErrExist) {
		if err = f.remove(path); err == nil || errors.Is(err, fs.ErrNotExist) {
			err = f.CreateFile(path, data, sync)
		}
	}
	return err
}

// createWith is CreateFile with the contents written by write.
func (f FS) createWith(path string, sync bool, write func(io.Writer) error) (err error) {
	if err := f.Step("create", path); err != nil {
		return err
	}
	h, err := f.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, FilePerm)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := h.Close(); err == nil {
			err = cerr
		}
	}()
	if err := FixMode(h); err != nil {
		return err
	}
	if err := f.Step("write", path); err != nil {
		return err
	}
	if err := write(h); err != nil {
		return err
	}
	if sync {
		if err := f.Step("sync", path); err != nil {
			return err
		}
		return h.Sync()
	}
	return nil
}

// CreateFileAtomic creates path with data, refusing to replace an existing
// file (fs.ErrExist). The file appears whole or not at all: it is written to
// a temporary name in the same directory and linked into place. It is used
// for files outside the keystore: protector secrets and key backups.
func (f FS) CreateFileAtomic(path string, data []byte) error {
	return f.WriteNew(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteNew is CreateFileAtomic for contents too large to hold in memory
// (archives): write streams them into the temporary file.
func (f FS) WriteNew(path string, write func(io.Writer) error) error {
	if f.Exists(path) {
		return fs.ErrExist
	}
	dir := filepath.Dir(path)
	tmp := filepath.Join(dir, TempPrefix+RandomName())
	if err := f.createWith(tmp, true, write); err != nil {
		f.RemoveQuietly(tmp)
		return err
	}
	err := f.RenameNoReplace(tmp, path)
	f.RemoveQuietly(tmp)
	if err != nil {
		return err
	}
	return f.SyncDir(dir)
}

// ReplaceFile replaces path with data through a temporary file in tmpDir,
// which must be on the same file system: written, synced, renamed over
// path, and path's directory synced. A reader sees the old file or the new
// one, whole.
func (f FS) ReplaceFile(tmpDir, path string, data []byte) error {
	tmp := filepath.Join(tmpDir, TempPrefix+RandomName())
	if err := f.CreateFile(tmp, data, true); err != nil {
		f.RemoveQuietly(tmp)
		return err
	}
	if err := f.RenameReplace(tmp, path); err != nil {
		f.RemoveQuietly(tmp)
		return err
	}
	return f.SyncDir(filepath.Dir(path))
}

// RemoveFile removes path (a link itself, never what it points to); a file
// already gone is not an error.
func (f FS) RemoveFile(path string) error {
	if err := f.Step("remove", path); err != nil {
		return err
	}
	if err := f.remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// RemoveQuietly removes path if it can, as clean-up after a failure.
func (f FS) RemoveQuietly(path string) {
	if f.Step("remove", path) != nil {
		return
	}
	_ = f.remove(path)
}

// RemoveDir removes an empty directory; one already gone is fine.
func (f FS) RemoveDir(dir string) error {
	if err := f.Step("rmdir", dir); err != nil {
		return err
	}
	if err := f.remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// RemoveTree removes a directory and everything in it, entry by entry. It
// descends only into real directories: a link in the tree is removed as a
// link, and a link where the tree itself should be is refused.
func (f FS) RemoveTree(dir string) error {
	entries, err := f.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if e.Type() == fs.ModeDir {
			err = f.RemoveTree(p)
		} else {
			err = f.RemoveFile(p)
		}
		if err != nil {
			return err
		}
	}
	return f.RemoveDir(dir)
}

// SyncDir makes the entries of dir durable, where the system needs that.
func (f FS) SyncDir(dir string) error {
	if err := f.Step("syncdir", dir); err != nil {
		return err
	}
	if !dirSyncNeeded {
		return nil
	}
	d, err := f.OpenFile(dir, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer d.Close()
	return syncDirFile(d)
}

// SyncTree makes every file below dir durable, each through a handle of its
// own. It lists through f, so a link put in place of a directory is
// refused, not followed.
func (f FS) SyncTree(dir string) error {
	entries, err := f.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if e.Type() == fs.ModeDir {
			if err := f.SyncTree(p); err != nil {
				return err
			}
			continue
		}
		if err := f.Step("sync", p); err != nil {
			return err
		}
		// Windows flushes only a handle open for writing.
		h, err := f.OpenFile(p, os.O_RDWR|NoFollow, 0)
		if err != nil {
			return err
		}
		err = h.Sync()
		h.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// ReadFile reads a file keytree trusts no more than any other input: it must
// be a regular file (inside the root, not a link to one), no larger than
// max, and readable by its owner only (on Windows, by its DACL). It is
// opened without blocking, so a FIFO planted where a file belongs is refused
// rather than waited on.
func (f FS) ReadFile(path string, max int64) ([]byte, error) {
	if err := f.Step("read", path); err != nil {
		return nil, err
	}
	if f.root != nil {
		fi, err := f.Lstat(path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			// A link on the way, out of the keystore or not, is damage.
			if lerr := f.realDir(filepath.Dir(path)); lerr != nil {
				return nil, lerr
			}
		}
		if err != nil {
			return nil, err
		}
		if !fi.Mode().IsRegular() {
			return nil, f.NotOurs(path, fi.Mode(), "a regular file")
		}
	}
	h, err := f.OpenFile(path, os.O_RDONLY|NonBlock, 0)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	fi, err := h.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, f.report(&BadFileError{Path: path, Reason: "not a regular file"})
	}
	if err := f.CheckPrivate(path, h, fi); err != nil {
		return nil, err
	}
	if fi.Size() > max {
		return nil, f.report(tooLarge(path, max))
	}
	data, err := io.ReadAll(io.LimitReader(h, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, f.report(tooLarge(path, max))
	}
	return data, nil
}

// CheckPrivateDir refuses a directory that others can read or enter.
func (f FS) CheckPrivateDir(path string) error {
	var fi fs.FileInfo
	var err error
	if f.root == nil {
		fi, err = os.Stat(path)
	} else {
		fi, err = f.Lstat(path)
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", path)
	}
	return f.CheckPrivate(path, nil, fi)
}

// CheckOwnFile checks a file keytree is about to change in place (the lock,
// the error log): a regular file, with one link, and, where it is not
// owner-only yet, owned by the account running keytree, which then makes it
// owner-only whatever the umask was.
func (f FS) CheckOwnFile(path string, h *os.File) error {
	fi, err := h.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return f.NotOurs(path, fi.Mode(), "a regular file")
	}
	if n := LinkCount(fi); n != 1 {
		return f.report(&BadFileError{Path: path, Reason: fmt.Sprintf("has %d hard links; keytree's own files have one", n)})
	}
	return f.fixOwnFile(path, h, fi)
}

// RandomName is a random name for a temporary file or directory.
func RandomName() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Fault is the FS's fault hook, for another FS that is to share it.
func (f FS) Fault() Fault { return f.o.Fault }
