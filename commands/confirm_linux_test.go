package commands

import (
	"strings"
	"testing"
)

// TestConfirmRemoval: on a terminal, credential rm, secret rm and dmk drop
// ask on the terminal (not on standard output) and remove only on y or yes;
// --yes and -y skip the question; off a terminal nothing is asked.
func TestConfirmRemoval(t *testing.T) {
	c := newTestCLI(t)
	set := func(args ...string) {
		t.Helper()
		if code, _, stderr := c.run("value", args...); code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, code, stderr)
		}
	}
	exists := func(args ...string) bool {
		code, _, _ := c.run("", args...)
		return code == 0
	}
	set("credential", "set", "mail", "--identity", "me")
	if code, _, stderr := c.run("Str0ng!Passw0rd-db", "dmk", "create", "--db", "app", "--password-file", "-"); code != 0 {
		t.Fatalf("dmk create: exit %d\n%s", code, stderr)
	}
	set("secret", "set", "app/token")

	// Declined, in the ways a person declines: nothing removed, status 9.
	for _, keys := range []string{"n\r", "\r", "no\r", "maybe\r", "\x04"} {
		code, stdout, stderr, shown := c.atTerminal(t, "Remove credential mail? [y/N] ", keys, "credential", "rm", "mail")
		if code != exitRefused || stdout != "" || !strings.Contains(stderr, "keytree: error: not confirmed: nothing was removed") {
			t.Errorf("answer %q: exit %d, stdout %q\n%s", keys, code, stdout, stderr)
		}
		if !strings.HasPrefix(shown, "Remove credential mail? [y/N] ") {
			t.Errorf("answer %q: the terminal shows %q", keys, shown)
		}
		if !exists("credential", "get", "mail") {
			t.Fatalf("answer %q removed the credential", keys)
		}
	}
	code, _, stderr, _ := c.atTerminal(t, "Remove secret app/token? [y/N] ", "n\r", "secret", "rm", "app/token")
	if code != exitRefused || !exists("secret", "get", "app/token") {
		t.Fatalf("secret rm declined: exit %d\n%s", code, stderr)
	}

	// Confirmed.
	if code, _, stderr, _ := c.atTerminal(t, "Remove credential mail? [y/N] ", "y\r", "credential", "rm", "mail"); code != 0 || exists("credential", "get", "mail") {
		t.Fatalf("credential rm, y: exit %d\n%s", code, stderr)
	}
	if code, _, stderr, _ := c.atTerminal(t, "Remove secret app/token? [y/N] ", "YES\r", "secret", "rm", "app/token"); code != 0 || exists("secret", "get", "app/token") {
		t.Fatalf("secret rm, YES: exit %d\n%s", code, stderr)
	}
	code, _, stderr, _ = c.atTerminal(t, "Drop the master key of database app, and the database? [y/N] ", "n\r", "dmk", "drop", "--db", "app")
	if code != exitRefused || !exists("secret", "list", "app") {
		t.Fatalf("dmk drop declined: exit %d\n%s", code, stderr)
	}
	if code, _, stderr, _ := c.atTerminal(t, "Drop the master key of database app, and the database? [y/N] ", "y\r", "dmk", "drop", "--db", "app"); code != 0 || exists("secret", "list", "app") {
		t.Fatalf("dmk drop, y: exit %d\n%s", code, stderr)
	}

	// dmk drop-encryption asks too.
	if code, _, stderr := c.run("Str0ng!Passw0rd-db", "dmk", "create", "--db", "app", "--password-file", "-"); code != 0 {
		t.Fatalf("dmk create: exit %d\n%s", code, stderr)
	}
	code, _, stderr, _ = c.atTerminal(t, "Drop the smk encryption of the master key of database app? [y/N] ", "n\r", "dmk", "drop-encryption", "--db", "app", "--by", "smk")
	if code != exitRefused {
		t.Fatalf("dmk drop-encryption declined: exit %d\n%s", code, stderr)
	}
	set("secret", "set", "app/token") // opens the key through its SMK encryption
	if code, _, stderr, _ := c.atTerminal(t, "Drop the smk encryption of the master key of database app? [y/N] ", "y\r", "dmk", "drop-encryption", "--db", "app", "--by", "smk"); code != 0 {
		t.Fatalf("dmk drop-encryption, y: exit %d\n%s", code, stderr)
	}
	if code, _, _ := c.run("value", "secret", "set", "app/token"); code != exitDecryption {
		t.Fatalf("after drop-encryption --by smk, secret set without a password: exit %d, want %d", code, exitDecryption)
	}

	// --yes and -y: no question, even on a terminal.
	set("credential", "set", "a", "--identity", "me")
	set("credential", "set", "b", "--identity", "me")
	for _, args := range [][]string{{"credential", "rm", "a", "--yes"}, {"credential", "rm", "-y", "b"}} {
		code, _, stderr, shown := c.atTerminal(t, "", "", args...)
		if code != 0 || shown != "" {
			t.Errorf("%v: exit %d, the terminal shows %q\n%s", args, code, shown, stderr)
		}
	}
	if exists("credential", "get", "a") || exists("credential", "get", "b") {
		t.Error("--yes or -y did not remove")
	}

	// An invalid name is refused before anything is asked.
	if code, _, _, shown := c.atTerminal(t, "", "", "credential", "rm", "../x"); code != exitUsage || shown != "" {
		t.Errorf("an invalid name: exit %d, the terminal shows %q", code, shown)
	}

	// Off a terminal: no question, and no --yes needed.
	set("credential", "set", "c", "--identity", "me")
	if code, _, stderr := c.run("y\n", "credential", "rm", "c"); code != 0 || exists("credential", "get", "c") {
		t.Fatalf("credential rm off a terminal: exit %d\n%s", code, stderr)
	}
}
