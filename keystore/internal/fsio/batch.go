package fsio

import (
	"os"
	"runtime"
	"sync"
)

// A Batch makes many new files durable at once. Bulk operations (regenerate,
// restore) write thousands of files; syncing each one, and its directory, in
// turn would cost a disk flush per item. On Linux the batch writes files
// without syncing them and then issues one syncfs(2) for the tree's
// filesystem, which flushes every file and directory entry written so far;
// elsewhere each file is synced as it is written and each directory once at
// the end. Either way, nothing is durable until Sync returns.
type Batch struct {
	f    FS
	root string // the tree the batch writes in
	mu   sync.Mutex
	dirs map[string]bool
}

// NewBatch starts a batch of files written through f in the tree at root.
func (f FS) NewBatch(root string) *Batch {
	return &Batch{f: f, root: root, dirs: map[string]bool{}}
}

// PerFileSync reports whether files of a batch are synced one by one.
func PerFileSync() bool { return runtime.GOOS != "linux" }

// Create writes a new file of the batch in dir, replacing a leftover of the
// same name.
func (b *Batch) Create(path, dir string, data []byte) error {
	if err := b.f.RemoveFile(path); err != nil {
		return err
	}
	if err := b.f.CreateFile(path, data, PerFileSync()); err != nil {
		return err
	}
	b.Note(dir)
	return nil
}

// Note adds dir to the directories whose entries Sync makes durable.
func (b *Batch) Note(dir string) {
	b.mu.Lock()
	b.dirs[dir] = true
	b.mu.Unlock()
}

// Sync makes every file of the batch, and its directory entry, durable.
func (b *Batch) Sync() error {
	if !PerFileSync() {
		if err := b.f.Step("syncfs", b.root); err != nil {
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
		if err := b.f.SyncDir(d); err != nil {
			return err
		}
	}
	return nil
}
