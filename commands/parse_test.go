package commands

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/keytree-dev/keytree/keystore"
	"github.com/keytree-dev/keytree/protect"
)

// verb adapts a verb's constructor for the parse tests: its run function
// keeps the options it is given and does nothing else.
func verb[T any](newCmd func(*env, func(*T) error) *cli.Command) func(*env, func(any)) *cli.Command {
	return func(e *env, keep func(any)) *cli.Command {
		return newCmd(e, func(opts *T) error { keep(opts); return nil })
	}
}

// verbs are every verb of keytree (TestParse checks that none is missing).
var verbs = []func(*env, func(any)) *cli.Command{
	verb((*env).initCommand), verb((*env).statusCommand), verb((*env).keyEncryptionsCommand), verb((*env).errorlogCommand),
	verb((*env).keystoreBackupCommand), verb((*env).keystoreRestoreCommand), verb((*env).keystoreAcceptRollbackCommand),
	verb((*env).smkBackupCommand), verb((*env).smkRestoreCommand), verb((*env).smkRegenerateCommand), verb((*env).smkRecoverCommand),
	verb((*env).smkAlterCommand), verb((*env).smkVerifyCommand), verb((*env).smkMachineProtectionCommand),
	verb((*env).credentialSetCommand), verb((*env).credentialGetCommand), verb((*env).credentialImportCommand), verb((*env).credentialListCommand), verb((*env).credentialRmCommand),
	verb((*env).dmkCreateCommand), verb((*env).dmkAddEncryptionCommand), verb((*env).dmkDropEncryptionCommand),
	verb((*env).dmkRegenerateCommand), verb((*env).dmkBackupCommand), verb((*env).dmkRestoreCommand),
	verb((*env).dmkRecoverCommand), verb((*env).dmkDropCommand),
	verb((*env).dbListCommand), verb((*env).dbExportCommand), verb((*env).dbImportCommand),
	verb((*env).secretSetCommand), verb((*env).secretGetCommand), verb((*env).secretImportCommand), verb((*env).secretListCommand), verb((*env).secretRmCommand),
	verb((*env).runCommand), verb((*env).injectCommand), verb((*env).upgradeCommand),
	verb((*env).doctorCommand), verb((*env).completionCommand), verb((*env).versionCommand),
}

// parse runs keytree with args, and standard output a terminal if
// stdoutTTY, through its whole command line handling (permuteArgs,
// urfave/cli, the verb's parse function), as gh's TestNewCmdX does, with
// every verb's run function one that keeps its options: nothing is opened,
// read or written. It returns the options
// (nil if no run function was reached), the verb that got them, the exit
// status and standard error.
func parse(t *testing.T, args string, stdoutTTY bool) (opts any, verb string, code int, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut, stdoutTTY: stdoutTTY}
	app := e.newApp()
	for _, v := range verbs {
		var cmd *cli.Command
		cmd = v(e, func(o any) { opts, verb = o, cmd.UsageText })
		target := findVerb(app.Commands, cmd.UsageText)
		if target == nil {
			t.Fatalf("no command in keytree's table has the usage text of %s", cmd.Name)
		}
		target.Action = cmd.Action
	}
	argv := []string{"keytree"}
	for _, a := range strings.Fields(args) {
		if a == "''" {
			a = ""
		}
		argv = append(argv, a)
	}
	code = e.runApp(app, argv)
	if out.Len() > 0 {
		t.Errorf("keytree %s wrote %q to standard output", args, out.String())
	}
	return opts, verb, code, errOut.String()
}

// findVerb finds the command whose usage text is usage: each verb's is its
// own.
func findVerb(cmds []*cli.Command, usage string) *cli.Command {
	for _, c := range cmds {
		if c.UsageText == usage && c.Action != nil {
			return c
		}
		if sub := findVerb(c.Subcommands, usage); sub != nil {
			return sub
		}
	}
	return nil
}

// unsetEnvironment unsets the KEYTREE_ variables for the test, so that the
// global options are the flags'.
func unsetEnvironment(t *testing.T) {
	for _, v := range environment {
		t.Setenv(v.name, "")
		os.Unsetenv(v.name)
	}
}

var allGlobals = globalOptions{Keystore: "K", AccountDir: "A", MachineDir: "M", LockTimeout: "soon", AllowOtherOwner: true, CreateProtectorDirs: true}

