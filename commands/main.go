// Package commands is keytree's command line: one file per noun, one
// constructor per verb. Actions parse flags into options and call the
// keystore package; Main is the one place that turns errors into messages
// and exit codes.
package commands

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/keytree-dev/keytree/keystore"
)

// version is stamped at build time (-ldflags "-X .../commands.version=v1.2.3").
var version = ""

// Exit codes (docs/cli-abi.md).
const (
	exitOK          = 0
	exitError       = 1
	exitUsage       = 2
	exitDecryption  = 3
	exitNotFound    = 4
	exitExists      = 5
	exitCorrupt     = 6
	exitLocked      = 7
	exitPermissions = 8
	exitRefused     = 9
	exitOrphaned    = 10
	exitProblems    = 11
	// keytree run, when the program cannot be started, as shells have
	// them; once it has started, its own status.
	exitCannotExecute  = 126
	exitCommandMissing = 127
)

// errLeftOrphans ends a --force restore or regenerate that committed but
// orphaned values (P18). What happened is printed already (15584, the
// warning); report adds nothing and exits with exitOrphaned, so that a
// script notices that not all of its values can be read now.
var errLeftOrphans = errors.New("the operation completed, but values are left orphaned")

// Global flag names.
const (
	flagKeystore        = "keystore"
	flagAccountDir      = "account-dir"
	flagMachineDir      = "machine-dir"
	flagLockTimeout     = "lock-timeout"
	flagAllowOtherOwner = "allow-other-owner"
	flagCreateProtDirs  = "create-protector-dirs"
	flagJSON            = "json"
	flagFile            = "file"
	flagPassword        = "password-file"
	flagOpenPass        = "open-password-file"
	flagForce           = "force"
	flagAlgorithm       = "algorithm"
	flagNoPolicy        = "no-password-policy"
)

// env is what a command runs against: the standard streams and whether they
// are terminals. Tests build one with buffers.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	stdinTTY       bool
	stdoutTTY      bool
	stderrTTY      bool
	// tty opens the terminal for a prompt; nil when there is none.
	tty func() (*os.File, error)
	// args are the arguments keytree was run with, for the messages that
	// urfave/cli gives no access to them in (a mistyped verb followed by
	// flags: setGroupUsageErrors).
	args []string
}

// Main runs keytree with args (os.Args) and returns the exit status.
func Main(args []string) int {
	harden()
	e := &env{
		stdin:     os.Stdin,
		stdout:    os.Stdout,
		stderr:    os.Stderr,
		stdinTTY:  term.IsTerminal(int(os.Stdin.Fd())),
		stdoutTTY: term.IsTerminal(int(os.Stdout.Fd())),
		stderrTTY: term.IsTerminal(int(os.Stderr.Fd())),
		tty:       openTTY,
	}
	return e.run(args)
}

func (e *env) run(args []string) int {
	return e.runApp(e.newApp(), args)
}

// runApp runs app, keytree's command table as newApp builds it (or with a
// verb's run function replaced, in a test), with args.
func (e *env) runApp(app *cli.App, args []string) int {
	e.args = args
	if n := len(args); n > 0 && args[n-1] == completionFlag {
		// A completion script asking for candidates. It does not go
		// through permuteArgs, whose "--" before positional arguments
		// would make urfave/cli ignore the request, nor through
		// urfave/cli at all (complete says why).
		e.complete(app, args[1:n-1])
		return exitOK
	}
	err := app.Run(permuteArgs(app, args))
	return e.report(err)
}

// usageHint ends every usage error that has no better hint of its own.
const usageHint = "see 'keytree --help' or 'keytree COMMAND --help'"

// usageError is a mistake in how keytree was called.
type usageError struct{ msg string }

