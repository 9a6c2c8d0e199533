package commands

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// complete runs keytree as a completion script does: the words before the
// cursor, the word being completed, then completionFlag.
func (c *testCLI) complete(t *testing.T, words ...string) []string {
	t.Helper()
	code, stdout, stderr := c.run("", append(words, completionFlag)...)
	if code != 0 || stderr != "" {
		t.Fatalf("%q: exit %d\n%s", words, code, stderr)
	}
	return strings.Fields(stdout)
}

// TestCompletion: what keytree offers for each position, names from the
// keystore included, and no "help" after a command.
func TestCompletion(t *testing.T) {
	c := newTestCLI(t)
	for _, args := range [][]string{
		{"credential", "set", "mail", "--identity", "me"},
		{"credential", "set", "backup-db", "--identity", "svc"},
		{"secret", "set", "payroll/api-token"},
		{"secret", "set", "payroll/signing-key"},
		{"secret", "set", "hr/ssh-key"},
	} {
		if args[0] == "secret" {
			db, _, _ := strings.Cut(args[2], "/")
			c.run("Str0ng!Passw0rd-db", "dmk", "create", "--db", db, "--password-file", "-")
		}
		if code, _, stderr := c.run("value", args...); code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, code, stderr)
		}
	}
	for _, tc := range []struct {
		words []string
		want  []string
	}{
		{[]string{""}, []string{"init", "status", "key-encryptions", "errorlog", "keystore", "smk", "credential", "dmk", "db", "secret", "run", "inject", "upgrade", "doctor", "completion", "version", "help"}},
		{[]string{"cr"}, []string{"credential"}},
		{[]string{"credential", ""}, []string{"set", "get", "import", "list", "rm"}},
		{[]string{"smk", ""}, []string{"backup", "restore", "regenerate", "recover", "alter", "verify", "machine-protection"}},
		// Names, never values.
		{[]string{"credential", "get", ""}, []string{"backup-db", "mail"}},
		{[]string{"credential", "get", "ma"}, []string{"mail"}},
		{[]string{"credential", "rm", ""}, []string{"backup-db", "mail"}},
		{[]string{"secret", "get", ""}, []string{"hr/ssh-key", "payroll/api-token", "payroll/signing-key"}},
		{[]string{"secret", "rm", "payroll/s"}, []string{"payroll/signing-key"}},
		{[]string{"secret", "set", "p"}, []string{"payroll/", "payroll/api-token", "payroll/signing-key"}},
		{[]string{"secret", "list", ""}, []string{"hr", "payroll"}},
		{[]string{"dmk", "drop", "--db", ""}, []string{"hr", "payroll"}},
		{[]string{"dmk", "backup", "--file", "x", "--db", "p"}, []string{"payroll"}},
		{[]string{"db", "import", "--db", ""}, nil},
		{[]string{"dmk", "add-encryption", "--by", ""}, []string{"smk", "password"}},
		{[]string{"smk", "regenerate", "--algorithm", ""}, []string{"x25519", "mlkem768x25519"}},
		{[]string{"smk", "backup", "--file", ""}, nil},
		{[]string{"smk", "machine-protection", ""}, []string{"on", "off"}},
		{[]string{"completion", ""}, []string{"bash", "zsh", "fish", "powershell"}},
		{[]string{"help", ""}, []string{"init", "status", "key-encryptions", "errorlog", "keystore", "smk", "credential", "dmk", "db", "secret", "run", "inject", "upgrade", "doctor", "completion", "version", "exit-codes", "environment"}},
		// Flags after "-": the command's own, and the global ones.
		{[]string{"credential", "get", "-"}, []string{"--json", "--keystore", "--account-dir", "--machine-dir", "--allow-other-owner", "--create-protector-dirs", "--lock-timeout", "--help", "-h"}},
		{[]string{"credential", "rm", "mail", "--y"}, []string{"--yes"}},
		{[]string{"dmk", "drop", "--d"}, []string{"--db"}},
		{[]string{"--ke"}, []string{"--keystore"}},
		{[]string{"status", "--j"}, []string{"--json"}},
		{[]string{"smk", "--h"}, []string{"--help"}},
		// Flags given before do not hide the command, wherever they are.
		{[]string{"--lock-timeout", "30", "credential", "--json", "get", "m"}, []string{"mail"}},
		// No "help" after a command that takes no verb: its flags instead.
		{[]string{"credential", "get", "mail", ""}, []string{"--json"}},
		{[]string{"status", ""}, []string{"--json"}},
		{[]string{"init", ""}, []string{"--algorithm"}},
		{[]string{"version", ""}, nil},
		// After "--", words are arguments, not flags.
		{[]string{"credential", "get", "--", ""}, []string{"backup-db", "mail"}},
	} {
		if got := c.complete(t, tc.words...); !reflect.DeepEqual(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
			t.Errorf("%q: got %q, want %q", tc.words, got, tc.want)
		}
	}
	for _, words := range [][]string{{"credential", "get", "mail", ""}, {"secret", "get", "payroll/api-token", ""}, {"status", ""}, {"dmk", "drop", "--db", "payroll", ""}, {"init", ""}} {
		for _, w := range c.complete(t, words...) {
			if w == "help" || w == "h" {
				t.Errorf("%q offers %q", words, w)
			}
		}
	}

	// Another keystore named on the command line, or none at all: its
	// names, or nothing, quietly.
	other := newTestCLI(t)
	other.run("v", "credential", "set", "elsewhere", "--identity", "x")
	if got := c.complete(t, "--keystore", other.keystore, "credential", "get", ""); !reflect.DeepEqual(got, []string{"elsewhere"}) {
		t.Errorf("--keystore OTHER: got %q", got)
	}
	if got := c.complete(t, "--keystore", c.path("nosuch"), "credential", "get", ""); len(got) != 0 {
		t.Errorf("no keystore: got %q", got)
	}
}

