package keystore

import (
	"fmt"
	"os"
	"time"
)

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

func acquireLock(path string, mode lockMode, timeout time.Duration) (*fileLock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|noFollow, fileMode)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	// Owner-only whatever the umask, like every file keytree creates.
	if fi, err := f.Stat(); err == nil && fi.Mode().Perm() != fileMode {
		fixMode(f)
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
				Hint: "wait for it to finish and try again, or set KEYTREE_LOCK_TIMEOUT (for example 2m) to wait longer",
				Kind: ErrLocked,
			}
		}
		time.Sleep(wait)
		if wait < 100*time.Millisecond {
			wait *= 2
		}
	}
}

func (l *fileLock) release() {
	if l == nil || l.f == nil {
		return
	}
	unlock(l.f)
	l.f.Close()
	l.f = nil
}
