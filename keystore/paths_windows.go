//go:build windows

package keystore

import (
	"path/filepath"
)

func defaultDirs() (Dirs, error) {
	home, err := homeDir()
	if err != nil {
		return Dirs{}, err
	}
	local := envOr("LOCALAPPDATA", filepath.Join(home, "AppData", "Local"))
	roaming := envOr("APPDATA", filepath.Join(home, "AppData", "Roaming"))
	programData := envOr("ProgramData", `C:\ProgramData`)
	return Dirs{
		Keystore: filepath.Join(local, "keytree", "keystore"),
		Account:  filepath.Join(roaming, "keytree", "account"),
		Machine:  filepath.Join(programData, "keytree", "machine"),
	}, nil
}
