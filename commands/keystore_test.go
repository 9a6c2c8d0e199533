package commands

import (
	"bytes"
	"strings"
	"testing"
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
