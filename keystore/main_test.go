package keystore

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/keytree-dev/keytree/protect"
)

func TestMain(m *testing.M) {
	protect.SetScryptWorkFactorForTesting(10)
	os.Exit(m.Run())
}

// testDirs makes a keystore, an account and a machine directory, separate,
// under a fresh temporary directory (not t.TempDir: under Wine os.RemoveAll
// fails, and so would its clean-up), removed afterwards where that works.
func testDirs(t *testing.T) Dirs {
	t.Helper()
	root, err := os.MkdirTemp("", "keytree-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if runtime.GOOS != "windows" {
			os.RemoveAll(root)
		}
	})
	return Dirs{
		Keystore: filepath.Join(root, "keystore"),
		Account:  filepath.Join(root, "account"),
		Machine:  filepath.Join(root, "machine"),
	}
}
