package keystore

import (
	"os"
	"path/filepath"
	"testing"
)

// TestDirKind: what keytree takes a directory to be before it judges its
// permissions (keystore_not_keytrees_dir.txtar shows the messages).
func TestDirKind(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files []string
		role  dirRole
		want  dirKind
	}{
		{"empty keystore dir", nil, keystoreRole, dirEmpty},
		{"init's leftovers", []string{lockFile, tmpDir}, keystoreRole, dirEmpty},
		{"keystore", []string{keystoreFile, lockFile}, keystoreRole, dirOurs},
		{"keystore without keystore.toml", []string{smkFile}, keystoreRole, dirOurs},
		{"etc", []string{"passwd", "hosts", lockFile}, keystoreRole, dirForeign},
		{"root's tmp is not keytree's", []string{tmpDir, "etc", "usr"}, keystoreRole, dirForeign},
		{"account dir", []string{"account.key"}, accountRole, dirOurs},
		{"machine dir, entropy only", []string{"0123abcd.entropy"}, machineRole, dirOurs},
		{"machine dir of other files", []string{"notes.txt"}, machineRole, dirForeign},
		{"lock is not an account dir's", []string{lockFile}, accountRole, dirForeign},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := newTestDir(t) // not t.TempDir: its clean-up fails under Wine
			for _, f := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if tc.role.dir == accountRole.dir && len(tc.files) == 1 && tc.files[0] == "account.key" {
				// the Windows account secret has another name
				if err := os.Rename(filepath.Join(dir, "account.key"), filepath.Join(dir, accountRole.marks[0])); err != nil {
					t.Fatal(err)
				}
			}
			if got := kindOf(osFiles, dir, tc.role); got != tc.want {
				t.Errorf("kindOf = %d, want %d", got, tc.want)
			}
		})
	}
}
