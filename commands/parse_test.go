package commands

import (
	"bytes"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// parseCase is one row of a verb's flags -> options table: a command line,
// and either the options it parses to or the exit status and the error
// line it is refused with.
type parseCase[T any] struct {
	// args is the command line after "keytree", split at spaces; '' is an
	// empty argument.
	args string
	want *T     // the options; nil when the command line is refused
	code int    // with want nil: the exit status (0 means exitUsage)
	err  string // with want nil: the start of the error line, after "keytree: error"
}

// testParse runs each case through keytree's whole command line handling
// (permuteArgs, urfave/cli, the verb's parse function) with the verb's run
// function replaced by one that keeps the options, as gh's TestNewCmdX
// does: nothing is opened, read or written.
func testParse[T any](t *testing.T, newCmd func(*env, func(*T) error) *cli.Command, cases []parseCase[T]) {
	t.Helper()
	unsetEnvironment(t)
	for _, tc := range cases {
		got, code, stderr := parse(t, newCmd, tc.args)
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
	}
}

// parse runs keytree with args, the verb that newCmd makes running its
// parse function only, and returns the options its run function would have
// had (nil if it was not reached), the exit status and standard error.
func parse[T any](t *testing.T, newCmd func(*env, func(*T) error) *cli.Command, args string) (*T, int, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr}
	var got *T
	cmd := newCmd(e, func(opts *T) error { got = opts; return nil })
	app := e.newApp()
	target := findVerb(app.Commands, cmd.UsageText)
	if target == nil {
		t.Fatalf("no command in keytree's table has the usage text of %s", cmd.Name)
	}
	target.Action = cmd.Action
	argv := []string{"keytree"}
	for _, a := range strings.Fields(args) {
		if a == "''" {
			a = ""
		}
		argv = append(argv, a)
	}
	code := e.runApp(app, argv)
	if stdout.Len() > 0 {
		t.Errorf("keytree %s wrote %q to standard output", args, stdout.String())
	}
	return got, code, stderr.String()
}

// unsetEnvironment unsets the KEYTREE_ variables for the test, so that the
// global options are the flags'.
func unsetEnvironment(t *testing.T) {
	for _, v := range environment {
		t.Setenv(v.name, "")
		os.Unsetenv(v.name)
	}
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

// TestParseGlobals: the global flags reach a verb's options as given,
// before or after the command (permuteArgs), from their KEYTREE_
// variables, and a flag wins over its variable. They are not interpreted
// here: a bad lock timeout is refused when the keystore is opened.
func TestParseGlobals(t *testing.T) {
	all := globalOptions{Keystore: "K", AccountDir: "A", MachineDir: "M", LockTimeout: "soon", AllowOtherOwner: true, CreateProtectorDirs: true}
	testParse(t, (*env).statusCommand, []parseCase[statusOptions]{
		{args: "status", want: &statusOptions{}},
		{args: "--keystore K --account-dir A --machine-dir M --lock-timeout soon --allow-other-owner --create-protector-dirs status",
			want: &statusOptions{Globals: all}},
		{args: "status --keystore K --account-dir A --machine-dir M --lock-timeout soon --allow-other-owner --create-protector-dirs --json",
			want: &statusOptions{Globals: all, JSON: true}},
		{args: "status --keystore=K", want: &statusOptions{Globals: globalOptions{Keystore: "K"}}},
	})
	for name, value := range map[string]string{
		"KEYTREE_DIR": "K", "KEYTREE_ACCOUNT_DIR": "A", "KEYTREE_MACHINE_DIR": "M",
		"KEYTREE_LOCK_TIMEOUT": "soon", "KEYTREE_ALLOW_OTHER_OWNER": "1",
	} {
		t.Setenv(name, value)
	}
	got, code, stderr := parse(t, (*env).statusCommand, "status --keystore flag")
	want := globalOptions{Keystore: "flag", AccountDir: "A", MachineDir: "M", LockTimeout: "soon", AllowOtherOwner: true}
	if code != 0 || got == nil || got.Globals != want {
		t.Errorf("status --keystore flag with the KEYTREE_ variables set: exit %d, %+v, want %+v\n%s", code, got, want, stderr)
	}
}