// parseCases are keytree's flags -> options table: a command line after
// "keytree" (split at spaces, a word of two apostrophes standing for an
// empty argument), run with standard output a terminal or not, and either
// the options the verb's run function gets or the exit status (0 means
// exitUsage) and the start of the error line, after "keytree: error", it
// is refused with.
var parseCases = []struct {
	args      string
	stdoutTTY bool
	want      any
	code      int
	err       string
}{
	// init
	{args: "init", want: &initOptions{Algorithm: protect.X25519}},
	{args: "init --algorithm mlkem768x25519", want: &initOptions{Algorithm: protect.MLKEM768X25519}},
	{args: "--keystore K init", want: &initOptions{Globals: globalOptions{Keystore: "K"}, Algorithm: protect.X25519}},
	{args: "init --algorithm rsa", err: `: unknown algorithm "rsa" (want x25519 or mlkem768x25519)`},
	{args: "init --algorithm ''", err: `: unknown algorithm ""`},
	// The arguments come first, and are not echoed.
	{args: "init hunter2 --algorithm rsa", err: ": init takes no arguments (got 1)"},
	{args: "init --password hunter2", err: ": keytree never takes a password or secret as a command-line argument: there is no --password"},
	{args: "init --nope", err: ": flag provided but not defined: -nope"},

	// status
	{args: "status", want: &reportOptions{}},
	{args: "status --json", want: &reportOptions{JSON: true}},
	{args: "status x", err: ": status takes no arguments (got 1)"},
	// The global flags are not the options of a verb that works on the
	// keystore: they name the keystore that keystoreAction opens.
	{args: "status --keystore K --json", want: &reportOptions{JSON: true}},

	// key-encryptions
	{args: "key-encryptions", want: &reportOptions{}},
	{args: "key-encryptions --json", want: &reportOptions{JSON: true}},
	{args: "key-encryptions x y", err: ": key-encryptions takes no arguments (got 2)"},

	// errorlog
	{args: "errorlog", want: &noOptions{}},
	{args: "errorlog x", err: ": errorlog takes no arguments (got 1)"},
	{args: "errorlog --json", err: ": flag provided but not defined: -json"},

	// keystore backup
	{args: "keystore backup --file ks.tar", want: &keystoreBackupOptions{File: "ks.tar"}},
	{args: "keystore backup --file -", want: &keystoreBackupOptions{File: "-"}},
	{args: "keystore backup --file=ks.tar", want: &keystoreBackupOptions{File: "ks.tar"}},
	{args: "keystore backup", err: ": keystore backup needs --file"},
	{args: "keystore backup --file ''", err: ": keystore backup needs --file"},
	{args: "keystore backup --file .", err: ": the file given to --file is a directory"},
	// --file is checked before the arguments.
	{args: "keystore backup x", err: ": keystore backup needs --file"},
	{args: "keystore backup x --file ks.tar", err: ": keystore backup takes no arguments (got 1)"},
	// An archive is not written to a terminal, before anything else is
	// looked at; to a file it is.
	{args: "keystore backup x --file -", stdoutTTY: true, code: exitRefused, err: ": refusing to write a keystore archive to the terminal"},
	{args: "keystore backup --file ks.tar", stdoutTTY: true, want: &keystoreBackupOptions{File: "ks.tar"}},

	// keystore restore
	{args: "keystore restore --file ks.tar", want: &keystoreRestoreOptions{File: "ks.tar"}},
	{args: "--keystore new keystore restore --file -", want: &keystoreRestoreOptions{Globals: globalOptions{Keystore: "new"}, File: "-"}},
	{args: "keystore restore", err: ": keystore restore needs --file"},
	{args: "keystore restore --file .", err: ": the file given to --file is a directory"},
	// The arguments are checked before --file.
	{args: "keystore restore x", err: ": keystore restore takes no arguments (got 1)"},

	// smk backup
	{args: "smk backup --file smk.age", want: &smkBackupOptions{File: "smk.age"}},
	{args: "smk backup --file smk.age --password-file - --no-password-policy",
		want: &smkBackupOptions{File: "smk.age", PasswordFile: "-", NoPasswordPolicy: true}},
	{args: "smk backup --password-file pw.txt --file=smk.age", want: &smkBackupOptions{File: "smk.age", PasswordFile: "pw.txt"}},
	{args: "smk backup", err: ": smk backup needs --file"},
	{args: "smk backup --file -", err: ": smk backup cannot use standard input or output: --file - is for values"},
	{args: "smk backup --file .", err: ": the file given to --file is a directory"},
	{args: "smk backup --file smk.age extra", err: ": smk backup takes no arguments (got 1)"},
	{args: "smk backup --force --file smk.age", err: ": flag provided but not defined: -force"},

	// smk restore
	{args: "smk restore --file smk.age", want: &smkRestoreOptions{File: "smk.age"}},
	{args: "smk restore --file smk.age --password-file pw.txt --force",
		want: &smkRestoreOptions{File: "smk.age", PasswordFile: "pw.txt", Force: true}},
	{args: "smk restore --force", err: ": smk restore needs --file"},
	{args: "smk restore --file -", err: ": smk restore cannot use standard input or output"},
	{args: "smk restore --file smk.age --no-password-policy", err: ": flag provided but not defined: -no-password-policy"},

	// smk regenerate
	// Without --algorithm, the current key's.
	{args: "smk regenerate", want: &smkRegenerateOptions{}},
	{args: "smk regenerate --force --algorithm mlkem768x25519", want: &smkRegenerateOptions{Force: true, Algorithm: protect.MLKEM768X25519}},
	{args: "smk regenerate --algorithm x25519", want: &smkRegenerateOptions{Algorithm: protect.X25519}},
	{args: "smk regenerate --algorithm ''", err: `: unknown algorithm ""`},
	// --algorithm is checked before the arguments.
	{args: "smk regenerate now --algorithm dsa", err: `: unknown algorithm "dsa"`},
	{args: "smk regenerate now", err: ": smk regenerate takes no arguments (got 1)"},

	// smk recover
	{args: "smk recover", want: &smkRecoverOptions{}},
	{args: "smk recover --file old.age", want: &smkRecoverOptions{File: "old.age"}},
	{args: "smk recover --file old.age --password-file -", want: &smkRecoverOptions{File: "old.age", PasswordFile: "-"}},
	{args: "smk recover --password-file pw.txt", err: ": --password-file is the password of a backup: give --file too"},
	{args: "smk recover --password-file ''", err: ": --password-file is the password of a backup: give --file too"},
	{args: "smk recover --file -", err: ": smk recover cannot use standard input or output"},
	{args: "smk recover --file .", err: ": the file given to --file is a directory"},
	{args: "smk recover x --file -", err: ": smk recover cannot use standard input or output"},
	{args: "smk recover x", err: ": smk recover takes no arguments (got 1)"},

	// smk alter
	{args: "smk alter --old-account-dir old", want: &smkAlterOptions{OldAccountDir: "old"}},
	{args: "smk alter --new-account-dir new", want: &smkAlterOptions{NewAccountDir: "new"}},
	{args: "smk alter", err: ": smk alter needs exactly one of --old-account-dir and --new-account-dir"},
	{args: "smk alter --old-account-dir old --new-account-dir new", err: ": smk alter needs exactly one of"},
	{args: "smk alter --old-account-dir ''", err: ": smk alter needs exactly one of"},
	{args: "smk alter x --old-account-dir old", err: ": smk alter takes no arguments (got 1)"},

	// smk verify
	{args: "smk verify", want: &reportOptions{}},
	{args: "smk verify --json", want: &reportOptions{JSON: true}},
	{args: "smk verify all", err: ": smk verify takes no arguments (got 1)"},

	// smk machine-protection
	{args: "smk machine-protection on", want: &smkMachineProtectionOptions{On: true}},
	{args: "smk machine-protection off", want: &smkMachineProtectionOptions{On: false}},
	{args: "smk machine-protection", err: ": smk machine-protection needs off or on"},
	{args: "smk machine-protection on off", err: ": smk machine-protection takes a single argument, off or on (got 2)"},
	{args: "smk machine-protection ON", err: `: machine-protection takes off or on, not "ON"`},
	{args: "smk machine-protection -- -on", err: `: machine-protection takes off or on, not "-on"`},

	// dmk create
	{args: "dmk create --db payroll", want: &dmkCreateOptions{DB: "payroll", Algorithm: protect.X25519}},
	{args: "dmk create --db hr --password-file - --no-smk-encryption --no-password-policy --algorithm mlkem768x25519",
		want: &dmkCreateOptions{DB: "hr", PasswordFile: "-", NoSMKEncryption: true, NoPasswordPolicy: true, Algorithm: protect.MLKEM768X25519}},
	{args: "dmk create", err: ": dmk create needs --db"},
	{args: "dmk create --db ''", err: ": dmk create needs --db"},
	{args: "dmk create --db a/b", err: `: invalid database name "a/b": it contains a path separator`},
	// --algorithm, then the arguments, then --db.
	{args: "dmk create x --algorithm rsa", err: `: unknown algorithm "rsa"`},
	{args: "dmk create x", err: ": dmk create takes no arguments (got 1)"},

	// dmk drop
	{args: "dmk drop --db scratch", want: &dmkDropOptions{DB: "scratch"}},
	{args: "dmk drop --db scratch -y", want: &dmkDropOptions{DB: "scratch", Yes: true}},
	{args: "dmk drop --yes --db=scratch", want: &dmkDropOptions{DB: "scratch", Yes: true}},
	{args: "dmk drop scratch", err: ": dmk drop takes no arguments (got 1)"},
	{args: "dmk drop", err: ": dmk drop needs --db"},

	// dmk add-encryption
	{args: "dmk add-encryption --db payroll --by smk", want: &dmkAddEncryptionOptions{DB: "payroll", By: keystore.BySMK}},
	{args: "dmk add-encryption --db payroll --by password --password-file new.txt --open-password-file open.txt --no-password-policy",
		want: &dmkAddEncryptionOptions{DB: "payroll", By: keystore.ByPassword, PasswordFile: new("new.txt"), OpenPasswordFile: new("open.txt"), NoPasswordPolicy: true}},
	// Given empty is given, and asks on the terminal; not given opens by the SMK.
	{args: "dmk add-encryption --db payroll --by smk --open-password-file ''",
		want: &dmkAddEncryptionOptions{DB: "payroll", By: keystore.BySMK, OpenPasswordFile: new("")}},
	// Refused only once the keystore is open, as it always was.
	{args: "dmk add-encryption --db payroll --by smk --password-file new.txt",
		want: &dmkAddEncryptionOptions{DB: "payroll", By: keystore.BySMK, PasswordFile: new("new.txt")}},
	{args: "dmk add-encryption --db payroll", err: ": dmk add-encryption needs --by smk or --by password"},
	{args: "dmk add-encryption --db payroll --by certificate", err: `: --by takes smk or password, not "certificate"`},
	{args: "dmk add-encryption x --by smk", err: ": dmk add-encryption takes no arguments (got 1)"},
	{args: "dmk add-encryption --by smk", err: ": dmk add-encryption needs --db"},
	{args: "dmk add-encryption --db payroll --by smk --yes", err: ": flag provided but not defined: -yes"},

	// dmk drop-encryption
	{args: "dmk drop-encryption --db payroll --by smk", want: &dmkDropEncryptionOptions{DB: "payroll", By: keystore.BySMK}},
	{args: "dmk drop-encryption --db payroll --by password --password-file old.txt -y",
		want: &dmkDropEncryptionOptions{DB: "payroll", By: keystore.ByPassword, PasswordFile: "old.txt", Yes: true}},
	{args: "dmk drop-encryption --db payroll --by ''", err: ": dmk drop-encryption needs --by smk or --by password"},
	{args: "dmk drop-encryption --by smk --db .hidden", err: `: invalid database name ".hidden"`},
	{args: "dmk drop-encryption --db payroll --by smk --open-password-file p",
		want: &dmkDropEncryptionOptions{DB: "payroll", By: keystore.BySMK, OpenPasswordFile: new("p")}},

	// dmk regenerate
	{args: "dmk regenerate --db payroll", want: &dmkRegenerateOptions{DB: "payroll"}},
	{args: "dmk regenerate --db payroll --password-file new.txt --open-password-file open.txt --force --no-password-policy --algorithm mlkem768x25519",
		want: &dmkRegenerateOptions{DB: "payroll", PasswordFile: "new.txt", OpenPasswordFile: new("open.txt"), Force: true, NoPasswordPolicy: true, Algorithm: protect.MLKEM768X25519}},
	{args: "dmk regenerate --db payroll --algorithm aes", err: `: unknown algorithm "aes"`},
	{args: "dmk regenerate --algorithm aes", err: `: unknown algorithm "aes"`},
	{args: "dmk regenerate", err: ": dmk regenerate needs --db"},

	// dmk backup
	{args: "dmk backup --db payroll --file dmk.age", want: &dmkBackupOptions{DB: "payroll", File: "dmk.age"}},
	{args: "dmk backup --db payroll --file dmk.age --password-file pw --open-password-file open.txt --no-password-policy",
		want: &dmkBackupOptions{DB: "payroll", File: "dmk.age", PasswordFile: "pw", OpenPasswordFile: new("open.txt"), NoPasswordPolicy: true}},
	// --db before --file.
	{args: "dmk backup", err: ": dmk backup needs --db"},
	{args: "dmk backup --db payroll", err: ": dmk backup needs --file"},
	{args: "dmk backup --db payroll --file -", err: ": dmk backup cannot use standard input or output"},
	{args: "dmk backup --db payroll --file .", err: ": the file given to --file is a directory"},

	// dmk restore
	{args: "dmk restore --db payroll --file dmk.age", want: &dmkRestoreOptions{DB: "payroll", File: "dmk.age"}},
	{args: "dmk restore --db payroll --file dmk.age --password-file pw --new-password-file open.txt --force --no-password-policy",
		want: &dmkRestoreOptions{DB: "payroll", File: "dmk.age", PasswordFile: "pw", NewPasswordFile: new("open.txt"), Force: true, NoPasswordPolicy: true}},
	{args: "dmk restore --db payroll --file dmk.age --open-password-file open.txt",
		want: &dmkRestoreOptions{DB: "payroll", File: "dmk.age", OpenPasswordFile: new("open.txt")}},
	{args: "dmk restore --file dmk.age", err: ": dmk restore needs --db"},
	{args: "dmk restore --db payroll", err: ": dmk restore needs --file"},

	// dmk recover
	{args: "dmk recover --db payroll", want: &dmkRecoverOptions{DB: "payroll"}},
	{args: "dmk recover --db payroll --password-file old.txt", want: &dmkRecoverOptions{DB: "payroll", PasswordFile: "old.txt"}},
	{args: "dmk recover --db payroll --file old.age --password-file pw --open-password-file open.txt",
		want: &dmkRecoverOptions{DB: "payroll", File: "old.age", PasswordFile: "pw", OpenPasswordFile: new("open.txt")}},
	// --file - is refused once the keystore is open, as it always was.
	{args: "dmk recover --db payroll --file -", want: &dmkRecoverOptions{DB: "payroll", File: "-"}},
	{args: "dmk recover", err: ": dmk recover needs --db"},
	{args: "dmk recover --db payroll x", err: ": dmk recover takes no arguments (got 1)"},

	// db list
	{args: "db list", want: &reportOptions{}},
	{args: "db list --json", want: &reportOptions{JSON: true}},
	{args: "db list payroll", err: ": db list takes no arguments (got 1)"},

	// db export
	{args: "db export --db payroll --file payroll.tar", want: &dbExportOptions{DB: "payroll", File: "payroll.tar"}},
	{args: "db export --file payroll.tar", err: ": db export needs --db"},
	{args: "db export --db payroll", err: ": db export needs --file"},
	{args: "db export --db payroll --file -", err: ": db export cannot use standard input or output"},

	// db import
	{args: "db import --file payroll.tar", want: &dbImportOptions{File: "payroll.tar"}},
	{args: "db import --file payroll.tar --db payroll_copy", want: &dbImportOptions{File: "payroll.tar", DB: "payroll_copy"}},
	{args: "db import", err: ": db import needs --file"},
	{args: "db import payroll.tar", err: ": db import takes no arguments (got 1)"},
	{args: "db import --file payroll.tar --db copy --open-password-file pw.txt", want: &dbImportOptions{File: "payroll.tar", DB: "copy", OpenPasswordFile: new("pw.txt")}},

	// upgrade, keystore accept-rollback
	{args: "upgrade", want: &upgradeOptions{}},
	{args: "upgrade --open-password-file hr=hr.txt --open-password-file ops=-", want: &upgradeOptions{OpenPasswords: []dbFile{{DB: "hr", File: "hr.txt"}, {DB: "ops", File: "-"}}}},
	{args: "upgrade --open-password-file hr", err: ": --open-password-file takes DB=FILE: the database and the file that holds its password (- for standard input)"},
	{args: "upgrade now", err: ": upgrade takes no arguments (got 1)"},
	{args: "keystore accept-rollback", want: &noOptions{}},
	{args: "keystore accept-rollback 7", err: ": keystore accept-rollback takes no arguments (got 1)"},

	// credential set
	{args: "credential set backup-db --identity svc_backup", want: &credentialSetOptions{Name: "backup-db", Identity: "svc_backup"}},
	// Flags before or after the name, and a name that starts with a dash after --.
	{args: "credential set --identity web01 --file server.key --allow-empty tls-key",
		want: &credentialSetOptions{Name: "tls-key", Identity: "web01", File: "server.key", AllowEmpty: true}},
	{args: "credential set --identity x -- -dash", want: &credentialSetOptions{Name: "-dash", Identity: "x"}},
	// An empty identity is given: the keystore refuses it.
	{args: "credential set c --identity ''", want: &credentialSetOptions{Name: "c"}},
	{args: "credential set c", err: ": credential set needs --identity"},
	{args: "credential set --identity x", err: ": credential set needs a credential NAME"},
	{args: "credential set a b", err: ": credential set takes a single argument, a credential NAME (got 2)"},
	{args: "credential set c --identity x --password hunter2", err: ": keytree never takes a password or secret as a command-line argument: there is no --password"},

	// credential get
	{args: "credential get backup-db", want: &credentialGetOptions{Names: []string{"backup-db"}}},
	{args: "credential get --json backup-db", want: &credentialGetOptions{Names: []string{"backup-db"}, JSON: true}},
	{args: "credential get a b --json", want: &credentialGetOptions{Names: []string{"a", "b"}, JSON: true}},
	{args: "credential get a b", err: ": credential get of several names needs --json (got 2 names)"},
	{args: "credential get a b a --json", err: ": credential get names a twice"},
	{args: "secret get db/a db/a --json", err: ": secret get names db/a twice"},
	{args: "credential get", err: ": credential get needs a credential NAME"},
	// credential import
	{args: "credential import --file c.env", want: &importOptions{File: "c.env", Format: "env"}},
	{args: "credential import --file c.JSON --identity svc", want: &importOptions{File: "c.JSON", Format: "json", Identity: "svc"}},
	{args: "credential import --file - --format json", want: &importOptions{File: "-", Format: "json"}},
	{args: "credential import --file c.json --format env", want: &importOptions{File: "c.json", Format: "env"}},
	{args: "credential import --file c.env --format yaml", err: ": --format is env or json, not \"yaml\""},
	{args: "credential import", err: ": credential import needs --file"},
	{args: "credential import --file c.env extra", err: ": credential import takes no arguments (got 1)"},
	{args: "credential import --file c.env --identity ''", err: ": --identity: the identity is empty"},

	// credential list
	{args: "credential list", want: &reportOptions{}},
	{args: "credential list --json", want: &reportOptions{JSON: true}},
	{args: "credential list backup-db", err: ": credential list takes no arguments (got 1)"},

	// credential rm
	{args: "credential rm backup-db", want: &credentialRmOptions{Name: "backup-db"}},
	{args: "credential rm -y backup-db", want: &credentialRmOptions{Name: "backup-db", Yes: true}},
	// The name is checked before anything is opened or asked.
	{args: "credential rm ../x", err: `: invalid credential name "../x"`},
	{args: "credential rm", err: ": credential rm needs a credential NAME"},

	// secret set
	{args: "secret set payroll/api-token", want: &secretSetOptions{DB: "payroll", Name: "api-token"}},
	{args: "secret set payroll/key --file key.pem --open-password-file open.txt --allow-empty",
		want: &secretSetOptions{DB: "payroll", Name: "key", File: "key.pem", OpenPasswordFile: new("open.txt"), AllowEmpty: true}},
	{args: "secret set --file - payroll/key", want: &secretSetOptions{DB: "payroll", Name: "key", File: "-"}},
	{args: "secret set", err: ": secret set needs a secret DB/NAME"},
	{args: "secret set payroll/a payroll/b", err: ": secret set takes a single argument, a secret DB/NAME (got 2)"},
	{args: "secret set payroll", err: `: invalid secret path "payroll": want DB/NAME`},
	{args: "secret set payroll/.key", err: `: invalid secret name ".key"`},
	{args: "secret set payroll/key --value hunter2", err: ": keytree never takes a password or secret as a command-line argument: there is no --value"},

	// secret get
	{args: "secret get payroll/api-token", want: &secretGetOptions{Secrets: []keystore.Ref{secretRef("payroll", "api-token")}}},
	{args: "secret get hr/ssh-key --open-password-file open.txt", want: &secretGetOptions{Secrets: []keystore.Ref{secretRef("hr", "ssh-key")}, OpenPasswordFile: new("open.txt")}},
	{args: "secret get", err: ": secret get needs a secret DB/NAME"},
	{args: "secret get hr/ssh-key --json", want: &secretGetOptions{Secrets: []keystore.Ref{secretRef("hr", "ssh-key")}, JSON: true}},
	{args: "secret get hr/a hr/b --json --open-password-file p", want: &secretGetOptions{Secrets: []keystore.Ref{secretRef("hr", "a"), secretRef("hr", "b")}, JSON: true, OpenPasswordFile: new("p")}},
	{args: "secret get hr/a pay/b --json --open-password-file p", err: ": --open-password-file opens one database; hr and pay are two (keytree inject takes --open-password-file DB=FILE for each)"},
	{args: "secret get hr/a hr/b", err: ": secret get of several names needs --json (got 2 names)"},
	{args: "secret get hr/a nodb --json", err: ": invalid secret path"},
	// secret import
	{args: "secret import payroll --file s.env", want: &importOptions{DB: "payroll", File: "s.env", Format: "env"}},
	{args: "secret import hr --file s.json --open-password-file p", want: &importOptions{DB: "hr", File: "s.json", Format: "json", OpenPasswordFile: new("p")}},
	{args: "secret import --file s.env", err: ": secret import needs a database DB"},
	{args: "secret import hr --file - --open-password-file -", err: ": only one input can come from standard input, but both --file and --open-password-file use -"},
	{args: "secret import a/b --file s.env", err: ": invalid database name \"a/b\": it contains a path separator"},

	// secret list
	{args: "secret list", want: &secretListOptions{}},
	{args: "secret list payroll --json", want: &secretListOptions{DB: "payroll", JSON: true}},
	{args: "secret list payroll hr", err: ": secret list takes at most one database name"},

	// secret rm
	{args: "secret rm payroll/api-token", want: &secretRmOptions{DB: "payroll", Name: "api-token"}},
	{args: "secret rm payroll/api-token -y", want: &secretRmOptions{DB: "payroll", Name: "api-token", Yes: true}},
	{args: "secret rm", err: ": secret rm needs a secret DB/NAME"},

	// doctor
	{args: "doctor", want: &doctorOptions{}},
	{args: "doctor --json --machine-dir M", want: &doctorOptions{Globals: globalOptions{MachineDir: "M"}, JSON: true}},
	{args: "--keystore K --account-dir A --machine-dir M --lock-timeout soon --allow-other-owner --create-protector-dirs doctor",
		want: &doctorOptions{Globals: allGlobals}},
	{args: "doctor --keystore K --account-dir A --machine-dir M --lock-timeout soon --allow-other-owner --create-protector-dirs --json",
		want: &doctorOptions{Globals: allGlobals, JSON: true}},
	{args: "doctor --keystore=K", want: &doctorOptions{Globals: globalOptions{Keystore: "K"}}},
	{args: "doctor now", err: ": doctor takes no arguments (got 1)"},

	// completion
	{args: "completion bash", want: &completionOptions{Shell: "bash"}},
	{args: "completion powershell", want: &completionOptions{Shell: "powershell"}},
	{args: "completion", err: ": completion needs a shell (bash, zsh, fish or powershell)"},
	{args: "completion tcsh", err: `: no completion for "tcsh": choose bash, zsh, fish or powershell`},
	{args: "completion bash zsh", err: ": completion takes a single argument, a shell (bash, zsh, fish or powershell) (got 2)"},

	// run
	{args: "run --env A=keytree://credential/db -- sh -c true", want: &runOptions{
		Env: []binding{{Var: "A", Ref: keystore.Ref{Kind: keystore.RefCredential, Name: "db"}}}, Command: []string{"sh", "-c", "true"}}},
	{args: "run --env A=keytree://credential/db/identity sh -c true", want: &runOptions{
		Env: []binding{{Var: "A", Ref: keystore.Ref{Kind: keystore.RefCredentialIdentity, Name: "db"}}}, Command: []string{"sh", "-c", "true"}}},
	{args: "run --env-file a.env --env-file - -- ./app", want: &runOptions{EnvFiles: []string{"a.env", "-"}, Command: []string{"./app"}}},
	{args: "run --pristine --keep PATH --file F=keytree://secret/app/k prog --env x -- y", want: &runOptions{
		Files: []binding{{Var: "F", Ref: keystore.Ref{Kind: keystore.RefSecret, DB: "app", Name: "k"}}}, Pristine: true, Keep: []string{"PATH"},
		Command: []string{"prog", "--env", "x", "--", "y"}}},
	{args: "run --open-password-file hr=p.txt,x --env A=keytree://secret/hr/k -- true", want: &runOptions{
		Env: []binding{{Var: "A", Ref: keystore.Ref{Kind: keystore.RefSecret, DB: "hr", Name: "k"}}}, OpenPasswords: []dbFile{{DB: "hr", File: "p.txt,x"}},
		Command: []string{"true"}}},
	{args: "run --env A=keytree://credential/db", err: ": run needs a command to run"},
	{args: "run --env A -- true", err: ": --env takes VAR=REF"},
	{args: "run --env 1A=keytree://credential/db -- true", err: `: --env: "1A" is not a variable name`},
	{args: "run --env A=s3cr3t -- true", err: ": --env A=: "},
	{args: "run --env A=keytree://credential/db --file A=keytree://credential/x -- true", err: ": variable A is given twice (--env and --file)"},
	{args: "run --keep PATH -- true", err: ": --keep is for --pristine"},
	{args: "run --open-password-file hr -- true", err: ": --open-password-file takes DB=FILE"},
	{args: "run --open-password-file hr=a --open-password-file HR=b -- true", err: ": --open-password-file names database HR twice"},
	{args: "run --env-file - --open-password-file hr=- -- true", err: ": only one input can come from standard input, but both --env-file and --open-password-file use -"},
	{args: "run --open-password-file hr=- --open-password-file app=- -- true", err: ": only one input can come from standard input, but both --open-password-file and --open-password-file use -"},

	// inject
	{args: "inject -i app.tmpl -o app.conf", want: &injectOptions{Input: "app.tmpl", Output: "app.conf"}},
	{args: "inject --input - --output - --open-password-file hr=p.txt", want: &injectOptions{Input: "-", Output: "-", OpenPasswords: []dbFile{{DB: "hr", File: "p.txt"}}}},
	{args: "inject --input t.tmpl --open-password-file hr=-", want: &injectOptions{Input: "t.tmpl", OpenPasswords: []dbFile{{DB: "hr", File: "-"}}}},
	{args: "inject --input - --open-password-file hr=-", err: ": only one input can come from standard input, but both --input and --open-password-file use -"},
	{args: "inject -o app.conf", err: ": inject needs a template: -i TEMPLATE"},
	{args: "inject -i a b", err: ": inject takes no arguments (got 1)"},

	// version
	{args: "version", want: &noOptions{}},
	{args: "version --keystore K", want: &noOptions{}},
	{args: "version extra", err: ": version takes no arguments (got 1)"},
	{args: "version --json", err: ": flag provided but not defined: -json"},
}

