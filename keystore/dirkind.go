package keystore

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"

	"github.com/keytree-dev/keytree/keystore/internal/fsio"
	"github.com/keytree-dev/keytree/protect"
)

// keytree is pointed at its three directories by flags and variables, and a
// typo or a wrong variable points it at a directory that is not its own:
// /etc, a home directory, a mount point. Such a directory is usually open to
// others, and a hint to make it private (chmod 700 /etc) would do harm if
// followed. So before keytree judges a directory's permissions it looks at
// what the directory holds, and only advises a chmod on a directory that
// holds keytree's own files.

// A dirRole is one of keytree's directories: which one it is, and the
// names (path.Match patterns) of files that only keytree keeps there.
type dirRole struct {
	dir   DirRole
	marks []string
	// spare are names keytree may leave in a directory it has not finished
	// making (init's lock and tmp): not proof that it is keytree's, but
	// not a sign that it is someone else's either.
	spare []string
}

var (
	keystoreRole = dirRole{dir: DirKeystore, marks: []string{keystoreFile, smkFile}, spare: []string{lockFile, tmpDir}}
	accountRole  = dirRole{dir: DirAccount, marks: []string{protect.AccountSecretName}}
	machineRole  = dirRole{dir: DirMachine, marks: []string{protect.MachineSecretName, "*.entropy"}}
)

type dirKind int

const (
	dirOurs    dirKind = iota // holds one of keytree's files
	dirEmpty                  // holds nothing, or only the role's spare names
	dirForeign                // holds other files: not keytree's
)

// maxNamesLooked bounds the names read to tell an empty directory from a
// foreign one: a directory of a million files costs no more than one of 64.
const maxNamesLooked = 64

// kindOf says what dir holds, for role. Only names are read, never a file.
func kindOf(f fsio.FS, dir string, role dirRole) dirKind {
	for _, m := range role.marks {
		if m != "" && !hasMeta(m) && f.Exists(filepath.Join(dir, m)) {
			return dirOurs
		}
	}
	d, err := f.OpenFile(dir, os.O_RDONLY, 0)
	if err != nil {
		return dirForeign
	}
	defer d.Close()
	names, _ := d.Readdirnames(maxNamesLooked)
	kind := dirEmpty
	for _, n := range names {
		for _, m := range role.marks {
			if ok, _ := path.Match(m, n); ok && m != "" {
				return dirOurs
			}
		}
		spare := false
		for _, s := range role.spare {
			spare = spare || n == s
		}
		if !spare {
			kind = dirForeign
		}
	}
	return kind
}

func hasMeta(pattern string) bool {
	for _, c := range pattern {
		if c == '*' || c == '?' || c == '[' || c == '\\' {
			return true
		}
	}
	return false
}

// checkOwnDir is CheckPrivateDir for one of keytree's three directories:
// loose permissions are refused in every case, but the fix is advised only
// for a directory that holds keytree's files. For an empty directory, or
// one that holds someone else's, the remedy points keytree somewhere else.
func checkOwnDir(f fsio.FS, dir string, role dirRole) error {
	err := f.CheckPrivateDir(dir)
	var ke *Error
	if err == nil || !errors.As(err, &ke) || !errors.Is(err, ErrPermissions) {
		return err
	}
	out := *ke
	switch kindOf(f, dir, role) {
	case dirOurs:
		return err
	case dirEmpty:
		out.Detail = append(append([]string(nil), ke.Detail...),
			"it is empty: keytree did not make it, and does not advise changing the permissions of a directory it did not make")
		out.Hint = ""
		out.Remedy = Remedy{Kind: RemedyNewDir, Dir: role.dir}
	default:
		out.Detail = append(append([]string(nil), ke.Detail...),
			fmt.Sprintf("it holds files that are not keytree's: it is not keytree's %s", role.dir))
		out.Hint = ""
		out.Remedy = Remedy{Kind: RemedyOwnDir, Dir: role.dir}
	}
	return &out
}

// CheckDirectory checks the directory opts names for role ("keystore",
// "account" or "machine") as the commands that use it do, and changes
// nothing: it must be private to its owner, with a chmod advised only for a
// directory that holds keytree's files, and the keystore must belong to the
// account running keytree unless opts.AllowOtherOwner. keytree doctor
// reports what it returns.
func CheckDirectory(opts Options, role string) error {
	d := opts.Dirs
	switch role {
	case "keystore":
		if err := checkOwnDir(osFiles, d.Keystore, keystoreRole); err != nil {
			return err
		}
		ks := &Keystore{dir: d.Keystore, allowOtherOwner: opts.AllowOtherOwner}
		return ks.checkOwner()
	case "account":
		return checkOwnDir(osFiles, d.Account, accountRole)
	case "machine":
		return checkOwnDir(osFiles, d.Machine, machineRole)
	}
	return fmt.Errorf("no directory role %q", role)
}

// DirectoryOwner names the account that owns the file fi describes, where
// keytree reads owners from file information (Unix); "" elsewhere.
func DirectoryOwner(fi os.FileInfo) string {
	uid, ok := fsio.FileOwner(fi)
	if !ok {
		return ""
	}
	return ownerName(uid)
}
