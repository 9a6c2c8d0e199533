package keystore

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/keytree-dev/keytree/formats"
)

// Every change keytree makes to the disk goes through the functions in this
// file, and each of them calls step before it acts. Tests set faultHook to
// stop an operation at any step, as a crash would, and check what the next
// command finds (see crash_test.go). In keytree itself faultHook is nil.
var faultHook func(step, path string) error

func step(kind, path string) error {
	if faultHook == nil {
		return nil
	}
	return faultHook(kind, path)
}

const (
	dirMode  = 0o700
	fileMode = 0o600
)

// mkdirPrivate creates dir (and missing parents) owner-only, whatever the
// umask, and makes sure an existing dir is a directory.
func mkdirPrivate(dir string) error {
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", dir)
		}
		return nil
	}
	if err := step("mkdir", dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return err
	}
	// MkdirAll applies the umask; a umask can only take bits away, but one
	// that takes the owner's away would lock keytree out of its own keystore.
	return os.Chmod(dir, dirMode)
}

// createFile creates path exclusively, owner-only from the first byte, and
// writes data. With sync it also makes the contents durable; bulk operations
// pass false and make a whole batch durable at once (syncBatch).
func createFile(path string, data []byte, sync bool) (err error) {
	if err := step("create", path); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fileMode)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	if err := fixMode(f); err != nil {
		return err
	}
	if err := step("write", path); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if sync {
		if err := step("sync", path); err != nil {
			return err
		}
		return f.Sync()
	}
	return nil
}

// writeFileAtomic replaces path with data: the data goes to a temporary file
// in the keystore's tmp directory, is synced, and is renamed over path; then
// path's directory is synced. A reader sees the old file or the new one,
// whole. A crash leaves at most a file in tmp/, which the next writer
// removes.
func (ks *Keystore) writeFileAtomic(path string, data []byte) error {
	tmp := filepath.Join(ks.dir, tmpDir, formats.TempPrefix+randomName())
	if err := createFile(tmp, data, true); err != nil {
		removeQuietly(tmp)
		return err
	}
	if err := renameReplace(tmp, path); err != nil {
		removeQuietly(tmp)
		return err
	}
	return syncDir(filepath.Dir(path))
}

// createFileAtomic creates path with data, refusing to replace an existing
// file (os.ErrExist). The file appears whole or not at all: it is written to
// a temporary name in the same directory and linked into place. It is used
// for files outside the keystore: protector secrets, backups and exports.
func createFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp := filepath.Join(dir, formats.TempPrefix+randomName())
	if err := createFile(tmp, data, true); err != nil {
		removeQuietly(tmp)
		return err
	}
	err := renameNoReplace(tmp, path)
	removeQuietly(tmp)
	if err != nil {
		return err
	}
	return syncDir(dir)
}

// removeFile removes path; a file already gone is not an error.
func removeFile(path string) error {
	if err := step("remove", path); err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func removeQuietly(path string) {
	if faultHook != nil && faultHook("remove", path) != nil {
		return
	}
	os.Remove(path)
}

func syncDir(dir string) error {
	if err := step("syncdir", dir); err != nil {
		return err
	}
	return syncDirOS(dir)
}

// readFile reads a file keytree trusts no more than any other input: it must
// be a regular file, no larger than max, and (on Unix) readable by its owner
// only. It calls step too, so that tests can make a read fail.
func readFile(path string, max int64) ([]byte, error) {
	if err := step("read", path); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &formats.CorruptError{File: path, Reason: "not a regular file"}
	}
	if err := checkPrivate(path, fi); err != nil {
		return nil, err
	}
	if fi.Size() > max {
		return nil, &formats.CorruptError{File: path, Reason: fmt.Sprintf("file is larger than %d bytes", max)}
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, &formats.CorruptError{File: path, Reason: fmt.Sprintf("file is larger than %d bytes", max)}
	}
	return data, nil
}

// permissionError reports a file or directory that others can read.
func permissionError(path string, mode fs.FileMode) error {
	fix := "chmod 600 "
	if mode.IsDir() {
		fix = "chmod 700 "
	}
	return &Error{
		Text: fmt.Sprintf("%s is accessible by group or others (mode %04o); keytree refuses to use it", path, mode.Perm()),
		Hint: "make it private to its owner: " + fix + shellQuote(path),
		Kind: ErrPermissions,
	}
}

// checkPrivateDir refuses a directory that others can read or enter.
func checkPrivateDir(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", path)
	}
	return checkPrivate(path, fi)
}

func randomName() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func shellQuote(s string) string {
	if runtime.GOOS == "windows" {
		return `"` + s + `"`
	}
	if strings.ContainsAny(s, " '\"$`\\!*?[]{}()<>|&;#~") {
		return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	return s
}
