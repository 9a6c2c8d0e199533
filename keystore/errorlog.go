package keystore

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/keytree-dev/keytree/formats"
)

// maxErrorLogRead bounds what ErrorLog returns: the newest part of the log.
const maxErrorLogRead = 1 << 20

// logEvent appends a line to the keystore's error log, as SQL Server writes
// 15466 to its errorlog. It must never carry a secret: callers pass messages
// built from names, thumbprints and error texts that hold no key material.
// Failing to log does not fail the command.
func (ks *Keystore) logEvent(line string) {
	if fi, err := ks.files.lstat(ks.path(errorlogFile)); err == nil && !fi.Mode().IsRegular() {
		return
	}
	f, err := ks.files.openFile(ks.path(errorlogFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE|noFollow|nonBlock, fileMode)
	if err != nil {
		return
	}
	defer f.Close()
	if checkOwnFile(ks.path(errorlogFile), f) != nil {
		return
	}
	line = strings.ReplaceAll(sanitize(line), "\n", " ")
	f.WriteString(ks.now().UTC().Format(time.RFC3339) + " " + line + "\n")
}

// ErrorLog returns the error log (its last MiB), with control characters
// other than newlines replaced: the file is read from disk, and a hostile
// one must not drive the terminal it is printed on.
func (ks *Keystore) ErrorLog() (string, error) {
	if fi, err := ks.files.lstat(ks.path(errorlogFile)); err == nil && !fi.Mode().IsRegular() {
		return "", notOurs(ks.path(errorlogFile), fi.Mode(), "a regular file")
	}
	f, err := ks.files.openFile(ks.path(errorlogFile), os.O_RDONLY|noFollow|nonBlock, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", notOurs(ks.path(errorlogFile), fi.Mode(), "a regular file")
	}
	if err := checkPrivate(ks.path(errorlogFile), f, fi); err != nil {
		return "", err
	}
	if fi.Size() > maxErrorLogRead {
		if _, err := f.Seek(fi.Size()-maxErrorLogRead, io.SeekStart); err != nil {
			return "", err
		}
	}
	data, err := io.ReadAll(io.LimitReader(f, maxErrorLogRead))
	if err != nil {
		return "", err
	}
	return sanitize(string(data)), nil
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
