//go:build !windows

package keystore

import (
	"errors"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// noFollow makes open(2) refuse a symbolic link as the last component: the
// files keytree appends to or changes the mode of (the lock, the error log)
// must not be a link that someone who can write the keystore pointed at a
// file of their choosing, which keytree run as another user (root) would
// then write to.
const noFollow = unix.O_NOFOLLOW

// nonBlock opens a file without waiting: a FIFO planted where keytree
// expects a file would otherwise block open(2) until a writer appears.
const nonBlock = unix.O_NONBLOCK

// dirSyncNeeded: a new or renamed directory entry is durable only once its
// directory is synced.
const dirSyncNeeded = true

// fixMode sets a new file's mode to 0600 whatever the umask was.
func fixMode(f *os.File) error { return f.Chmod(fileMode) }

// checkPrivate refuses a file or directory that group or others can use, as
// OpenSSH refuses a private key that others can read.
func checkPrivate(path string, fi fs.FileInfo) error {
	if fi.Mode().Perm()&0o077 != 0 {
		return permissionError(path, fi.Mode())
	}
	return nil
}

func (f files) renameReplace(from, to string) error {
	if err := step("rename", to); err != nil {
		return err
	}
	if f.root == nil {
		return os.Rename(from, to)
	}
	a, err := f.name(from)
	if err != nil {
		return err
	}
	b, err := f.name(to)
	if err != nil {
		return err
	}
	return pathErr(to, f.root.Rename(a, b))
}

// renameNoReplace moves from to to unless to exists. link(2) fails with
// EEXIST rather than replace, which makes the creation atomic and exclusive.
func (f files) renameNoReplace(from, to string) error {
	if err := step("rename", to); err != nil {
		return err
	}
	var err error
	if f.root == nil {
		err = os.Link(from, to)
	} else {
		a, nerr := f.name(from)
		if nerr != nil {
			return nerr
		}
		b, nerr := f.name(to)
		if nerr != nil {
			return nerr
		}
		err = f.root.Link(a, b)
	}
	if errors.Is(err, fs.ErrExist) {
		return fs.ErrExist
	}
	return err
}

// renameDir moves a directory to a name that does not exist yet.
func (f files) renameDir(from, to string) error {
	if err := step("rename", to); err != nil {
		return err
	}
	if f.exists(to) {
		return fs.ErrExist
	}
	if f.root == nil {
		return os.Rename(from, to)
	}
	a, err := f.name(from)
	if err != nil {
		return err
	}
	b, err := f.name(to)
	if err != nil {
		return err
	}
	return pathErr(to, f.root.Rename(a, b))
}

func syncDirFile(d *os.File) error {
	if err := d.Sync(); err != nil && !errors.Is(err, unix.EINVAL) {
		return err
	}
	return nil
}
