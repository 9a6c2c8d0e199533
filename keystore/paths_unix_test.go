//go:build !windows

package keystore

import (
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// unsetEnv unsets name for the test, restoring it afterwards (t.Setenv
// can only set).
func unsetEnv(t *testing.T, name string) {
	t.Helper()
	t.Setenv(name, "")
	os.Unsetenv(name)
}

// TestDefaultDirsWithoutHome runs as cron, a systemd unit or env -i start a
// program: no HOME and no XDG_* variables. The defaults come from the home
// directory in the account database, not an error.
func TestDefaultDirsWithoutHome(t *testing.T) {
	for _, v := range []string{"HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME"} {
		unsetEnv(t, v)
	}
	home := filepath.Join(t.TempDir(), "svc-home")
	orig := currentUser
	t.Cleanup(func() { currentUser = orig })
	currentUser = func() (*user.User, error) { return &user.User{Username: "svc", HomeDir: home}, nil }

	d, err := DefaultDirs()
	if err != nil {
		t.Fatalf("DefaultDirs without HOME: %v", err)
	}
	want := Dirs{
		Keystore: filepath.Join(home, ".local", "share", "keytree", "keystore"),
		Account:  filepath.Join(home, ".config", "keytree", "account"),
		Machine:  filepath.Join(home, ".local", "state", "keytree", "machine"),
	}
	if runtime.GOOS == "darwin" {
		support := filepath.Join(home, "Library", "Application Support", "keytree")
		want = Dirs{Keystore: filepath.Join(support, "keystore"), Account: filepath.Join(support, "account"), Machine: filepath.Join(support, "machine")}
	}
	if os.Geteuid() == 0 {
		want.Machine = d.Machine // root's machine directory is machine-wide
	}
	if d != want {
		t.Errorf("DefaultDirs without HOME = %+v, want %+v", d, want)
	}

	// HOME, when set, still wins over the account database.
	other := filepath.Join(t.TempDir(), "from-env")
	t.Setenv("HOME", other)
	d, err = DefaultDirs()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(d.Account, other+string(filepath.Separator)) {
		t.Errorf("with HOME=%s the account directory is %s", other, d.Account)
	}

	// Neither HOME nor an account database entry: ErrNoHome, with the
	// reason (the commands package adds which variables to set).
	unsetEnv(t, "HOME")
	currentUser = func() (*user.User, error) { return nil, errors.New("unknown userid 4242") }
	if _, err := DefaultDirs(); !errors.Is(err, ErrNoHome) || err.Error() != "cannot find the home directory (unknown userid 4242)" {
		t.Errorf("DefaultDirs with no home at all: %v", err)
	}
}

// TestDefaultDirsRealAccount checks the unstubbed lookup: with HOME unset,
// the defaults are under the home directory os/user reports for the
// account running the test.
func TestDefaultDirsRealAccount(t *testing.T) {
	u, err := user.Current()
	if err != nil || u.HomeDir == "" {
		t.Skipf("no account database entry: %v", err)
	}
	for _, v := range []string{"HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME"} {
		unsetEnv(t, v)
	}
	d, err := DefaultDirs()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(d.Account, u.HomeDir) || !strings.HasPrefix(d.Keystore, u.HomeDir) {
		t.Errorf("DefaultDirs = %+v, want them under %s", d, u.HomeDir)
	}
}
