//go:build !windows

package keystore

import (
	"os"
	"path/filepath"
	"runtime"
)

func defaultDirs() (Dirs, error) {
	home, err := homeDir()
	if err != nil {
		return Dirs{}, err
	}
	root := os.Geteuid() == 0
	if runtime.GOOS == "darwin" {
		support := filepath.Join(home, "Library", "Application Support", "keytree")
		d := Dirs{
			Keystore: filepath.Join(support, "keystore"),
			Account:  filepath.Join(support, "account"),
			Machine:  filepath.Join(support, "machine"),
		}
		if root {
			d.Machine = "/Library/Application Support/keytree/machine"
		}
		return d, nil
	}
	d := Dirs{
		Keystore: filepath.Join(envOr("XDG_DATA_HOME", filepath.Join(home, ".local", "share")), "keytree", "keystore"),
		Account:  filepath.Join(envOr("XDG_CONFIG_HOME", filepath.Join(home, ".config")), "keytree", "account"),
		// A machine-wide directory needs root to create and keep private;
		// other accounts keep the machine secret in their state directory.
		Machine: filepath.Join(envOr("XDG_STATE_HOME", filepath.Join(home, ".local", "state")), "keytree", "machine"),
	}
	if root {
		d.Machine = "/var/lib/keytree/machine"
	}
	return d, nil
}
