package commands

import (
	"github.com/urfave/cli/v2"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/keystore"
	"github.com/keytree-dev/keytree/protect"
)

// Every verb is two functions, as gh's NewCmdX(f, runF) and xRun(opts) are:
// a parse function that turns the command line into the verb's options
// struct, refusing what is a usage mistake, and a run function that does
// the work from those options and, for most verbs, the keystore that the
// global flags name, opened for it by keystoreAction. The verb's
// constructor joins them and takes a run function to use instead, so that
// a test can see what a command line parses to without opening a keystore
// (parse_test.go).
//
// A parse function checks what it can from the command line alone, in the
// order the checks have always run; whatever the command did after opening
// the keystore stays in its run function, so that which error a command
// line with two mistakes reports does not depend on this split.

// globalOptions are the global flags (or their KEYTREE_ variables) as
// given. They are turned into keystore.Options, with the defaults, only
// when the keystore is opened (keystoreOptions): a missing home directory
// or a bad lock timeout is reported where it always was, after the
// command's own arguments.
type globalOptions struct {
	Keystore, AccountDir, MachineDir string
	LockTimeout                      string
	AllowOtherOwner                  bool
	CreateProtectorDirs              bool
}

// reportOptions are the options of a verb that reports on the keystore, as
// text or as JSON, and takes nothing else: status, key-encryptions, smk
// verify, credential list and db list.
type reportOptions struct {
	JSON bool
}

func parseReport(a *argv) *reportOptions {
	a.noArgs()
	return &reportOptions{JSON: a.bool(flagJSON)}
}

// noOptions are the options of a verb that takes none: errorlog, version.
type noOptions struct{}

func parseNoArgs(a *argv) *noOptions {
	a.noArgs()
	return &noOptions{}
}

// action is a verb's urfave/cli action: parse, then run (runF instead,
// when a test gives one).
func action[T any](parse func(*argv) *T, runF, run func(*T) error) cli.ActionFunc {
	return actionWith(parse, runF, func(_ globalOptions, opts *T) error { return run(opts) })
}

// keystoreAction is action for a verb whose run function works on the
// keystore that the global flags name: it is opened between parse and run,
// where every such verb always opened it. The verb's options hold its own
// flags and arguments only.
func keystoreAction[T any](e *env, parse func(*argv) *T, runF func(*T) error, run func(*invocation, *T) error) cli.ActionFunc {
	return actionWith(parse, runF, func(g globalOptions, opts *T) error {
		in, err := e.openKeystore(g)
		if err != nil {
			return err
		}
		return run(in, opts)
	})
}

func actionWith[T any](parse func(*argv) *T, runF func(*T) error, run func(globalOptions, *T) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		a := &argv{c: c}
		opts := parse(a)
		switch {
		case a.err != nil:
			return a.err
		case runF != nil:
			return runF(opts)
		}
		return run(a.globals(), opts)
	}
}

// argv reads one command line for a parse function. The first check that
// fails keeps its error and every later one does nothing, so a parse
// function lists what its verb needs in the order it is checked, and the
// first mistake is the one reported.
type argv struct {
	c   *cli.Context
	err error
}

// check runs f unless an earlier check failed.
func (a *argv) check(f func() error) {
	if a.err == nil {
		a.err = f()
	}
}

func (a *argv) string(flag string) string { return a.c.String(flag) }
func (a *argv) bool(flag string) bool     { return a.c.Bool(flag) }

// optional is the value of a flag whose absence means something of its
// own (no --open-password-file: open the key by the SMK): nil when it is
// not given, and a pointer to "" when it is given empty.
func (a *argv) optional(flag string) *string {
	if !a.c.IsSet(flag) {
		return nil
	}
	v := a.c.String(flag)
	return &v
}

func (a *argv) globals() globalOptions {
	return globalOptions{
		Keystore:            a.c.String(flagKeystore),
		AccountDir:          a.c.String(flagAccountDir),
		MachineDir:          a.c.String(flagMachineDir),
		LockTimeout:         a.c.String(flagLockTimeout),
		AllowOtherOwner:     a.c.Bool(flagAllowOtherOwner),
		CreateProtectorDirs: a.c.Bool(flagCreateProtDirs),
	}
}

