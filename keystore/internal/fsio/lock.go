package fsio

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// errReadOnlyFS: the lock file does not exist and cannot be created, because
// the tree is on a read-only file system.
var errReadOnlyFS = errors.New("read-only file system")

// LockMode is how a Lock is held.
type LockMode int

const (
	Shared LockMode = iota + 1
	Exclusive
)

func (m LockMode) String() string {
	if m == Exclusive {
		return "exclusive"
	}
	return "shared"
}

// Lock is a lock on a lock file: exclusive for writers, shared for readers.
// The lock file is created once and never deleted, so two processes can
// never lock two different files of the same name.
type Lock struct {
	f *os.File
}

// Lock takes the lock on the file at path, waiting up to timeout for other
// processes to release it (then a LockTimeoutError).
func (f FS) Lock(path string, mode LockMode, timeout time.Duration) (*Lock, error) {
	h, err := f.openLockFile(path, mode)
	if errors.Is(err, errReadOnlyFS) {
		// Nobody can change a tree on a read-only file system (a mounted
		// backup, a read-only bind mount): readers need no lock.
		return &Lock{}, nil
	}
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(timeout)
	wait := 5 * time.Millisecond
	for {
		ok, err := tryLock(h, mode)
		if err != nil {
			h.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if ok {
			return &Lock{f: h}, nil
		}
		if time.Now().After(deadline) {
			h.Close()
			return nil, f.report(&LockTimeoutError{Path: path, Mode: mode, Timeout: timeout})
		}
		time.Sleep(wait)
		if wait < 100*time.Millisecond {
			wait *= 2
		}
	}
}

// IsAt reports whether the file l locks is still the one at path in f: a
// lock file removed (and perhaps made again) between its opening and its
// locking is not, and locks nothing anyone else will look at.
func (l *Lock) IsAt(f FS, path string) bool {
	if l.f == nil {
		return false
	}
	held, err := l.f.Stat()
	if err != nil {
		return false
	}
	at, err := f.Lstat(path)
	return err == nil && os.SameFile(held, at)
}

// openLockFile opens the lock file, creating it if need be. A reader opens
// it read-only, so that reading works where the tree cannot be written.
// The file must be a regular file with one link, not a link to another
// file: keytree changes its mode, and a hard link planted by someone who can
// write the keystore would have keytree, run as root, change the mode of a
// file of that person's choosing.
func (f FS) openLockFile(path string, mode LockMode) (*os.File, error) {
	if fi, err := f.Lstat(path); err == nil && !fi.Mode().IsRegular() {
		return nil, f.NotOurs(path, fi.Mode(), "a regular file")
	}
	var h *os.File
	var err error
	if mode == Shared {
		h, err = f.OpenFile(path, os.O_RDONLY|NoFollow|NonBlock, 0)
	}
	if mode == Exclusive || errors.Is(err, os.ErrNotExist) {
		h, err = f.OpenFile(path, os.O_RDWR|os.O_CREATE|NoFollow|NonBlock, FilePerm)
		if err != nil && mode == Shared && isReadOnlyFS(err) {
			return nil, errReadOnlyFS
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := f.CheckOwnFile(path, h); err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

// Release releases the lock; a nil Lock, or one released, is fine.
func (l *Lock) Release() {
	if l == nil || l.f == nil {
		return
	}
	unlock(l.f)
	l.f.Close()
	l.f = nil
}
