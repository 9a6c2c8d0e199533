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
	f    files
	root string // the tree the batch writes in
	mu   sync.Mutex
	dirs map[string]bool
}

// newBatch starts a batch of files written through f in the tree at root.
func newBatch(f files, root string) *batch {
	return &batch{f: f, root: root, dirs: map[string]bool{}}
}

func (ks *Keystore) newBatch() *batch { return newBatch(ks.files, ks.dir) }

// perFileSync reports whether files of a batch are synced one by one.
func perFileSync() bool { return runtime.GOOS != "linux" }

// create writes a new file of the batch, replacing a leftover of the same
// name.
func (b *batch) create(path, dir string, data []byte) error {
	if err := b.f.removeFile(path); err != nil {
		return err
	}
	if err := b.f.createFile(path, data, perFileSync()); err != nil {
		return err
	}
	b.note(dir)
	return nil
}

// note adds dir to the directories whose entries sync makes durable.
func (b *batch) note(dir string) {
	b.mu.Lock()
	b.dirs[dir] = true
	b.mu.Unlock()
}

// sync makes every file of the batch, and its directory entry, durable.
func (b *batch) sync() error {
	if !perFileSync() {
		if err := step("syncfs", b.root); err != nil {
			return err
		}
		f, err := os.Open(b.root)
		if err != nil {
			return err
		}
		defer f.Close()
		return syncfs(f)
	}
	for d := range b.dirs {
		if err := b.f.syncDir(d); err != nil {
			return err
		}
	}
	return nil
}