func (u *usageError) Error() string { return u.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

func (e *env) newApp() *cli.App {
	app := &cli.App{
		Name:    "keytree",
		Usage:   "keep secrets under a SQL Server-style key hierarchy",
		Version: buildVersion(),
		Description: `keytree keeps credentials and secrets in a keystore directory, encrypted under a
service master key (SMK) that is protected twice, by your OS account and by this
machine, and heals itself when one of the two protections breaks. Databases hold
secrets under database master keys protected by passwords and, by default, the SMK.

Examples:
   keytree init
   printf '%s' "$DB_PASSWORD" | keytree credential set backup-db --identity svc_backup
   keytree credential get backup-db
   keytree status`,
		EnableBashCompletion: true,
		// A file name or a --keep value may hold a comma: one value per flag.
		DisableSliceFlagSeparator: true,
		Reader:                    e.stdin,
		Writer:                    e.stdout,
		ErrWriter:                 e.stderr,
		// Errors are reported, and exit codes chosen, in one place: report.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError:   onUsageError,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: flagKeystore, Usage: "keystore `DIR`", EnvVars: []string{"KEYTREE_DIR"}},
			&cli.StringFlag{Name: flagAccountDir, Usage: "account protector `DIR`", EnvVars: []string{"KEYTREE_ACCOUNT_DIR"}},
			&cli.StringFlag{Name: flagMachineDir, Usage: "machine protector `DIR`", EnvVars: []string{"KEYTREE_MACHINE_DIR"}},
			&cli.BoolFlag{Name: flagAllowOtherOwner, Usage: "use a keystore that belongs to another account (root or an administrator inspecting a user's keystore)", EnvVars: []string{"KEYTREE_ALLOW_OTHER_OWNER"}},
			&cli.BoolFlag{Name: flagCreateProtDirs, Usage: "create a missing account or machine directory to re-create an encryption in (only init does otherwise)"},
			&cli.StringFlag{Name: flagLockTimeout, Usage: "how long to wait for another keytree process: `SECONDS` (30) or a duration (500ms, 2m)", DefaultText: keystore.DefaultLockTimeout.String(), EnvVars: []string{"KEYTREE_LOCK_TIMEOUT"}},
		},
		Commands: []*cli.Command{
			e.initCommand(nil),
			e.statusCommand(nil),
			e.keyEncryptionsCommand(nil),
			e.errorlogCommand(nil),
			group("keystore", "copy the whole keystore to one file, and bring it back",
				e.keystoreBackupCommand(nil),
				e.keystoreRestoreCommand(nil),
				e.keystoreAcceptRollbackCommand(nil),
			),
			group("smk", "manage the service master key",
				e.smkBackupCommand(nil),
				e.smkRestoreCommand(nil),
				e.smkRegenerateCommand(nil),
				e.smkRecoverCommand(nil),
				e.smkAlterCommand(nil),
				e.smkVerifyCommand(nil),
				e.smkMachineProtectionCommand(nil),
			),
			group("credential", "keep secrets under the service master key",
				e.credentialSetCommand(nil),
				e.credentialGetCommand(nil),
				e.credentialImportCommand(nil),
				e.credentialListCommand(nil),
				e.credentialRmCommand(nil),
			),
			group("dmk", "manage database master keys",
				e.dmkCreateCommand(nil),
				e.dmkAddEncryptionCommand(nil),
				e.dmkDropEncryptionCommand(nil),
				e.dmkRegenerateCommand(nil),
				e.dmkBackupCommand(nil),
				e.dmkRestoreCommand(nil),
				e.dmkRecoverCommand(nil),
				e.dmkDropCommand(nil),
			),
			group("db", "list, export and import databases",
				e.dbListCommand(nil),
				e.dbExportCommand(nil),
				e.dbImportCommand(nil),
			),
			group("secret", "keep secrets in databases, under their master keys",
				e.secretSetCommand(nil),
				e.secretGetCommand(nil),
				e.secretImportCommand(nil),
				e.secretListCommand(nil),
				e.secretRmCommand(nil),
			),
			e.runCommand(nil),
			e.injectCommand(nil),
			e.upgradeCommand(nil),
			e.doctorCommand(nil),
			e.completionCommand(nil),
			e.versionCommand(nil),
		},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return unknownCommand(c.App.Commands, c.Args().First(), "")
			}
			return cli.ShowAppHelp(c)
		},
	}
	e.addHelpCommand(app)
	setUsageErrors(app.Commands)
	e.setGroupUsageErrors(app.Commands, "")
	return app
}

func onUsageError(c *cli.Context, err error, isSubcommand bool) error {
	if serr := secretFlagError(err); serr != nil {
		return serr
	}
	return &usageError{msg: err.Error()}
}

// setUsageErrors makes every command report flag mistakes as usage errors
// (exit 2) rather than print urfave/cli's own message.
func setUsageErrors(cmds []*cli.Command) {
	for _, c := range cmds {
		c.OnUsageError = onUsageError
		setUsageErrors(c.Subcommands)
	}
}

// setGroupUsageErrors makes a mistyped verb followed by flags (keytree smk
// bakcup --file F) an unknown command, with its suggestion, rather than an
// unknown flag of the group: the group has no flags, and urfave/cli parses
// them before the group's action could see the verb.
func (e *env) setGroupUsageErrors(cmds []*cli.Command, parent string) {
	for _, c := range cmds {
		if len(c.Subcommands) == 0 {
			continue
		}
		group := strings.TrimSpace(parent + " " + c.Name)
		subs := c.Subcommands
		c.OnUsageError = func(ctx *cli.Context, err error, isSubcommand bool) error {
			// A flag that would take a secret comes first: what follows
			// it may be the secret, and must not be echoed as a verb.
			if serr := secretFlagError(err); serr != nil {
				return serr
			}
			if verb := verbAfter(e.args, c.Name); verb != "" && findCommand(subs, verb) == nil {
				return unknownCommand(subs, verb, group)
			}
			return onUsageError(ctx, err, isSubcommand)
		}
		e.setGroupUsageErrors(c.Subcommands, group)
	}
}

