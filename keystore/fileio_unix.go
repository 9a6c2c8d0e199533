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

func renameReplace(from, to string) error {
	if err := step("rename", to); err != nil {
		return err
	}
	return os.Rename(from, to)
}

// renameNoReplace moves from to to unless to exists. link(2) fails with
// EEXIST rather than replace, which makes the creation atomic and exclusive.
func renameNoReplace(from, to string) error {
	if err := step("rename", to); err != nil {
		return err
	}
	if err := os.Link(from, to); err != nil {
		var le *os.LinkError
		if errors.As(err, &le) && errors.Is(le.Err, fs.ErrExist) {
			return fs.ErrExist
		}
		return err
	}
	return nil
}

func syncDirOS(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, unix.EINVAL) {
		return err
	}
	return nil
}

// renameDir moves a directory to a name that does not exist yet.
func renameDir(from, to string) error {
	if err := step("rename", to); err != nil {
		return err
	}
	if exists(to) {
		return fs.ErrExist
	}
	return os.Rename(from, to)
}