// TestCompletionWritesNothing: completing names changes nothing in the
// keystore (no lock file created, no repair, no clean-up), and a file whose
// name is not a valid name, planted to reach the terminal, is not offered.
func TestCompletionWritesNothing(t *testing.T) {
	c := newTestCLI(t)
	c.run("hunter2", "credential", "set", "mail", "--identity", "me")
	// Invalidate the machine encryption: a command that opens the SMK
	// would re-create it. Completion must not. (On Windows the machine
	// secret is DPAPI's, and file names cannot hold control characters.)
	if runtime.GOOS != "windows" {
		if err := os.Remove(filepath.Join(c.machine, "machine.key")); err != nil {
			t.Fatal(err)
		}
		// A file planted with a name that is no keytree name: offered,
		// it would put an escape sequence on the terminal.
		if err := os.WriteFile(filepath.Join(c.keystore, "credentials", "x\x1b]0;owned\a.toml"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	before := snapshotTree(t, c.root)
	var out bytes.Buffer
	for _, words := range [][]string{{"credential", "get", ""}, {"secret", "get", ""}, {"dmk", "drop", "--db", ""}} {
		code, stdout, _ := c.run("", append(words, completionFlag)...)
		out.WriteString(stdout)
		if code != 0 {
			t.Fatalf("%q: exit %d", words, code)
		}
	}
	if strings.Contains(out.String(), "hunter2") {
		t.Error("a value was printed")
	}
	if strings.Contains(out.String(), "\x1b") || !strings.Contains(out.String(), "mail\n") {
		t.Errorf("the candidates: %q", out.String())
	}
	if after := snapshotTree(t, c.root); !reflect.DeepEqual(before, after) {
		t.Errorf("completion changed the keystore or the protectors:\nbefore %v\nafter  %v", before, after)
	}
}

// TestCompletionScripts: every shell's script is printed, PowerShell's
// included, and each passes the word being completed.
func TestCompletionScripts(t *testing.T) {
	c := newTestCLI(t)
	for shell, want := range map[string]string{
		"bash":       `"$cur" --generate-bash-completion`,
		"zsh":        `"$cur" --generate-bash-completion`,
		"fish":       `"$cur" --generate-bash-completion`,
		"powershell": "Register-ArgumentCompleter -Native -CommandName keytree",
	} {
		code, stdout, stderr := c.run("", "completion", shell)
		if code != 0 || !strings.Contains(stdout, want) {
			t.Errorf("completion %s: exit %d, no %q\n%s%s", shell, code, want, stdout, stderr)
		}
	}
}

// snapshotTree maps every path under root to its mode, size and content.
func snapshotTree(t *testing.T, root string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		v := fi.Mode().String()
		if fi.Mode().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			v += " " + string(data)
		}
		m[p] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}
