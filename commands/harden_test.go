package commands

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

const hardenChildEnv = "KEYTREE_TEST_HARDEN_CHILD"

// TestHarden runs Main in a fresh process (this test binary again, see
// TestMain) that first makes core dumps possible, then reports what Main
// left: core dumps must be off after it (hardenChild, per OS).
func TestHarden(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "-test.run=^$")
	// The settings under which crashes write dumps: GOTRACEBACK=crash makes
	// a Go crash abort with a core dump; on Windows, GOTRACEBACK=wer leaves
	// Windows Error Reporting on.
	traceback := "crash"
	if runtime.GOOS == "windows" {
		traceback = "wer"
	}
	cmd.Env = append(os.Environ(), hardenChildEnv+"=1", "GOTRACEBACK="+traceback)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var before, after string
	for _, l := range lines {
		if v, ok := strings.CutPrefix(l, "before: "); ok {
			before = v
		}
		if v, ok := strings.CutPrefix(l, "after: "); ok {
			after = v
		}
	}
	t.Logf("before Main: %s; after: %s", before, after)
	if before == "" || after == "" {
		t.Fatalf("the child reported nothing:\n%s", out)
	}
	if strings.HasPrefix(before, "skip") {
		t.Skip(before)
	}
	if before == hardened {
		t.Fatalf("before Main: %s already: the test proves nothing", before)
	}
	if after != hardened {
		t.Fatalf("after Main: %s, want %s", after, hardened)
	}
}
