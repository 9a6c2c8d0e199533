package commands

import (
	"bytes"
	"strings"
	"testing"

	"github.com/keytree-dev/keytree/protect"
)

// TestKeystoreBackupToTerminal: a keystore archive is binary, and is not
// written to a terminal; the hint says how to redirect it.
func TestKeystoreBackupToTerminal(t *testing.T) {
	c := newTestCLI(t)
	var stdout, stderr bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, stdoutTTY: true}
	code := c.runWith(e, "keystore", "backup", "--file", "-")
	want := "keytree: error: refusing to write a keystore archive to the terminal\nkeytree: hint: redirect or pipe it: keytree keystore backup --file - > FILE, or give a file name\n"
	if code != exitRefused || stdout.Len() != 0 || stderr.String() != want {
		t.Fatalf("exit %d, stdout %d bytes, stderr:\n%s", code, stdout.Len(), stderr.String())
	}
	// Off a terminal the archive is written.
	code, out, errs := c.run("", "keystore", "backup", "--file", "-")
	if code != 0 || !strings.Contains(out, "keystore.toml") {
		t.Fatalf("to a pipe: exit %d, %d bytes\n%s", code, len(out), errs)
	}
}

func TestParseInit(t *testing.T) {
	testParse(t, (*env).initCommand, []parseCase[initOptions]{
		{args: "init", want: &initOptions{Algorithm: protect.X25519}},
		{args: "init --algorithm mlkem768x25519", want: &initOptions{Algorithm: protect.MLKEM768X25519}},
		{args: "--keystore K init", want: &initOptions{Globals: globalOptions{Keystore: "K"}, Algorithm: protect.X25519}},
		{args: "init --algorithm rsa", err: `: unknown algorithm "rsa" (want x25519 or mlkem768x25519)`},
		{args: "init --algorithm ''", err: `: unknown algorithm ""`},
		// The arguments come first, and are not echoed.
		{args: "init hunter2 --algorithm rsa", err: ": init takes no arguments (got 1)"},
		{args: "init --password hunter2", err: ": keytree never takes a password or secret as a command-line argument: there is no --password"},
		{args: "init --nope", err: ": flag provided but not defined: -nope"},
	})
}

func TestParseStatusAndListings(t *testing.T) {
	testParse(t, (*env).statusCommand, []parseCase[statusOptions]{
		{args: "status", want: &statusOptions{}},
		{args: "status --json", want: &statusOptions{JSON: true}},
		{args: "status x", err: ": status takes no arguments (got 1)"},
	})
	testParse(t, (*env).keyEncryptionsCommand, []parseCase[keyEncryptionsOptions]{
		{args: "key-encryptions", want: &keyEncryptionsOptions{}},
		{args: "key-encryptions --json", want: &keyEncryptionsOptions{JSON: true}},
		{args: "key-encryptions x y", err: ": key-encryptions takes no arguments (got 2)"},
	})
	testParse(t, (*env).errorlogCommand, []parseCase[errorlogOptions]{
		{args: "errorlog", want: &errorlogOptions{}},
		{args: "errorlog x", err: ": errorlog takes no arguments (got 1)"},
		{args: "errorlog --json", err: ": flag provided but not defined: -json"},
	})
}

func TestParseKeystoreBackupRestore(t *testing.T) {
	testParse(t, (*env).keystoreBackupCommand, []parseCase[keystoreBackupOptions]{
		{args: "keystore backup --file ks.tar", want: &keystoreBackupOptions{File: "ks.tar"}},
		{args: "keystore backup --file -", want: &keystoreBackupOptions{File: "-"}},
		{args: "keystore backup --file=ks.tar", want: &keystoreBackupOptions{File: "ks.tar"}},
		{args: "keystore backup", err: ": keystore backup needs --file"},
		{args: "keystore backup --file ''", err: ": keystore backup needs --file"},
		{args: "keystore backup --file .", err: ": the file given to --file is a directory"},
		// --file is checked before the arguments.
		{args: "keystore backup x", err: ": keystore backup needs --file"},
		{args: "keystore backup x --file ks.tar", err: ": keystore backup takes no arguments (got 1)"},
	})
	testParse(t, (*env).keystoreRestoreCommand, []parseCase[keystoreRestoreOptions]{
		{args: "keystore restore --file ks.tar", want: &keystoreRestoreOptions{File: "ks.tar"}},
		{args: "--keystore new keystore restore --file -", want: &keystoreRestoreOptions{Globals: globalOptions{Keystore: "new"}, File: "-"}},
		{args: "keystore restore", err: ": keystore restore needs --file"},
		{args: "keystore restore --file .", err: ": the file given to --file is a directory"},
		// The arguments are checked before --file.
		{args: "keystore restore x", err: ": keystore restore takes no arguments (got 1)"},
	})
}
