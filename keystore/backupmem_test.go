package keystore

import (
	"path/filepath"
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/keytree-dev/keytree/protect"
)

// Peak memory of smk backup and dmk backup (issue: 534 MB, two scrypts'
// buffers at once). A backup runs scrypt more than once (the backup is
// sealed, then opened to check it; dmk backup --open-password-file also
// opens the DMK by password), and each scrypt allocates 128*r*N bytes. The
// memory of one must be free before the next begins, so that the command
// costs one scrypt, not the sum.
//
// The test turns the collector's pacing off, so that nothing but keytree
// itself can free a finished scrypt's buffer before the next one, and then
// checks, as each scrypt starts, that the heap holds less than one scrypt
// buffer more than it did before the operation. Without the collection
// protect runs between scrypts, the second scrypt finds the first one's
// 128*r*N bytes still allocated.
func TestBackupHoldsOneScryptAtATime(t *testing.T) {
	const logN = 15 // 32 MiB a scrypt: well above the test's own heap
	protect.SetScryptWorkFactorForTesting(logN)
	t.Cleanup(func() { protect.SetScryptWorkFactorForTesting(testScryptWorkFactor) })
	buffer := uint64(128 * 8 << logN)

	_, ks := passwordTestDB(t, "Backup-pass-1")
	dir := newTestDir(t)
	password := []byte("Backup-pass-2")

	cases := []struct {
		name string
		run  func(path string) error
	}{
		{"smk backup", func(path string) error {
			_, err := ks.BackupSMK(path, password, SMKOptions{SkipPasswordPolicy: true})
			return err
		}},
		{"dmk backup", func(path string) error {
			_, err := ks.BackupDMK("db", path, password, passwordTestOpts)
			return err
		}},
		{"dmk backup --open-password-file", func(path string) error {
			opts := passwordTestOpts
			opts.OpenPassword = []byte("Backup-pass-1")
			_, err := ks.BackupDMK("db", path, password, opts)
			return err
		}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var heap []uint64
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			base := ms.HeapAlloc
			protect.SetScryptHookForTesting(func(int) {
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				heap = append(heap, ms.HeapAlloc)
			})
			old := debug.SetGCPercent(-1)
			err := c.run(filepath.Join(dir, "backup"+string(rune('a'+i))))
			debug.SetGCPercent(old)
			protect.SetScryptHookForTesting(nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(heap) < 2 {
				t.Fatalf("%d scrypts; the test needs at least two to mean anything", len(heap))
			}
			for n, h := range heap {
				if h > base+buffer/2 {
					t.Errorf("scrypt %d of %d started with %d MiB more heap than before the backup: an earlier scrypt's %d MiB buffer is still held",
						n+1, len(heap), (h-base)>>20, buffer>>20)
				}
			}
		})
	}
}
