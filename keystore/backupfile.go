package keystore

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/keystore/internal/fsio"
	"github.com/keytree-dev/keytree/protect"
)

// maxBackupFileSize bounds a backup file read from disk.
const maxBackupFileSize = 64 << 10

// writeKeyBackup writes a master key backup: a standard age file, encrypted
// with a password through scrypt, holding a key file that says what the key
// is. The file is created owner-only and exclusively: an existing file is
// refused with 15240, as SQL Server refuses it.
func writeKeyBackup(out fsio.FS, path string, key *protect.Key, kf *formats.KeyFile, password []byte) error {
	p, err := protect.NewPassword(password)
	if err != nil {
		return invalid(err)
	}
	plain, err := kf.Encode()
	if err != nil {
		return err
	}
	blob, err := protect.Seal(p, plain)
	if err != nil {
		return err
	}
	// Check the backup opens before anyone relies on it.
	if _, _, err := openKeyFile(p, blob, key.Kind(), key.Thumbprint()); err != nil {
		return fmt.Errorf("the backup does not open: %w", err)
	}
	if err := out.CreateFileAtomic(path, blob); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return errFileExists(path)
		}
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func errFileExists(path string) error {
	return &Error{
		Number: MsgFileExists,
		Text:   fmt.Sprintf("Cannot write into file '%s'. Verify that you have write permissions, that the file path is valid, and that the file does not already exist.", path),
		Hint:   "keytree never overwrites a file: choose a new name, or remove the old file first",
		Kind:   ErrExists,
	}
}

// readKeyBackup opens a master key backup with its password and checks that
// it holds a key of the expected kind.
func readKeyBackup(path string, kind protect.Kind, password []byte) (*protect.Key, *formats.KeyFile, error) {
	// A backup is a few hundred bytes: no more than maxBackupFileSize is
	// ever read, and a pipe or device is refused before it is read at all.
	data, err := fsio.ReadRegular(path, maxBackupFileSize)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil, &Error{Text: fmt.Sprintf("no backup file %s", path), Kind: ErrNotFound}
	case errors.Is(err, fsio.ErrNotRegular):
		return nil, nil, errBadBackup(path, "it is not a regular file")
	case errors.Is(err, fsio.ErrTooLarge):
		return nil, nil, errBadBackup(path, "it is too large to be a master key backup")
	case err != nil:
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	p, err := protect.NewPassword(password)
	if err != nil {
		return nil, nil, invalid(err)
	}
	key, kf, err := openKeyFile(p, data, kind, "")
	if err == nil {
		return key, kf, nil
	}
	switch {
	case !bytes.HasPrefix(data, []byte("age-encryption.org/v1\n")):
		return nil, nil, errBadBackup(path, "it is not an age file")
	case !bytes.Contains(data[:min(len(data), 200)], []byte("\n-> scrypt ")):
		return nil, nil, errBadBackup(path, "it is not encrypted with a password")
	case errors.Is(err, protect.ErrWeakScrypt):
		return nil, nil, errBadBackup(path, err.Error())
	case errors.Is(err, protect.ErrDecrypt):
		return nil, nil, &Error{Text: fmt.Sprintf("cannot decrypt %s: the password is wrong, or the file is damaged", path),
			Kind: ErrDecryption, Err: err}
	}
	return nil, nil, errBadBackup(path, err.Error())
}

func errBadBackup(path, why string) error {
	return &Error{
		Number: MsgBadKeyFile,
		Text:   "The master key file does not exist or has invalid format.",
		Detail: []string{fmt.Sprintf("%s: %s", path, why)},
		Kind:   ErrCorrupt,
	}
}

// backupKeyFile describes key for its backup.
func backupKeyFile(key *protect.Key, created, now time.Time, database string) *formats.KeyFile {
	kf := keyFileOf(key, created)
	kf.Backup = now.UTC()
	kf.Database = database
	return kf
}

// readBackupIfNamed reads the key of the backup at path, for a recover; a
// recover without a backup (path "") opens kept encryptions instead, and
// gets nil.
func readBackupIfNamed(path string, kind protect.Kind, password []byte) (*protect.Key, error) {
	if path == "" {
		return nil, nil
	}
	key, _, err := readKeyBackup(path, kind, password)
	return key, err
}