// TestParse: every row of parseCases, and at least one command line that
// reaches each verb's run function.
func TestParse(t *testing.T) {
	unsetEnvironment(t)
	reached := map[string]bool{}
	for _, tc := range parseCases {
		got, verb, code, stderr := parse(t, tc.args, tc.stdoutTTY)
		switch {
		case tc.want != nil && (code != exitOK || stderr != ""):
			t.Errorf("keytree %s: exit %d, want options\n%s", tc.args, code, stderr)
		case tc.want != nil && !reflect.DeepEqual(got, tc.want):
			t.Errorf("keytree %s:\n got %+v\nwant %+v", tc.args, got, tc.want)
		case tc.want == nil && got != nil:
			t.Errorf("keytree %s: parsed to %+v, want it refused (%s)", tc.args, got, tc.err)
		case tc.want == nil:
			want := tc.code
			if want == 0 {
				want = exitUsage
			}
			if code != want || !strings.HasPrefix(stderr, "keytree: error"+tc.err) {
				t.Errorf("keytree %s: exit %d, stderr:\n%s\nwant exit %d and keytree: error%s", tc.args, code, stderr, want, tc.err)
			}
		}
		reached[verb] = true
	}
	var missing []string
	var walk func(cmds []*cli.Command)
	walk = func(cmds []*cli.Command) {
		for _, c := range cmds {
			if len(c.Subcommands) == 0 && c.Name != "help" && !reached[c.UsageText] {
				missing = append(missing, c.FullName())
			}
			walk(c.Subcommands)
		}
	}
	walk((&env{}).newApp().Commands)
	if len(missing) > 0 {
		t.Errorf("no row of parseCases reaches %q", missing)
	}
}

