//go:build !windows

package commands

import (
	"os"
	"strings"
	"testing"
)

// TestPlantedFileNameEscaped: a file in credentials/ whose name holds an
// OSC sequence (which sets the terminal's title, and on some terminals does
// worse), a C1 CSI or a bidirectional override reaches an error message
// escaped. Windows does not allow control characters in file names.
func TestPlantedFileNameEscaped(t *testing.T) {
	for name, want := range map[string]string{
		"\x1b]0;pwned\x07":  `\x1b]0;pwned\a`,
		"csi\u009b2J":       `csi\u009b2J`,
		"raw\x9b2J":         `raw\x9b2J`,
		"evil\u202egnp.exe": `evil\u202egnp.exe`,
	} {
		c := newTestCLI(t)
		if err := os.WriteFile(c.path("keystore", "credentials", name+".toml"), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"credential", "list"}, {"credential", "list", "--json"}, {"status"}} {
			code, stdout, stderr := c.run("", args...)
			if code == 0 || !strings.Contains(stderr, want) || rawUnsafe(stderr) || rawUnsafe(stdout) {
				t.Errorf("%q, %s: exit %d\nstdout %q\nstderr %q", name, args, code, stdout, stderr)
			}
		}
	}
}
