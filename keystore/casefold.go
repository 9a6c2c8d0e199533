package keystore

import (
	"errors"
	"fmt"
	"strings"
)

// Names are case-sensitive, but the file systems of Windows and macOS are
// not: there "Mail" and "mail" are one file, and a keystore copied there
// from Linux with both would lose one of them (or mix their metadata and
// values). So a new credential, database or secret whose name differs only
// in case from an existing one is refused on every OS, not only where the
// file system would collide. Only creation looks: replacing an item by its
// exact name, and every read, cost what they cost before.

// errStopWalk ends a directory walk early.
var errStopWalk = errors.New("stop")

// caseTwin returns the name of an item in dir (relative to the keystore)
// that differs from name only in case, or "". Items are NAME.toml files,
// or, with dirs, database directories. Temporary files (a leading dot) are
// no items.
func (ks *Keystore) caseTwin(dir, name string, dirs bool) (string, error) {
	var twin string
	err := (&collector{ks: ks}).eachEntry(dir, func(entry string, isDir bool) error {
		if strings.HasPrefix(entry, ".") || isDir != dirs {
			return nil
		}
		base := entry
		if !dirs {
			var ok bool
			if base, ok = strings.CutSuffix(entry, ".toml"); !ok {
				return nil
			}
		}
		if base == name || !strings.EqualFold(base, name) {
			return nil
		}
		if dirs {
			// An empty database directory is no database (eachDatabase),
			// and no twin either; one that lost its metadata is.
			if lost, err := ks.lostDatabase(base); err != nil {
				return err
			} else if !lost && !ks.files.Exists(ks.pathOf(databaseMeta(base))) {
				return nil
			}
		}
		twin = base
		return errStopWalk
	})
	if errors.Is(err, errStopWalk) {
		err = nil
	}
	return twin, err
}

// errCaseTwin refuses a new item named name because twin exists. what is
// "credential", "database" or "secret"; for a secret, name and twin are
// DB/NAME.
func errCaseTwin(what, name, twin string) error {
	return &Error{
		Text: fmt.Sprintf("a %s named '%s' already exists; '%s' differs from it only in case", what, twin, name),
		Hint: fmt.Sprintf("names that differ only in case would be one file on Windows and macOS: use '%s', or choose another name", twin),
		Kind: ErrExists,
	}
}
