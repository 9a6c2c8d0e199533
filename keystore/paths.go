package keystore

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"strings"
)

// Dirs are the three places keytree keeps things: the keystore, the account
// protector's secret and the machine protector's secrets. They must be three
// separate directories, none inside another: a copy of the keystore must
// never carry a protector's secret with it (P4).
type Dirs struct {
	Keystore string
	Account  string
	Machine  string
}

// DefaultDirs returns the default directories for this OS and account
// (docs/cli-abi.md lists them). Environment variables and flags override
// them; the commands package applies those. It fails only when it cannot
// find the home directory (ErrNoHome).
func DefaultDirs() (Dirs, error) {
	return defaultDirs()
}

// ErrNoHome: there is no home directory to build the default directories
// on. Whoever runs keytree must name all three directories.
var ErrNoHome = errors.New("cannot find the home directory")

// check makes the directories absolute and refuses any two that are the
// same or nested.
func (d *Dirs) check() error {
	named := []struct {
		name string
		path *string
	}{{"keystore", &d.Keystore}, {"account", &d.Account}, {"machine", &d.Machine}}
	for _, n := range named {
		if *n.path == "" {
			return fmt.Errorf("no %s directory given", n.name)
		}
		abs, err := filepath.Abs(*n.path)
		if err != nil {
			return err
		}
		*n.path = abs
	}
	for i := range named {
		for j := range named {
			if i == j {
				continue
			}
			if within(*named[j].path, *named[i].path) {
				return &Error{
					Text:   fmt.Sprintf("the %s directory (%s) and the %s directory (%s) overlap", named[i].name, *named[i].path, named[j].name, *named[j].path),
					Remedy: Remedy{Kind: RemedySeparateDirs},
					Kind:   ErrInvalid,
				}
			}
		}
	}
	return nil
}

// within reports whether path is dir or lies inside it.
func within(path, dir string) bool {
	if runtime.GOOS == "windows" || runtime.GOOS == "darwin" {
		path, dir = strings.ToLower(path), strings.ToLower(dir)
	}
	rel, err := filepath.Rel(dir, path)
	if err != nil {
		return false
	}
	return rel == "." || (rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel))
}

// homeDir is the home directory the defaults are built on: $HOME
// (%USERPROFILE% on Windows), or, when that is unset, the one the account
// database gives for the account keytree runs as. cron, systemd units, env
// -i and many service managers start programs without HOME; the account
// still has a home directory, and that, not an error, is what the user
// expects the defaults to use.
func homeDir() (string, error) {
	h, err := os.UserHomeDir()
	if err == nil && h != "" {
		return h, nil
	}
	u, uerr := currentUser()
	if uerr == nil && u.HomeDir != "" {
		return u.HomeDir, nil
	}
	if uerr != nil {
		err = uerr
	}
	return "", fmt.Errorf("%w (%v)", ErrNoHome, err)
}

// currentUser is user.Current; tests replace it.
var currentUser = user.Current

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" && filepath.IsAbs(v) {
		return v
	}
	return fallback
}