// noArgs refuses positional arguments to a command that takes none.
func (a *argv) noArgs() {
	a.check(func() error {
		if n := a.c.Args().Len(); n > 0 {
			// The arguments are not echoed: one of them may be a value
			// typed where it does not belong.
			return usagef("%s takes no arguments (got %d)", cmdName(a.c), n)
		}
		return nil
	})
}

// oneArg is the single positional argument of a command; what names it in
// the message when there is none, or more.
func (a *argv) oneArg(what string) string {
	a.check(func() error {
		switch n := a.c.Args().Len(); n {
		case 1:
			return nil
		case 0:
			return usagef("%s needs %s", cmdName(a.c), what)
		default:
			return usagef("%s takes a single argument, %s (got %d)", cmdName(a.c), what, n)
		}
	})
	if a.err != nil {
		return ""
	}
	return a.c.Args().First()
}

// manyArgs checks the arguments of a get that takes several names: at
// least one, and more only with --json (raw values one after another could
// not be told apart). Arguments are not echoed: one may be a value typed
// where it does not belong.
func manyArgs(a *argv, args []string, what string, json bool) error {
	switch {
	case len(args) == 0:
		return usagef("%s needs %s", cmdName(a.c), what)
	case len(args) > 1 && !json:
		return usagef("%s of several names needs --json (got %d names)", cmdName(a.c), len(args))
	}
	seen := map[string]bool{}
	for _, arg := range args {
		if seen[arg] {
			return usagef("%s names %s twice", cmdName(a.c), arg)
		}
		seen[arg] = true
	}
	return nil
}

// secretPath is the DB/NAME argument of a secret verb.
func (a *argv) secretPath() (db, name string) {
	p := a.oneArg("a secret DB/NAME")
	a.check(func() error {
		var err error
		if db, name, err = formats.SplitSecretPath(p); err != nil {
			return &keystore.Error{Text: err.Error(), Kind: keystore.ErrInvalid}
		}
		return nil
	})
	return db, name
}

// db is the database --db names, refused if it is no valid name before
// anything is opened or asked.
func (a *argv) db() string {
	db := a.c.String(flagDB)
	a.check(func() error {
		if db == "" {
			return usagef("%s needs --db", cmdName(a.c))
		}
		return keystore.ValidName("database", db)
	})
	return db
}

// file is --file, required, naming a file that is read or written whole:
// not standard input or output, and not a directory.
func (a *argv) file() string {
	f := a.fileOrStdio()
	a.check(func() error { return fileArg(cmdName(a.c), f) })
	return f
}

// fileOrStdio is file for a command whose --file - means standard input or
// output (keystore backup and restore).
func (a *argv) fileOrStdio() string {
	f := a.c.String(flagFile)
	a.check(func() error {
		if f == "" {
			return usagef("%s needs --file", cmdName(a.c))
		}
		if f == "-" {
			return nil
		}
		return notDirectory(flagFile, f)
	})
	return f
}

// algorithm is --algorithm, a key type.
func (a *argv) algorithm() protect.Algorithm {
	var alg protect.Algorithm
	a.check(func() error {
		var err error
		if alg, err = protect.ParseAlgorithm(a.c.String(flagAlgorithm)); err != nil {
			return usagef("%v", err)
		}
		return nil
	})
	return alg
}

// newAlgorithm is --algorithm of a regenerate: "" (keep the current key's)
// unless it is given.
func (a *argv) newAlgorithm() protect.Algorithm {
	if !a.c.IsSet(flagAlgorithm) {
		return ""
	}
	return a.algorithm()
}

// by is --by, the encryption of a database master key to add or drop.
func (a *argv) by() keystore.EncryptionKind {
	var kind keystore.EncryptionKind
	a.check(func() error {
		switch by := a.c.String(flagBy); by {
		case "smk":
			kind = keystore.BySMK
		case "password":
			kind = keystore.ByPassword
		case "":
			return usagef("%s needs --by smk or --by password", cmdName(a.c))
		default:
			return usagef("--by takes smk or password, not %q", by)
		}
		return nil
	})
	return kind
}
