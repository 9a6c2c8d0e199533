package keystore

import (
	"errors"
	"fmt"
	"io/fs"
	"sort"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/protect"
)

// keyGens is what an item's blob name depends on: the current generation of
// the master key that encrypts it, and the retired generations that may still
// hold orphans.
type keyGens struct {
	current int
	retired []formats.Retired
}

// Orphan identifies the key an orphaned item needs.
type Orphan struct {
	Generation int
	Thumbprint string
}

// itemBlob finds the file holding revision rev of an item in dir: under the
// current key generation, or, for an item a --force operation could not
// re-encrypt, under a retired one. A reader looks at one file in the common
// case, and never lists a directory.
func (ks *Keystore) itemBlob(dir []string, base string, rev int, g keyGens) (path string, orphan *Orphan, err error) {
	p := ks.path(append(dir, formats.BlobName(base, rev, g.current))...)
	if ks.files.exists(p) {
		return p, nil, nil
	}
	// Newest retired generation first.
	retired := append([]formats.Retired(nil), g.retired...)
	sort.Slice(retired, func(i, j int) bool { return retired[i].Generation > retired[j].Generation })
	for _, r := range retired {
		rp := ks.path(append(dir, formats.BlobName(base, rev, r.Generation))...)
		if ks.files.exists(rp) {
			return rp, &Orphan{Generation: r.Generation, Thumbprint: r.Thumbprint}, nil
		}
	}
	return "", nil, corruptf(p, "is missing")
}

// readItemBlob reads the file holding revision rev of an item: itemBlob's
// lookup, opening the current generation's file directly rather than
// checking for it first.
func (ks *Keystore) readItemBlob(dir []string, base string, rev int, g keyGens) (data []byte, path string, orphan *Orphan, err error) {
	path = ks.path(append(dir, formats.BlobName(base, rev, g.current))...)
	data, err = ks.files.readFile(path, maxBlobSize)
	if err == nil || !notExist(err) {
		return data, path, nil, err
	}
	path, orphan, err = ks.itemBlob(dir, base, rev, g)
	if err != nil {
		return nil, "", nil, err
	}
	data, err = ks.files.readFile(path, maxBlobSize)
	return data, path, orphan, err
}

// itemBlobNames lists every file name revision rev of an item could have:
// under the current generation and under each retired one.
func itemBlobNames(base string, rev int, g keyGens) []string {
	names := []string{formats.BlobName(base, rev, g.current)}
	for _, r := range g.retired {
		names = append(names, formats.BlobName(base, rev, r.Generation))
	}
	return names
}

// writeNewBlob writes a value's blob under a name no committed metadata
// refers to yet. Anything already there is a leftover of an operation that
// never committed, and is replaced.
func (ks *Keystore) writeNewBlob(path string, key *protect.Key, value []byte) error {
	ct, err := protect.Seal(key, value)
	if err != nil {
		return err
	}
	if err := ks.files.removeFile(path); err != nil {
		return err
	}
	return ks.files.createFile(path, ct, true)
}

func orphanError(what, name string, o *Orphan, keyName, recover string) error {
	return &Error{
		Number: MsgItemDecrypt,
		Text: fmt.Sprintf("An error occurred while decrypting %s '%s' that was encrypted by the old master key: it is orphaned, encrypted by %s %s (generation %d).",
			what, name, keyName, o.Thumbprint, o.Generation),
		Hint: recover,
		Kind: ErrDecryption,
	}
}

func notExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