// verbAfter is the first argument after group that is not a flag, or "".
func verbAfter(args []string, group string) string {
	for i, a := range args {
		if a != group {
			continue
		}
		for _, v := range args[i+1:] {
			if v == "--" {
				return ""
			}
			if !strings.HasPrefix(v, "-") {
				return v
			}
		}
		return ""
	}
	return ""
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// report prints err as keytree's users see it and returns the exit status.
// Every line is escaped (escape): error texts carry file names and paths
// read from a keystore that may be hostile, and one with a newline must not
// forge a line either.
func (e *env) report(err error) int {
	if err == nil {
		return exitOK
	}
	if errors.Is(err, errLeftOrphans) {
		return exitOrphaned
	}
	var ce *childExit
	if errors.As(err, &ce) {
		// keytree run: the program's status, or why it did not start.
		if ce.msg != "" {
			fmt.Fprintf(e.stderr, "keytree: error: %s\n", escape(ce.msg))
		}
		return ce.code
	}
	var dp *errDoctorProblems
	if errors.As(err, &dp) {
		fmt.Fprintf(e.stderr, "keytree: error: %s\n", dp)
		fmt.Fprintf(e.stderr, "keytree: hint: the lines marked problem above say what and what to do\n")
		return exitProblems
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(e.stderr, "keytree: error: %s\n", escape(ue.msg))
		fmt.Fprintf(e.stderr, "keytree: hint: %s\n", usageHint)
		return exitUsage
	}
	var ke *keystore.Error
	if errors.As(err, &ke) {
		if ke.Number != 0 {
			fmt.Fprintf(e.stderr, "keytree: error %d: %s\n", ke.Number, escape(ke.Message()))
		} else {
			fmt.Fprintf(e.stderr, "keytree: error: %s\n", escape(ke.Message()))
		}
		for _, d := range ke.Detail {
			fmt.Fprintf(e.stderr, "keytree:   %s\n", escape(d))
		}
		switch hint := hintText(ke); {
		case hint != "":
			fmt.Fprintf(e.stderr, "keytree: hint: %s\n", escape(hint))
		case errors.Is(err, keystore.ErrInvalid):
			// Invalid input (a name, an identity) is a usage error: it
			// ends with the usage hint as every other one does.
			fmt.Fprintf(e.stderr, "keytree: hint: %s\n", usageHint)
		}
	} else {
		fmt.Fprintf(e.stderr, "keytree: error: %s\n", escape(err.Error()))
	}
	return exitCode(err)
}

func exitCode(err error) int {
	for _, m := range []struct {
		kind error
		code int
	}{
		{keystore.ErrInvalid, exitUsage},
		{keystore.ErrDecryption, exitDecryption},
		{keystore.ErrNotFound, exitNotFound},
		{keystore.ErrExists, exitExists},
		{keystore.ErrCorrupt, exitCorrupt},
		{keystore.ErrLocked, exitLocked},
		{keystore.ErrPermissions, exitPermissions},
		{keystore.ErrRefused, exitRefused},
	} {
		if errors.Is(err, m.kind) {
			return m.code
		}
	}
	return exitError
}

// keystoreOptions builds the keystore options from the global flags (or
// their variables) and the OS defaults.
func (e *env) keystoreOptions(g globalOptions) (keystore.Options, error) {
	dirs := keystore.Dirs{Keystore: g.Keystore, Account: g.AccountDir, Machine: g.MachineDir}
	if err := defaultDirs(&dirs); err != nil {
		return keystore.Options{}, err
	}
	timeout, err := parseLockTimeout(g.LockTimeout)
	if err != nil {
		return keystore.Options{}, err
	}
	return keystore.Options{
		Dirs:        dirs,
		LockTimeout: timeout,

		AllowOtherOwner:     g.AllowOtherOwner,
		CreateProtectorDirs: g.CreateProtectorDirs,
		// A repair (a re-created SMK encryption) and a warning are
		// printed whether or not stderr is a terminal: they change, or
		// threaten, what protects the keystore, and a script's or cron
		// job's log is where someone will look for them.
		Notice: func(msg string) {
			fmt.Fprintf(e.stderr, "keytree: note: %s\n", escape(msg))
		},
		Warning: func(msg string) {
			fmt.Fprintf(e.stderr, "keytree: warning: %s\n", escape(msg))
		},
	}, nil
}

// defaultDirs fills in the directories that dirs does not give with the
// defaults, and only those: the defaults need a home directory, which a
// service account may not have.
func defaultDirs(dirs *keystore.Dirs) error {
	if dirs.Keystore != "" && dirs.Account != "" && dirs.Machine != "" {
		return nil
	}
	def, err := keystore.DefaultDirs()
	if err != nil {
		return defaultDirsError(err)
	}
	for _, f := range []struct{ dst, def *string }{
		{&dirs.Keystore, &def.Keystore}, {&dirs.Account, &def.Account}, {&dirs.Machine, &def.Machine},
	} {
		if *f.dst == "" {
			*f.dst = *f.def
		}
	}
	return nil
}

// defaultDirsError adds to keystore.ErrNoHome the variables that name the
// directories when there is no home directory to find them in.
func defaultDirsError(err error) error {
	if errors.Is(err, keystore.ErrNoHome) {
		return fmt.Errorf("%w; set KEYTREE_DIR, KEYTREE_ACCOUNT_DIR and KEYTREE_MACHINE_DIR", err)
	}
	return err
}

// parseLockTimeout reads --lock-timeout (or KEYTREE_LOCK_TIMEOUT): a
// number of seconds (30, 2.5), as people and cron jobs write it, or a Go
// duration (500ms, 2m). Empty and 0 mean the default. A negative or
// unreadable value is a usage error: silently waiting the default instead
// would hide the mistake until the job that set it fails for lack of time.
func parseLockTimeout(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	bad := func() error {
		return usagef("invalid lock timeout %q: give seconds (30) or a duration (500ms, 2m) in --lock-timeout or KEYTREE_LOCK_TIMEOUT", s)
	}
	if strings.Trim(s, "0123456789.") == "" {
		// Plain seconds; ParseFloat alone would also take "1e3", "0x1p4"
		// and "inf".
		secs, err := strconv.ParseFloat(s, 64)
		if err != nil || secs > float64(math.MaxInt64/time.Second) {
			return 0, bad()
		}
		return time.Duration(secs * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, bad()
	}
	return d, nil
}

// openKeystore opens the keystore the global options name, for a run
// function.
func (e *env) openKeystore(g globalOptions) (*invocation, error) {
	opts, err := e.keystoreOptions(g)
	if err != nil {
		return nil, err
	}
	ks, err := keystore.Open(opts)
	if err != nil {
		return nil, err
	}
	return &invocation{e: e, ks: ks}, nil
}

// group makes a command whose verbs are its subcommands. Called without a
// verb it shows its help, with the subcommands' examples; with an unknown
// one, it is a usage error.
func group(name, usage string, subs ...*cli.Command) *cli.Command {
	var examples []string
	for _, sub := range subs {
		if _, ex, ok := strings.Cut(sub.UsageText, "Example"); ok {
			_, ex, _ = strings.Cut(ex, "\n")
			for _, line := range strings.Split(ex, "\n") {
				if strings.HasPrefix(line, "   keytree ") {
					examples = append(examples, line)
					break
				}
			}
		}
	}
	return &cli.Command{
		Name:        name,
		Usage:       usage,
		Description: "Examples:\n" + strings.Join(examples, "\n"),
		Subcommands: subs,
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return unknownCommand(c.Command.Subcommands, c.Args().First(), cmdName(c))
			}
			return cli.ShowSubcommandHelp(c)
		},
	}
}

