//go:build windows

package fsio

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/windows"
)

// NoFollow is 0 on Windows, where creating a symbolic link takes a
// privilege of its own.
const NoFollow = 0

// NonBlock is 0 on Windows: a named pipe lives in its own namespace, not
// among a directory's files.
const NonBlock = 0

// dirSyncNeeded is false: NTFS journals directory changes, Windows has no
// call to flush a directory, and MOVEFILE_WRITE_THROUGH flushes a rename.
const dirSyncNeeded = false

// FixMode gives a new file keytree's protected, owner-only DACL
// (acl_windows.go) before a byte is written.
func FixMode(f *os.File) error { return setPrivate(f, false) }

// fixDirMode gives a directory keytree created its protected, owner-only
// DACL, which what is created in it inherits.
func (f FS) fixDirMode(dir string) error {
	d, err := f.OpenFile(dir, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer d.Close()
	return setPrivate(d, true)
}

// RenameReplace replaces to with from through MoveFileEx, retrying for a
// while when another process (an antivirus, an indexer, a keytree reader)
// has the target open. MoveFileEx takes whole paths: both are first checked
// to resolve inside the root, and the directories keytree renames in are
// refused if they are links or junctions.
func (f FS) RenameReplace(from, to string) error {
	if err := f.Step("rename", to); err != nil {
		return err
	}
	if err := f.checkRename(from, to); err != nil {
		return err
	}
	return moveFile(from, to, windows.MOVEFILE_REPLACE_EXISTING|windows.MOVEFILE_WRITE_THROUGH)
}

// RenameNoReplace moves from to to unless to exists: MoveFileEx without
// MOVEFILE_REPLACE_EXISTING fails rather than replace.
func (f FS) RenameNoReplace(from, to string) error {
	if err := f.Step("rename", to); err != nil {
		return err
	}
	if err := f.checkRename(from, to); err != nil {
		return err
	}
	err := moveFile(from, to, windows.MOVEFILE_WRITE_THROUGH)
	if errors.Is(err, windows.ERROR_ALREADY_EXISTS) || errors.Is(err, windows.ERROR_FILE_EXISTS) {
		return fs.ErrExist
	}
	return err
}

// RenameDir moves a directory to a name that does not exist yet.
func (f FS) RenameDir(from, to string) error {
	if err := f.Step("rename", to); err != nil {
		return err
	}
	if err := f.checkRename(from, to); err != nil {
		return err
	}
	return moveFile(from, to, 0)
}

func (f FS) checkRename(from, to string) error {
	for _, p := range []string{from, to} {
		if _, err := f.name(p); err != nil {
			return err
		}
		if err := f.realDir(filepath.Dir(p)); err != nil {
			return err
		}
	}
	return nil
}

func moveFile(from, to string, flags uint32) error {
	f, err := windows.UTF16PtrFromString(from)
	if err != nil {
		return err
	}
	t, err := windows.UTF16PtrFromString(to)
	if err != nil {
		return err
	}
	for i := 0; ; i++ {
		err = windows.MoveFileEx(f, t, flags)
		if err == nil || i == 50 || !(errors.Is(err, windows.ERROR_ACCESS_DENIED) || errors.Is(err, windows.ERROR_SHARING_VIOLATION)) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	return nil
}

func syncDirFile(*os.File) error { return nil }

// remove deletes path by its whole name, as the renames do: Wine, which
// keytree's Windows tests run on, does not implement the handle-relative
// delete os.Root uses. The path is first checked to resolve inside the root,
// through directories that are no links or junctions; DeleteFile removes a
// link itself, never its target.
func (f FS) remove(path string) error {
	if f.root != nil {
		if _, err := f.name(path); err != nil {
			return err
		}
		if err := f.realDir(filepath.Dir(path)); err != nil {
			return err
		}
	}
	return os.Remove(path)
}

// ReplaceEmptyDir renames the directory from to to, replacing an empty
// directory there. MoveFileEx replaces no directory, so the empty one is
// removed first; that fails on one that is not empty, so nothing in it is
// ever lost.
func (f FS) ReplaceEmptyDir(from, to string) error {
	if err := f.RemoveDir(to); err != nil {
		if _, serr := os.Lstat(to); serr == nil {
			return fs.ErrExist
		}
		return err
	}
	return f.RenameDir(from, to)
}

// FileOwner is a file's owner as a uid: Windows has none (see the keystore's
// owner check).
func FileOwner(fs.FileInfo) (int, bool) { return 0, false }

// LinkCount is 1 on Windows, where os.FileInfo does not carry it.
func LinkCount(fs.FileInfo) uint64 { return 1 }
