package keystore

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/keytree-dev/keytree/formats"
)

// errReadOnlyFS: the lock file does not exist and cannot be created, because
// the keystore is on a read-only file system.
var errReadOnlyFS = errors.New("read-only file system")

type lockMode int

const (
	lockShared lockMode = iota + 1
	lockExclusive
)

func (m lockMode) String() string {
	if m == lockExclusive {
		return "exclusive"
	}
	return "shared"
}

// DefaultLockTimeout is how long a command waits for another keytree process
// to release the keystore before it gives up.
const DefaultLockTimeout = 10 * time.Second

// fileLock is a lock on the keystore's lock file: exclusive for writers,
// shared for readers. The lock file is created once and never deleted, so
// two processes can never lock two different files of the same name.
type fileLock struct {
	f *os.File
}

func acquireLock(fsys files, path string, mode lockMode, timeout time.Duration) (*fileLock, error) {
	f, err := openLockFile(fsys, path, mode)
	if errors.Is(err, errReadOnlyFS) {
		// Nobody can change a keystore on a read-only file system (a
		// mounted backup, a read-only bind mount): readers need no lock.
		return &fileLock{}, nil
	}
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(timeout)
	wait := 5 * time.Millisecond
	for {
		ok, err := tryLock(f, mode)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if ok {
			return &fileLock{f: f}, nil
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, &Error{
				Text: fmt.Sprintf("another keytree process has held the keystore for more than %s (waiting for the %s lock on %s)", timeout, mode, path),
				Hint: "wait for it to finish and try again, or set KEYTREE_LOCK_TIMEOUT (for example 120, in seconds) to wait longer",
				Kind: ErrLocked,
			}
		}
		time.Sleep(wait)
		if wait < 100*time.Millisecond {
			wait *= 2
		}
	}
}

// openLockFile opens the lock file, creating it if need be. A reader opens
// it read-only, so that reading works where the keystore cannot be written.
// The file must be a regular file with one link, not a link to another
// file: keytree changes its mode, and a hard link planted by someone who can
// write the keystore would have keytree, run as root, change the mode of a
// file of that person's choosing.
func openLockFile(fsys files, path string, mode lockMode) (*os.File, error) {
	if fi, err := fsys.lstat(path); err == nil && !fi.Mode().IsRegular() {
		return nil, notOurs(path, fi.Mode(), "a regular file")
	}
	var f *os.File
	var err error
	if mode == lockShared {
		f, err = fsys.openFile(path, os.O_RDONLY|noFollow|nonBlock, 0)
	}
	if mode == lockExclusive || notExist(err) {
		f, err = fsys.openFile(path, os.O_RDWR|os.O_CREATE|noFollow|nonBlock, fileMode)
		if err != nil && mode == lockShared && isReadOnlyFS(err) {
			return nil, errReadOnlyFS
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := checkOwnFile(path, f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// checkOwnFile checks a file keytree is about to change in place (the lock,
// the error log): a regular file, with one link, and, where it is not
// owner-only yet, owned by the account running keytree, which then makes it
// owner-only whatever the umask was.
func checkOwnFile(path string, f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return notOurs(path, fi.Mode(), "a regular file")
	}
	if linkCount(fi) != 1 {
		return &formats.CorruptError{File: path, Reason: fmt.Sprintf("has %d hard links; keytree's own files have one", linkCount(fi))}
	}
	return fixOwnFile(path, f, fi)
}

func (l *fileLock) release() {
	if l == nil || l.f == nil {
		return
	}
	unlock(l.f)
	l.f.Close()
	l.f = nil
}
