package fsio

import (
	"os"
	"runtime"
	"sync"
	"sync/atomic"
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

	// The writers of CreateLater: queues[i] feeds writer i.
	queues  []chan queuedFile
	next    atomic.Uint32 // round-robin over the writers, where files are synced one by one
	writers sync.WaitGroup
	stop    sync.Once
	failed  atomic.Bool
	errOnce sync.Once
	err     error
}

// queuedFile is a file CreateLater handed to a writer.
type queuedFile struct {
	path, dir string
	data      []byte
}

// NewBatch starts a batch of files written through f in the tree at root.
func (f FS) NewBatch(root string) *Batch {
	return &Batch{f: f, root: root, dirs: map[string]bool{}}
}

// PerFileSync reports whether files of a batch are synced one by one.
func PerFileSync() bool { return runtime.GOOS != "linux" }

// Create writes a new file of the batch in dir (CreateOver), synced one by
// one only where PerFileSync says so.
func (b *Batch) Create(path, dir string, data []byte) error {
	if err := b.f.CreateOver(path, data, PerFileSync()); err != nil {
		return err
	}
	b.Note(dir)
	return nil
}

// StartWriters starts the goroutines that create the files queued by
// CreateLater, so that the files of a bulk operation are created while its
// workers go on computing the next ones. On Linux a directory's files all
// go to the same writer: creations in one directory take its lock in turn,
// and writers contending for it only slow each other down; files in
// different directories are created in parallel. Elsewhere each file is
// synced as it is written, and any writer takes any file.
func (b *Batch) StartWriters() {
	n := runtime.GOMAXPROCS(0)
	b.queues = make([]chan queuedFile, n)
	for i := range b.queues {
		q := make(chan queuedFile, 64)
		b.queues[i] = q
		b.writers.Add(1)
		go func() {
			defer b.writers.Done()
			for f := range q {
				if b.failed.Load() {
					continue // drained, so that CreateLater never blocks
				}
				if err := b.Create(f.path, f.dir, f.data); err != nil {
					b.fail(err)
				}
			}
		}()
	}
}

func (b *Batch) fail(err error) {
	b.errOnce.Do(func() { b.err = err })
	b.failed.Store(true)
}

// CreateLater queues a new file of the batch for a writer (StartWriters)
// and returns at once, with the error of an earlier queued file if one
// failed. Wait returns when every queued file is created.
func (b *Batch) CreateLater(path, dir string, data []byte) error {
	if b.failed.Load() {
		return b.err
	}
	var i uint32
	if PerFileSync() {
		i = b.next.Add(1)
	} else {
		i = 2166136261 // FNV-1a of dir
		for j := 0; j < len(dir); j++ {
			i = (i ^ uint32(dir[j])) * 16777619
		}
	}
	b.queues[i%uint32(len(b.queues))] <- queuedFile{path, dir, data}
	return nil
}

// Wait stops the writers once they have created every queued file, and
// returns the first error of one. It may be called more than once; nothing
// may be queued after it.
func (b *Batch) Wait() error {
	b.stop.Do(func() {
		for _, q := range b.queues {
			close(q)
		}
		b.writers.Wait()
	})
	if b.failed.Load() {
		return b.err
	}
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
