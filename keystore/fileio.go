package keystore

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/keytree-dev/keytree/formats"
)

// Every change keytree makes to the disk goes through the functions in this
// file, and each of them calls step before it acts. Tests set faultHook to
// stop an operation at any step, as a crash would, and check what the next
// command finds (see crash_test.go). In keytree itself faultHook is nil.
var faultHook func(step, path string) error

func step(kind, path string) error {
	if faultHook == nil {
		return nil
	}
	return faultHook(kind, path)
}

const (
	dirMode  = 0o700
	fileMode = 0o600
)

// files does file I/O in one directory tree. Paths are given whole, as
// ks.path builds them, and appear whole in errors; with a root, each is
// resolved beneath the root's directory handle, so that no path, and no
// symbolic link planted in the tree, can lead outside it (os.Root). The
// zero files has no root and works on the paths as they are: it serves the
// files outside the keystore that the user names (backups, exports) and the
// protector directories.
//
// Inside the keystore keytree also refuses links it would otherwise follow
// within the root: a directory it lists or removes in, and a file it reads,
// must be the real thing, or they are reported as damage. A tampered
// keystore can then damage itself, never anything else (P16).
type files struct {
	root *os.Root
	dir  string // the root's directory, as the user named it
}

// osFiles works on paths as they are, for files outside the keystore.
var osFiles files

// openFiles opens dir as the root of a files.
func openFiles(dir string) (files, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return files{}, err
	}
	return files{root: r, dir: dir}, nil
}

// name turns path into the name the root resolves, relative to its
// directory; without a root it is the path itself.
func (f files) name(path string) (string, error) {
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

func (f files) openFile(path string, flag int, perm fs.FileMode) (*os.File, error) {
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

func (f files) lstat(path string) (fs.FileInfo, error) {
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

// exists reports whether something, a link included, is at path.
func (f files) exists(path string) bool {
	_, err := f.lstat(path)
	return err == nil
}

// realDir checks that dir and every directory between it and the root is a
// directory and not a link to one (nor, on Windows, a junction): the
// directories keytree lists, creates in and removes in must be its own.
func (f files) realDir(dir string) error {
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
			return notOurs(filepath.Join(f.dir, p), fi.Mode(), "a directory")
		}
	}
	return nil
}

// notOurs reports a link, or any other kind of file, where keytree keeps a
// file or directory of its own.
func notOurs(path string, mode fs.FileMode, want string) error {
	what := "not " + want
	switch {
	case mode&fs.ModeSymlink != 0:
		what = "a symbolic link, not " + want
	case mode&fs.ModeIrregular != 0 && runtime.GOOS == "windows":
		what = "a link or junction, not " + want
	}
	ce := &formats.CorruptError{File: path, Reason: "is " + what + "; keytree does not follow links in a keystore"}
	return &Error{Text: ce.Error(), Kind: ErrCorrupt, Err: ce,
		Hint: "someone who can write the keystore put it there: remove it and put back the keystore's own file or directory, or restore the keystore from a backup copy"}
}

// openDir opens a directory of keytree's for listing, refusing links.
func (f files) openDir(dir string) (*os.File, error) {
	if err := f.realDir(dir); err != nil {
		return nil, err
	}
	return f.openFile(dir, os.O_RDONLY, 0)
}

// readDir lists the entries of one of keytree's directories.
func (f files) readDir(dir string) ([]fs.DirEntry, error) {
	d, err := f.openDir(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	entries, err := d.ReadDir(-1)
	// Sorted, as os.ReadDir's are: the crash harness counts steps, and
	// needs them in the same order every run.
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return entries, err
}

// mkdirPrivate creates dir (and missing parents) and makes dir owner-only,
// whatever the umask (on Windows, with a protected DACL: fixDirMode), and
// makes sure an existing dir is a directory.
func (f files) mkdirPrivate(dir string) error {
	if fi, err := f.lstat(dir); err == nil {
		if fi.Mode().Type() == fs.ModeDir {
			return f.realDir(dir)
		}
		if f.root != nil {
			return notOurs(dir, fi.Mode(), "a directory")
		}
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			return nil
		}
		return fmt.Errorf("%s is not a directory", dir)
	}
	if err := step("mkdir", dir); err != nil {
		return err
	}
	n, err := f.name(dir)
	if err != nil {
		return err
	}
	if f.root == nil {
		if err := os.MkdirAll(n, dirMode); err != nil {
			return err
		}
	} else if err := f.root.MkdirAll(n, dirMode); err != nil {
		return pathErr(dir, err)
	}
	return f.fixDirMode(dir)
}

// createFile creates path exclusively, owner-only from the first byte, and
// writes data. With sync it also makes the contents durable; bulk operations
// pass false and make a whole batch durable at once (syncBatch).
func (f files) createFile(path string, data []byte, sync bool) (err error) {
	if err := step("create", path); err != nil {
		return err
	}
	h, err := f.openFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fileMode)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := h.Close(); err == nil {
			err = cerr
		}
	}()
	if err := fixMode(h); err != nil {
		return err
	}
	if err := step("write", path); err != nil {
		return err
	}
	if _, err := h.Write(data); err != nil {
		return err
	}
	if sync {
		if err := step("sync", path); err != nil {
			return err
		}
		return h.Sync()
	}
	return nil
}

