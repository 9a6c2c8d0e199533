package fsio

import (
	"fmt"
	"io/fs"
	"runtime"
	"strings"
	"time"
)

// What an FS finds wrong on disk. Each is passed to Options.Report before it
// is returned.

// NotOursError: a link, or another kind of file, where keytree keeps a file
// or directory of its own (Want: "a directory", "a regular file").
type NotOursError struct {
	Path string
	Mode fs.FileMode
	Want string
}

func (e *NotOursError) Error() string {
	return fmt.Sprintf("%s is %s; keytree does not follow links in a keystore", e.Path, e.What())
}

// What says what was found in place of Want.
func (e *NotOursError) What() string {
	switch {
	case e.Mode&fs.ModeSymlink != 0:
		return "a symbolic link, not " + e.Want
	case e.Mode&fs.ModeIrregular != 0 && runtime.GOOS == "windows":
		return "a link or junction, not " + e.Want
	}
	return "not " + e.Want
}

// ExposedError: a file or directory that group or others can use.
type ExposedError struct {
	Path string
	Mode fs.FileMode // on Unix
	// Others, on Windows, names whom the DACL lets in besides the owner,
	// the account running keytree, SYSTEM and Administrators.
	Others []string
	// Fix is the command that makes it private to its owner.
	Fix string
}

func (e *ExposedError) Error() string {
	if e.Others != nil {
		return fmt.Sprintf("%s is accessible by others (its ACL grants access to %s)", e.Path, strings.Join(e.Others, ", "))
	}
	return fmt.Sprintf("%s is accessible by group or others (mode %04o)", e.Path, e.Mode.Perm())
}

// BadFileError: a file that is not what a file of keytree's can be (not a
// regular file, too large, hard-linked).
type BadFileError struct {
	Path   string
	Reason string
}

func (e *BadFileError) Error() string { return e.Path + ": " + e.Reason }

func tooLarge(path string, max int64) error {
	return &BadFileError{Path: path, Reason: fmt.Sprintf("file is larger than %d bytes", max)}
}

// LockTimeoutError: another process held the lock for longer than the
// timeout.
type LockTimeoutError struct {
	Path    string
	Mode    LockMode
	Timeout time.Duration
}

func (e *LockTimeoutError) Error() string {
	return fmt.Sprintf("waited %s for the %s lock on %s", e.Timeout, e.Mode, e.Path)
}

// shellQuote quotes s for the shell the user would paste a Fix into.
func shellQuote(s string) string {
	if runtime.GOOS == "windows" {
		return `"` + s + `"`
	}
	if strings.ContainsAny(s, " '\"$`\\!*?[]{}()<>|&;#~") {
		return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	return s
}