// TestParseGlobals: the KEYTREE_ variables reach the global options as the
// global flags do, and a flag wins over its variable. They are not
// interpreted in parsing: a bad lock timeout is refused when the keystore
// is opened, which for most verbs keystoreAction does, with the keystore
// the global flags name.
func TestParseGlobals(t *testing.T) {
	unsetEnvironment(t)
	for name, value := range map[string]string{
		"KEYTREE_DIR": "K", "KEYTREE_ACCOUNT_DIR": "A", "KEYTREE_MACHINE_DIR": "M",
		"KEYTREE_LOCK_TIMEOUT": "soon", "KEYTREE_ALLOW_OTHER_OWNER": "1",
	} {
		t.Setenv(name, value)
	}
	got, _, code, stderr := parse(t, "doctor --keystore flag", false)
	want := &doctorOptions{Globals: globalOptions{Keystore: "flag", AccountDir: "A", MachineDir: "M", LockTimeout: "soon", AllowOtherOwner: true}}
	if code != 0 || !reflect.DeepEqual(got, want) {
		t.Errorf("doctor --keystore flag with the KEYTREE_ variables set: exit %d, %+v, want %+v\n%s", code, got, want, stderr)
	}
	code, _, stderr = runKeytree("status")
	if code != exitUsage || !strings.Contains(stderr, `invalid lock timeout "soon"`) {
		t.Errorf("status with KEYTREE_LOCK_TIMEOUT=soon: exit %d\n%s", code, stderr)
	}
	missing := filepath.Join(tempDir(t), "missing")
	code, _, stderr = runKeytree("--lock-timeout", "1", "--keystore", missing, "secret", "list")
	if code != exitNotFound || !strings.Contains(stderr, missing) {
		t.Errorf("secret list with --keystore %s: exit %d\n%s", missing, code, stderr)
	}
}

func secretRef(db, name string) keystore.Ref {
	return keystore.Ref{Kind: keystore.RefSecret, DB: db, Name: name}
}
