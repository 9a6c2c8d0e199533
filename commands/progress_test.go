package commands

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/keytree-dev/keytree/keystore"
	"github.com/keytree-dev/keytree/protect"
)

// newTestKeystore makes a keystore with n credentials and points the
// environment at it.
func newTestKeystore(t *testing.T, n int) {
	t.Helper()
	// Not t.TempDir: under Wine its clean-up fails (.ci/wine/README.md).
	root, err := os.MkdirTemp("", "keytree-commands-")
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" {
		t.Cleanup(func() { os.RemoveAll(root) })
	}
	dirs := keystore.Dirs{Keystore: filepath.Join(root, "ks"), Account: filepath.Join(root, "account"), Machine: filepath.Join(root, "machine")}
	t.Setenv("KEYTREE_DIR", dirs.Keystore)
	t.Setenv("KEYTREE_ACCOUNT_DIR", dirs.Account)
	t.Setenv("KEYTREE_MACHINE_DIR", dirs.Machine)
	if _, err := keystore.Init(keystore.Options{Dirs: dirs}, protect.X25519); err != nil {
		t.Fatal(err)
	}
	var ks *keystore.Keystore
	ks, err = keystore.Open(keystore.Options{Dirs: dirs})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if _, err := ks.SetCredential(fmt.Sprintf("c%d", i), "u", []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
}

// TestProgressOnTerminalOnly: a regenerate over many values draws a progress
// bar on a terminal's standard error, and none on a pipe. Either way the
// one other line is the note that the old key's backups are stale, after
// the bar.
func TestProgressOnTerminalOnly(t *testing.T) {
	newTestKeystore(t, 40)
	for _, tty := range []bool{true, false} {
		var stdout, stderr bytes.Buffer
		e := &env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, stderrTTY: tty}
		if rc := e.run([]string{"keytree", "smk", "regenerate"}); rc != 0 {
			t.Fatalf("regenerate (tty %v): exit %d\n%s", tty, rc, stderr.String())
		}
		stale := `keytree: note: backups of the replaced service master key [0-9a-f]{40} are now stale [^\n]*\n$`
		if !tty {
			if !regexp.MustCompile(`^`+stale).MatchString(stderr.String()) || stdout.Len() != 0 {
				t.Fatalf("on a pipe, regenerate wrote %q and %q", stdout.String(), stderr.String())
			}
			continue
		}
		// The bar ends full, at 40 of 40 values, on its own line.
		full := regexp.MustCompile(`\rre-encrypting \[=+\] 40/40\n` + stale)
		if !full.MatchString(stderr.String()) {
			t.Fatalf("on a terminal, no full progress bar: %q", stderr.String())
		}
	}
}

func TestProgressBar(t *testing.T) {
	var buf bytes.Buffer
	p := &progressBar{w: &buf, label: "x"}
	p.update(5, 10)
	p.update(10, 10)
	p.finish()
	out := buf.String()
	if !strings.Contains(out, "\rx [===============>              ] 5/10") || !strings.HasSuffix(out, "\rx [==============================] 10/10\n") {
		t.Fatalf("progress bar drew %q", out)
	}
}
