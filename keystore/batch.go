package keystore

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/keystore/internal/fsio"
)

// A batch commits many items at once (credential import, secret import):
// all of them or none, whatever stops keytree. A single change commits by
// replacing one metadata file; a batch has one metadata file per item, so
// it commits by a record instead, and the record is redone until it is
// done:
//
//  1. the new values' files are created, as for one item (txn.create), in
//     directories the intent sweeps;
//  2. each new metadata file is written to tmp/batch-RANDOM/I.toml, and
//     everything is made durable;
//  3. the commit: pending.toml is replaced by one that also names the
//     batch (formats.PendingBatch). Before it, the batch is garbage that the
//     next writer removes; after it, the batch is made;
//  4. each staged metadata file is renamed over its item's, and
//     pending.toml is rewritten without the batch.
//
// A keytree stopped in step 4 leaves some items moved and some not. The next
// writer moves the rest before anything else (recoverPending), and a reader
// that finds a batch in pending.toml takes the exclusive lock to do the same
// first (read), so no reader ever sees half a batch.

// batchMeta is one item of a batch: the metadata file it replaces, with
// its new content.
type batchMeta struct {
	item formats.BatchItem
	data []byte
	// commit is the item's commit, which the protector directories
	// remember once the batch is committed (format 2).
	commit int
}

// handle of an item's metadata file.
func batchItemMeta(it formats.BatchItem) handle {
	if it.DB == "" {
		return credentialMeta(it.Name)
	}
	return secretMeta(it.DB, it.Name)
}

// commitBatch commits items, whose value files t has created, as one
// change: see above.
func (t *txn) commitBatch(items []batchMeta) error {
	if err := t.prepare(); err != nil {
		return err
	}
	ks := t.s.ks
	b := &formats.PendingBatch{Dir: formats.BatchDirPrefix + fsio.RandomName(), Items: make([]formats.BatchItem, len(items))}
	dir := ks.path(tmpDir, b.Dir)
	if err := ks.files.MkdirPrivate(dir); err != nil {
		return err
	}
	staged := ks.files.NewBatch(ks.dir)
	for i, it := range items {
		b.Items[i] = it.item
		if err := staged.Create(batchStaged(dir, i), dir, it.data); err != nil {
			return err
		}
	}
	staged.Note(ks.path(tmpDir))
	if err := staged.Sync(); err != nil {
		return err
	}
	t.s.pending.Batch = b
	data, err := t.s.pending.Encode()
	if err != nil {
		t.s.pending.Batch = nil
		return err
	}
	// A record that fails to be written may still have reached the disk
	// (a failed sync of the directory after the rename): the batch stays in
	// the session's record, so that no clean-up runs before the next
	// writer, which reads pending.toml and either finishes the batch or
	// removes it.
	if err := ks.writeFileAtomic(ks.path(pendingFile), data); err != nil {
		return err
	}
	// Committed: from here on an error leaves the rest to the next
	// keytree, which finishes it.
	if err := ks.moveBatch(b); err != nil {
		return fmt.Errorf("the change is made, but part of it is not in place yet; the next command to open the keystore puts it in place: %w", err)
	}
	// The batch's directory is empty now; tmp/ is emptied by every
	// writer anyway, so a failure here changes nothing.
	_ = ks.files.RemoveDir(dir)
	t.s.pending.Batch = nil
	return t.s.writePending()
}

// batchStaged is the path in dir of a batch's item i.
func batchStaged(dir string, i int) string {
	return filepath.Join(dir, strconv.Itoa(i)+".toml")
}

// moveBatch moves a committed batch's staged metadata files into place. An
// item already moved has no staged file any more and is skipped; a staged
// file that is not the metadata of the item it is recorded for (pending.toml
// and tmp/ are as hostile as any file) is left where it is, and the item
// keeps its metadata. Renaming over a file is atomic: each item is whole,
// old or new, at every step.
func (ks *Keystore) moveBatch(b *formats.PendingBatch) error {
	dir := ks.path(tmpDir, b.Dir)
	dirs := map[string]bool{}
	for i, it := range b.Items {
		from := batchStaged(dir, i)
		data, err := ks.files.ReadFile(from, formats.MaxMetadataSize)
		if notExist(err) {
			continue
		}
		if err != nil {
			return err
		}
		if !stagedMetaIs(data, it) {
			continue
		}
		h := batchItemMeta(it)
		if it.DB != "" && !ks.files.Exists(ks.pathOf(secretsDirOf(it.DB))) {
			continue
		}
		if err := ks.files.RenameReplace(from, ks.pathOf(h)); err != nil {
			return err
		}
		dirs[ks.dirOf(h)] = true
	}
	for d := range dirs {
		if err := ks.files.SyncDir(d); err != nil {
			return err
		}
	}
	return nil
}

// stagedMetaIs reports whether data is the metadata of item it.
func stagedMetaIs(data []byte, it formats.BatchItem) bool {
	if it.DB == "" {
		m, err := formats.DecodeCredential(data)
		return err == nil && m.Name == it.Name
	}
	m, err := formats.DecodeSecret(data)
	return err == nil && m.Name == it.Name
}

// batchInPending reports whether pending.toml names a committed batch not yet
// moved into place. A missing or unreadable pending.toml names none: the
// reader that asks goes on, and the next writer deals with the file.
func (ks *Keystore) batchInPending() bool { return ks.pendingBatch() != nil }

// pendingBatch is the committed batch pending.toml names, nil if none.
func (ks *Keystore) pendingBatch() *formats.PendingBatch {
	data, err := ks.files.ReadFile(ks.path(pendingFile), formats.MaxPendingSize)
	if err != nil {
		return nil
	}
	p, err := formats.DecodePending(data)
	if err != nil {
		return nil
	}
	return p.Batch
}

// errBatchUnfinished sends a reader that found a committed batch still to
// move to the exclusive lock, under which recoverPending moves it.
var errBatchUnfinished = errors.New("keystore: a committed batch is still to be moved into place")
