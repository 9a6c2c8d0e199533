package keystore

import (
	"os"
	"runtime"
	"sync"
)

// A batch makes many new files durable at once. Bulk operations (regenerate,
// restore) write thousands of blobs; syncing each one, and its directory, in
// turn would cost a disk flush per item. On Linux the batch writes files
// without syncing them and then issues one syncfs(2) for the keystore's
// filesystem, which flushes every file and directory entry written so far;
// elsewhere each file is synced as it is written and each directory once at
// the end. Either way, nothing is committed until sync returns.
type batch struct {
	ks   *Keystore
	mu   sync.Mutex
	dirs map[string]bool
}

func (ks *Keystore) newBatch() *batch { return &batch{ks: ks, dirs: map[string]bool{}} }

// perFileSync reports whether files of a batch are synced one by one.
func perFileSync() bool { return runtime.GOOS != "linux" }

// create writes a new file of the batch.
func (b *batch) create(path, dir string, data []byte) error {
	if err := b.ks.files.removeFile(path); err != nil {
		return err
	}
	if err := b.ks.files.createFile(path, data, perFileSync()); err != nil {
		return err
	}
	b.mu.Lock()
	b.dirs[dir] = true
	b.mu.Unlock()
	return nil
}

// sync makes every file of the batch, and its directory entry, durable.
func (b *batch) sync() error {
	if !perFileSync() {
		if err := step("syncfs", b.ks.dir); err != nil {
			return err
		}
		f, err := os.Open(b.ks.dir)
		if err != nil {
			return err
		}
		defer f.Close()
		return syncfs(f)
	}
	for d := range b.dirs {
		if err := b.ks.files.syncDir(d); err != nil {
			return err
		}
	}
	return nil
}
