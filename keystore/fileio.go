package keystore

import (
	"errors"
	"fmt"
	"time"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/keystore/internal/fsio"
)

// Every file keytree reads or changes goes through keystore/internal/fsio.
// The keystore's own files go through ks.files, rooted at the keystore's
// directory; the files outside it (protector secrets, backups, exports)
// through ks.outside. Both report what they find wrong on disk as
// keytree's errors (ioError), and both carry the keystore's fault hook,
// which the crash tests set (setFault).

// osFiles works on paths as they are, for files outside any keystore (the
// directory checks of doctor). Nothing written through it is crash-tested.
var osFiles = fsio.Plain(fsio.Options{Report: ioError})

// ioError turns what fsio found wrong on disk into keytree's error for it.
func ioError(err error) error {
	var no *fsio.NotOursError
	var ex *fsio.ExposedError
	var bad *fsio.BadFileError
	var lt *fsio.LockTimeoutError
	switch {
	case errors.As(err, &no):
		ce := &formats.CorruptError{File: no.Path, Reason: "is " + no.What() + "; keytree does not follow links in a keystore"}
		return &Error{Text: ce.Error(), Kind: ErrCorrupt, Err: ce,
			Hint: "someone who can write the keystore put it there: remove it and put back the keystore's own file or directory, or restore the keystore from a backup copy"}
	case errors.As(err, &ex):
		return &Error{Text: ex.Error() + "; keytree refuses to use it", Hint: "make it private to its owner: " + ex.Fix, Kind: ErrPermissions}
	case errors.As(err, &bad):
		return &formats.CorruptError{File: bad.Path, Reason: bad.Reason}
	case errors.As(err, &lt):
		return &Error{
			Text:   fmt.Sprintf("another keytree process has held the keystore for more than %s (waiting for the %s lock on %s)", lt.Timeout, lt.Mode, lt.Path),
			Remedy: Remedy{Kind: RemedyLockTimeout},
			Kind:   ErrLocked,
		}
	}
	return err
}

// setFault gives the keystore's file layers a fault hook (crash tests).
func (ks *Keystore) setFault(fault fsio.Fault) {
	ks.files = ks.files.WithFault(fault)
	ks.outside = ks.outside.WithFault(fault)
}

// writeFileAtomic replaces path, a file of the keystore, with data through
// the keystore's tmp directory. A crash leaves at most a file in tmp/, which
// the next writer removes.
func (ks *Keystore) writeFileAtomic(path string, data []byte) error {
	return ks.files.ReplaceFile(ks.path(tmpDir), path, data)
}

// filesFor picks the files that path belongs to: the keystore's, confined
// to it, or, for a path outside it (a protector's secret), the plain one.
func (ks *Keystore) filesFor(path string) fsio.FS {
	if within(path, ks.dir) {
		return ks.files
	}
	return ks.outside
}

// DefaultLockTimeout is how long a command waits for another keytree process
// to release the keystore before it gives up.
const DefaultLockTimeout = 10 * time.Second

// lock takes the keystore's lock.
func (ks *Keystore) lock(mode fsio.LockMode, timeout time.Duration) (*fsio.Lock, error) {
	return ks.files.Lock(ks.path(lockFile), mode, timeout)
}
