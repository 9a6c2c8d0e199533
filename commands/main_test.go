package commands

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/keytree-dev/keytree/protect"
)

func TestMain(m *testing.M) {
	// TestHarden runs this binary again to call Main in a fresh process.
	if os.Getenv(hardenChildEnv) != "" {
		os.Exit(hardenChild())
	}
	protect.SetScryptWorkFactorForTesting(8)
	os.Exit(m.Run())
}

// testCLI runs keytree in-process against a keystore of its own, with
// buffers for the standard streams.
type testCLI struct {
	t                          *testing.T
	root                       string
	keystore, account, machine string
}

// tempDir is t.TempDir, whose clean-up fails under Wine, made by hand.
func tempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "keytree-commands-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil && runtime.GOOS != "windows" {
			t.Error(err)
		}
	})
	return dir
}

// newTestCLI makes a keystore with keytree init, in a directory of tempDir.
func newTestCLI(t *testing.T) *testCLI {
	t.Helper()
	root := tempDir(t)
	c := &testCLI{t: t, root: root, keystore: filepath.Join(root, "keystore"),
		account: filepath.Join(root, "account"), machine: filepath.Join(root, "machine")}
	if code, _, stderr := c.run("", "init"); code != 0 {
		t.Fatalf("init: exit %d\n%s", code, stderr)
	}
	return c
}

// run runs keytree with args and stdin, returning the exit status, standard
// output and standard error.
func (c *testCLI) run(stdin string, args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	e := &env{stdin: strings.NewReader(stdin), stdout: &stdout, stderr: &stderr}
	code := e.run(append([]string{"keytree", "--keystore", c.keystore, "--account-dir", c.account, "--machine-dir", c.machine}, args...))
	return code, stdout.String(), stderr.String()
}

// path is a path under the test's root directory.
func (c *testCLI) path(elem ...string) string {
	return filepath.Join(append([]string{c.root}, elem...)...)
}