// unknownCommand reports a command (or, in group, a verb) that does not
// exist, suggesting the one that was probably meant: the one it is a prefix
// of, or one a typo or two away.
func unknownCommand(cmds []*cli.Command, name, group string) error {
	msg := fmt.Sprintf("unknown command %q", name)
	if group != "" {
		msg += " for " + group
	}
	var names []string
	for _, c := range cmds {
		if !c.Hidden {
			names = append(names, c.Names()...)
		}
	}
	var prefixed []string
	for _, n := range names {
		if len(name) >= 2 && strings.HasPrefix(n, name) {
			prefixed = append(prefixed, n)
		}
	}
	near := keystore.NearestName(name, names)
	if len(prefixed) == 1 {
		near = prefixed[0]
	}
	if near != "" {
		full := "keytree " + near
		if group != "" {
			full = "keytree " + group + " " + near
		}
		msg += fmt.Sprintf("; did you mean %q?", full)
	}
	return &usageError{msg: msg}
}

// invocation is what a run function starts from: the keystore opened, and
// standard input claimed by at most one input.
type invocation struct {
	e     *env
	ks    *keystore.Keystore
	stdin stdinUse
}

// password reads the password that flag names, path (a file, - for
// standard input, or "" for a prompt on the terminal).
func (in *invocation) password(flag, path, prompt string, confirm bool) ([]byte, error) {
	return in.e.readPassword(passwordRequest{flag: flag, path: path, prompt: prompt, confirm: confirm}, &in.stdin)
}

func timeString(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// cmdName is the command's name as typed: "credential get".
func cmdName(c *cli.Context) string {
	return strings.TrimPrefix(c.Command.HelpName, c.App.Name+" ")
}
