package commands

import (
	"errors"
	"fmt"
	"runtime"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/keystore"
)

// What keytree run and keytree inject share: references bound to names
// (--env VAR=REF), the passwords of databases that only a password opens
// (--open-password-file DB=FILE), and one resolve of them all.

// binding is VAR=REF: a variable (or a file) that gets the value a
// reference names.
type binding struct {
	Var string
	Ref keystore.Ref
}

// parseBinding reads VAR=REF, the value of --env or --file. Its errors
// name the flag and the variable, never the text after "=", which may be a
// value given by mistake.
func parseBinding(flag, s string) (binding, error) {
	name, ref, ok := strings.Cut(s, "=")
	if !ok {
		return binding{}, usagef("--%s takes VAR=REF (a variable name, =, and a keytree:// reference)", flag)
	}
	if err := checkVarName(name); err != nil {
		return binding{}, usagef("--%s: %v", flag, err)
	}
	r, err := keystore.ParseRef(ref)
	if err != nil {
		return binding{}, usagef("--%s %s=: %v", flag, name, err)
	}
	return binding{Var: name, Ref: r}, nil
}

// checkVarName allows the names every shell and OS can pass on: a letter
// or underscore, then letters, digits and underscores.
func checkVarName(name string) error {
	if name == "" {
		return fmt.Errorf("the variable name is empty")
	}
	if len(name) > 255 {
		return fmt.Errorf("the variable name is longer than 255 characters")
	}
	for i, c := range name {
		switch {
		case c == '_', 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return fmt.Errorf("%q is not a variable name (letters, digits and _, not starting with a digit)", name)
		}
	}
	return nil
}

// openPasswordsFlag is --open-password-file DB=FILE, given once per
// database.
func openPasswordsFlag() *cli.StringSliceFlag {
	return &cli.StringSliceFlag{Name: flagOpenPass, Usage: "open database DB's master key with the password in `DB=FILE` (- for standard input) instead of the service master key; once per database"}
}

// dbFile is one --open-password-file DB=FILE.
type dbFile struct {
	DB, File string
}

// parseOpenPasswords reads the --open-password-file DB=FILE values.
func parseOpenPasswords(values []string) ([]dbFile, error) {
	var out []dbFile
	seen := map[string]bool{}
	for _, v := range values {
		db, file, ok := strings.Cut(v, "=")
		if !ok || file == "" {
			return nil, usagef("--%s takes DB=FILE: the database and the file that holds its password (- for standard input)", flagOpenPass)
		}
		if err := formats.ValidateName("database", db); err != nil {
			return nil, usagef("--%s: %v", flagOpenPass, err)
		}
		if seen[strings.ToLower(db)] {
			return nil, usagef("--%s names database %s twice", flagOpenPass, db)
		}
		seen[strings.ToLower(db)] = true
		out = append(out, dbFile{DB: db, File: file})
	}
	return out, nil
}

// stdinPasswords has flagOpenPass once for each of passwords read from
// standard input, for stdinOnce.
func stdinPasswords(passwords []dbFile) []string {
	var flags []string
	for _, p := range passwords {
		if p.File == "-" {
			flags = append(flags, flagOpenPass)
		}
	}
	return flags
}

// resolve reads the values refs name in one walk of the key hierarchy
// (keystore.Resolve): the passwords of openPasswords are read first, and a
// database that needs a password nobody gave is asked for it on the
// terminal, once, if there is one.
func (in *invocation) resolve(refs []keystore.Ref, openPasswords []dbFile) ([][]byte, error) {
	passwords := map[string][]byte{}
	for _, p := range openPasswords {
		pw, err := in.password(flagOpenPass, p.File, "Password of the master key of database "+p.DB, false)
		if err != nil {
			return nil, err
		}
		passwords[p.DB] = pw
	}
	e := in.e
	var ask func(db string) ([]byte, error)
	if e.stdinTTY && e.tty != nil {
		ask = func(db string) ([]byte, error) {
			return e.promptPassword(passwordRequest{flag: flagOpenPass, prompt: "Password of the master key of database " + db})
		}
	}
	values, err := in.ks.Resolve(refs, passwords, ask)
	return values, perDatabaseHint(err)
}

// perDatabaseHint words the hint of a database that needs its password
// for the commands that take one password file per database: it names
// the database, --open-password-file DB=FILE.
func perDatabaseHint(err error) error {
	var ke *keystore.Error
	if !errors.As(err, &ke) || ke.Remedy.Database == "" {
		return err
	}
	switch ke.Remedy.Kind {
	case keystore.RemedyOpenDMK, keystore.RemedyOpenDMKOrRecoverSMK:
		ke.Hint = strings.Replace(remedyText(ke.Remedy, runtime.GOOS), "--open-password-file FILE", "--open-password-file "+ke.Remedy.Database+"=FILE", 1)
		ke.Remedy = keystore.Remedy{}
	}
	return err
}
