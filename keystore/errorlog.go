package keystore

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/keystore/internal/fsio"
)

const (
	// maxErrorLogRead bounds what ErrorLog returns: the newest part of
	// the log.
	maxErrorLogRead = 1 << 20
	// maxErrorLogSize is the size past which the error log is rotated:
	// errorlog becomes errorlog.1, replacing the one before, and the next
	// event starts a new errorlog. The log then takes at most about twice
	// this, however long a keystore lives and however often a cron job
	// meets error 15466 (docs/format.md).
	maxErrorLogSize = 1 << 20
)

// ErrorLogRotateSize is the size past which the error log is rotated, for
// keytree doctor's report.
const ErrorLogRotateSize = maxErrorLogSize

// logEvent appends a line to the keystore's error log, as SQL Server writes
// 15466 to its errorlog. It must never carry a secret: callers pass messages
// built from names, thumbprints and error texts that hold no key material.
// Failing to log does not fail the command.
//
// Readers log too (15466, an encryption they cannot repair), several at
// once under the shared lock: each line is one write to a file opened with
// O_APPEND, so lines do not overwrite one another. logEvent never rotates
// the log: a rename under a reader's feet could lose another reader's
// lines, or rotate twice. It notes that the log has grown past its size, and
// rotateErrorLog does the rest under the exclusive lock.
func (ks *Keystore) logEvent(line string) {
	if fi, err := ks.files.Lstat(ks.path(errorlogFile)); err == nil && !fi.Mode().IsRegular() {
		return
	}
	f, err := ks.files.OpenFile(ks.path(errorlogFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE|fsio.NoFollow|fsio.NonBlock, fsio.FilePerm)
	if err != nil {
		return
	}
	defer f.Close()
	if ks.files.CheckOwnFile(ks.path(errorlogFile), f) != nil {
		return
	}
	line = strings.ReplaceAll(sanitize(line), "\n", " ")
	_, _ = f.WriteString(ks.now().UTC().Format(time.RFC3339) + " " + line + "\n")
	if fi, err := f.Stat(); err == nil && fi.Size() > maxErrorLogSize {
		ks.errorLogFull = true
	}
}

// rotateErrorLog renames an error log larger than maxErrorLogSize to
// errorlog.1, replacing the previous errorlog.1. The caller holds the
// exclusive lock, so no keytree process is appending: the rename loses no
// line, and two processes never rotate the same log twice. It is best
// effort, like logEvent: a rotation that fails is tried again by the next
// writer.
func (ks *Keystore) rotateErrorLog() {
	ks.errorLogFull = false
	path := ks.path(errorlogFile)
	fi, err := ks.files.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() <= maxErrorLogSize {
		return
	}
	if old, err := ks.files.Lstat(ks.path(errorlogOldFile)); err == nil && !old.Mode().IsRegular() {
		// Something planted where the old log goes: leave both alone,
		// as logEvent leaves a log that is not a regular file.
		return
	}
	if ks.files.RenameReplace(path, ks.path(errorlogOldFile)) == nil {
		_ = ks.files.SyncDir(ks.dir)
	}
}

// rotateErrorLogAfterRead rotates the error log after a reader found it
// past its size, if the exclusive lock is free right now. A keystore that
// only ever meets readers (a cron job that fails with 15466 every minute)
// must not grow its log without bound; a busy one is rotated by its next
// writer instead, so the reader does not wait.
func (ks *Keystore) rotateErrorLogAfterRead() {
	if !ks.errorLogFull {
		return
	}
	l, err := ks.lock(fsio.Exclusive, 0)
	if err != nil {
		return
	}
	defer l.Release()
	ks.rotateErrorLog()
}

// ErrorLog returns the error log (its last MiB: the end of errorlog.1, if
// the log was rotated, then errorlog), with control characters other than
// newlines replaced: the files are read from disk, and a hostile one must
// not drive the terminal it is printed on.
//
// It takes no lock. A rotation between the two reads would make errorlog.1
// the file just read as errorlog; that is seen (os.SameFile) and errorlog
// read again, so no part is shown twice.
func (ks *Keystore) ErrorLog() (string, error) {
	cur, err := ks.openLogFile(ks.path(errorlogFile))
	if err != nil {
		return "", err
	}
	old, err := ks.openLogFile(ks.path(errorlogOldFile))
	if err != nil {
		closeLog(cur)
		return "", err
	}
	if cur != nil && old != nil && os.SameFile(cur.fi, old.fi) {
		closeLog(cur)
		if cur, err = ks.openLogFile(ks.path(errorlogFile)); err != nil {
			closeLog(old)
			return "", err
		}
	}
	defer closeLog(cur)
	defer closeLog(old)
	// The newest maxErrorLogRead bytes: the current log's end, and as
	// much of the old log's end as still fits before it.
	curData, err := cur.tail(maxErrorLogRead)
	if err != nil {
		return "", err
	}
	oldData, err := old.tail(maxErrorLogRead - int64(len(curData)))
	if err != nil {
		return "", err
	}
	if len(oldData) > 0 && !bytes.HasSuffix(oldData, []byte("\n")) {
		oldData = append(oldData, '\n')
	}
	return sanitize(string(oldData) + string(curData)), nil
}

// logFile is an open part of the error log.
type logFile struct {
	f  *os.File
	fi fs.FileInfo
}

// openLogFile opens one part of the error log for reading, refusing a link
// or anything but a private regular file; a part that does not exist is
// nil.
func (ks *Keystore) openLogFile(path string) (*logFile, error) {
	if fi, err := ks.files.Lstat(path); err == nil && !fi.Mode().IsRegular() {
		return nil, ks.files.NotOurs(path, fi.Mode(), "a regular file")
	}
	f, err := ks.files.OpenFile(path, os.O_RDONLY|fsio.NoFollow|fsio.NonBlock, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, ks.files.NotOurs(path, fi.Mode(), "a regular file")
	}
	if err := ks.files.CheckPrivate(path, f, fi); err != nil {
		f.Close()
		return nil, err
	}
	return &logFile{f: f, fi: fi}, nil
}

func closeLog(l *logFile) {
	if l != nil {
		l.f.Close()
	}
}

// tail reads the last max bytes of l (nothing for a nil l).
func (l *logFile) tail(max int64) ([]byte, error) {
	if l == nil || max <= 0 {
		return nil, nil
	}
	if size := l.fi.Size(); size > max {
		if _, err := l.f.Seek(size-max, io.SeekStart); err != nil {
			return nil, err
		}
	}
	return io.ReadAll(io.LimitReader(l.f, max))
}

// sanitize replaces control characters other than newline and tab,
// bidirectional formatting characters (formats.IsControlOrBidi), and invalid
// UTF-8 with U+FFFD.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' {
			return r
		}
		if formats.IsControlOrBidi(r) {
			return '\uFFFD'
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
}
