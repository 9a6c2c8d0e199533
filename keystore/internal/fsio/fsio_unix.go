//go:build !windows

package fsio

import (
	"errors"
	"io/fs"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// NoFollow makes open(2) refuse a symbolic link as the last component: the
// files keytree appends to or changes the mode of (the lock, the error log)
// must not be a link that someone who can write the keystore pointed at a
// file of their choosing, which keytree run as another user (root) would
// then write to.
const NoFollow = unix.O_NOFOLLOW

// NonBlock opens a file without waiting: a FIFO planted where keytree
// expects a file would otherwise block open(2) until a writer appears.
const NonBlock = unix.O_NONBLOCK

// dirSyncNeeded: a new or renamed directory entry is durable only once its
// directory is synced.
const dirSyncNeeded = true

// FixMode sets a new file's mode to 0600 whatever the umask was.
func FixMode(f *os.File) error { return f.Chmod(FilePerm) }

// fixDirMode sets a directory's mode to 0700: MkdirAll applies the umask;
// a umask can only take bits away, but one that takes the owner's away would
// lock keytree out of its own keystore.
func (f FS) fixDirMode(dir string) error {
	n, err := f.name(dir)
	if err != nil {
		return err
	}
	if f.root == nil {
		return os.Chmod(n, DirPerm)
	}
	return pathErr(dir, f.root.Chmod(n, DirPerm))
}

// CheckPrivate refuses a file or directory that group or others can use,
// as OpenSSH refuses a private key that others can read. The mode is fi's;
// the open file, if any, is not needed.
func (f FS) CheckPrivate(path string, _ *os.File, fi fs.FileInfo) error {
	if fi.Mode().Perm()&0o077 != 0 {
		return f.exposed(path, fi.Mode())
	}
	return nil
}

// exposed reports a file or directory that group or others can use.
func (f FS) exposed(path string, mode fs.FileMode) error {
	fix := "chmod 600 "
	if mode.IsDir() {
		fix = "chmod 700 "
	}
	return f.report(&ExposedError{Path: path, Mode: mode, Fix: fix + shellQuote(path)})
}

// fixOwnFile makes a file keytree changes in place (the lock, the error log)
// 0600 if it is not, when it belongs to the account running keytree; another
// account's file that others can use is refused.
func (f FS) fixOwnFile(path string, h *os.File, fi fs.FileInfo) error {
	if fi.Mode().Perm() != FilePerm {
		if uid, ok := FileOwner(fi); ok && uid != os.Geteuid() {
			return f.exposed(path, fi.Mode())
		}
		_ = FixMode(h) // best effort: the file is ours, and checked on every read
	}
	return nil
}

// RenameReplace moves from to to, replacing a file there.
func (f FS) RenameReplace(from, to string) error {
	if err := f.Step("rename", to); err != nil {
		return err
	}
	return f.rename(from, to)
}

// RenameNoReplace moves from to to unless to exists. link(2) fails with
// EEXIST rather than replace, which makes the creation atomic and exclusive.
func (f FS) RenameNoReplace(from, to string) error {
	if err := f.Step("rename", to); err != nil {
		return err
	}
	var err error
	if f.root == nil {
		err = os.Link(from, to)
	} else {
		err = f.inRoot(from, to, f.root.Link)
	}
	if errors.Is(err, fs.ErrExist) {
		return fs.ErrExist
	}
	return err
}

// RenameDir moves a directory to a name that does not exist yet.
func (f FS) RenameDir(from, to string) error {
	if err := f.Step("rename", to); err != nil {
		return err
	}
	if f.Exists(to) {
		return fs.ErrExist
	}
	return f.rename(from, to)
}

func syncDirFile(d *os.File) error {
	if err := d.Sync(); err != nil && !errors.Is(err, unix.EINVAL) {
		return err
	}
	return nil
}

func (f FS) remove(path string) error {
	n, err := f.name(path)
	if err != nil {
		return err
	}
	if f.root == nil {
		return os.Remove(n)
	}
	return pathErr(path, f.root.Remove(n))
}

// rename moves from to to, replacing a file there.
func (f FS) rename(from, to string) error {
	if f.root == nil {
		return os.Rename(from, to)
	}
	return f.inRoot(from, to, f.root.Rename)
}

// inRoot runs a two-name operation of the root on the names of from and to.
func (f FS) inRoot(from, to string, op func(a, b string) error) error {
	a, err := f.name(from)
	if err != nil {
		return err
	}
	b, err := f.name(to)
	if err != nil {
		return err
	}
	return pathErr(to, op(a, b))
}

// ReplaceEmptyDir renames the directory from to to, a path outside the
// keystore, replacing an empty directory there: rename(2) does, and fails
// with ENOTEMPTY or EEXIST on one that is not empty, so nothing in it is
// ever lost. (os.Rename refuses any existing directory, to behave as on
// Windows.)
func (f FS) ReplaceEmptyDir(from, to string) error {
	if err := f.Step("rename", to); err != nil {
		return err
	}
	if f.root != nil {
		return errors.New("replaceEmptyDir works outside the keystore only")
	}
	if err := unix.Rename(from, to); err != nil {
		if errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST) {
			return fs.ErrExist
		}
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	return nil
}

// FileOwner is the uid of a file's owner.
func FileOwner(fi fs.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}

// LinkCount is the number of hard links to a file.
func LinkCount(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 1
}