// createFileAtomic creates path with data, refusing to replace an existing
// file (os.ErrExist). The file appears whole or not at all: it is written to
// a temporary name in the same directory and linked into place. It is used
// for files outside the keystore: protector secrets, backups and exports.
func (f files) createFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp := filepath.Join(dir, formats.TempPrefix+randomName())
	if err := f.createFile(tmp, data, true); err != nil {
		f.removeQuietly(tmp)
		return err
	}
	err := f.renameNoReplace(tmp, path)
	f.removeQuietly(tmp)
	if err != nil {
		return err
	}
	return f.syncDir(dir)
}

// replaceFile replaces path with data through a temporary file in tmpDir,
// which must be on the same file system: written, synced, renamed over
// path, and path's directory synced. A reader sees the old file or the new
// one, whole.
func (f files) replaceFile(tmpDir, path string, data []byte) error {
	tmp := filepath.Join(tmpDir, formats.TempPrefix+randomName())
	if err := f.createFile(tmp, data, true); err != nil {
		f.removeQuietly(tmp)
		return err
	}
	if err := f.renameReplace(tmp, path); err != nil {
		f.removeQuietly(tmp)
		return err
	}
	return f.syncDir(filepath.Dir(path))
}

// removeFile removes path (a link itself, never what it points to); a file
// already gone is not an error.
func (f files) removeFile(path string) error {
	if err := step("remove", path); err != nil {
		return err
	}
	if err := f.remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func (f files) removeQuietly(path string) {
	if faultHook != nil && faultHook("remove", path) != nil {
		return
	}
	_ = f.remove(path)
}

// removeDir removes an empty directory; one already gone is fine.
func (f files) removeDir(dir string) error {
	if err := step("rmdir", dir); err != nil {
		return err
	}
	if err := f.remove(dir); err != nil && !notExist(err) {
		return err
	}
	return nil
}

// removeTree removes a directory and everything in it, entry by entry. It
// descends only into real directories: a link in the tree is removed as a
// link, and a link where the tree itself should be is refused.
func (f files) removeTree(dir string) error {
	entries, err := f.readDir(dir)
	if notExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if e.Type() == fs.ModeDir {
			err = f.removeTree(p)
		} else {
			err = f.removeFile(p)
		}
		if err != nil {
			return err
		}
	}
	return f.removeDir(dir)
}

func (f files) syncDir(dir string) error {
	if err := step("syncdir", dir); err != nil {
		return err
	}
	if !dirSyncNeeded {
		return nil
	}
	d, err := f.openFile(dir, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer d.Close()
	return syncDirFile(d)
}

// readFile reads a file keytree trusts no more than any other input: it must
// be a regular file (inside the keystore, not a link to one), no larger than
// max, and readable by its owner only (on Windows, by its DACL). It is
// opened without blocking, so a FIFO planted where a file belongs is refused
// rather than waited on.
func (f files) readFile(path string, max int64) ([]byte, error) {
	if err := step("read", path); err != nil {
		return nil, err
	}
	if f.root != nil {
		fi, err := f.lstat(path)
		if err != nil && !notExist(err) {
			// A link on the way, out of the keystore or not, is damage.
			if lerr := f.realDir(filepath.Dir(path)); lerr != nil {
				return nil, lerr
			}
		}
		if err != nil {
			return nil, err
		}
		if !fi.Mode().IsRegular() {
			return nil, notOurs(path, fi.Mode(), "a regular file")
		}
	}
	h, err := f.openFile(path, os.O_RDONLY|nonBlock, 0)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	fi, err := h.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &formats.CorruptError{File: path, Reason: "not a regular file"}
	}
	if err := checkPrivate(path, h, fi); err != nil {
		return nil, err
	}
	if fi.Size() > max {
		return nil, &formats.CorruptError{File: path, Reason: fmt.Sprintf("file is larger than %d bytes", max)}
	}
	data, err := io.ReadAll(io.LimitReader(h, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, &formats.CorruptError{File: path, Reason: fmt.Sprintf("file is larger than %d bytes", max)}
	}
	return data, nil
}

// checkPrivateDir refuses a directory that others can read or enter.
func (f files) checkPrivateDir(path string) error {
	var fi fs.FileInfo
	var err error
	if f.root == nil {
		fi, err = os.Stat(path)
	} else {
		fi, err = f.lstat(path)
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", path)
	}
	return checkPrivate(path, nil, fi)
}

// writeFileAtomic replaces path, a file of the keystore, with data through
// the keystore's tmp directory. A crash leaves at most a file in tmp/, which
// the next writer removes.
func (ks *Keystore) writeFileAtomic(path string, data []byte) error {
	return ks.files.replaceFile(ks.path(tmpDir), path, data)
}

func randomName() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func shellQuote(s string) string {
	if runtime.GOOS == "windows" {
		return `"` + s + `"`
	}
	if strings.ContainsAny(s, " '\"$`\\!*?[]{}()<>|&;#~") {
		return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	return s
}

// filesFor picks the files that path belongs to: the keystore's, confined
// to it, or, for a path outside it (a protector's secret), the plain one.
func filesFor(ks *Keystore, path string) files {
	if within(path, ks.dir) {
		return ks.files
	}
	return osFiles
}
