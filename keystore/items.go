package keystore

import (
	"errors"
	"fmt"
	"io/fs"
	"sort"

	"github.com/keytree-dev/keytree/formats"
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

// itemBlob finds the file holding an item's value, h being its blob's
// handle under any generation: under the current key generation, or, for an
// item a --force operation could not re-encrypt, under a retired one. A
// reader looks at one file in the common case, and never lists a directory.
func (ks *Keystore) itemBlob(h handle, g keyGens) (path string, orphan *Orphan, err error) {
	p := ks.pathOf(h.atGen(g.current))
	if ks.files.Exists(p) {
		return p, nil, nil
	}
	// Newest retired generation first.
	retired := append([]formats.Retired(nil), g.retired...)
	sort.Slice(retired, func(i, j int) bool { return retired[i].Generation > retired[j].Generation })
	for _, r := range retired {
		rp := ks.pathOf(h.atGen(r.Generation))
		if ks.files.Exists(rp) {
			return rp, &Orphan{Generation: r.Generation, Thumbprint: r.Thumbprint}, nil
		}
	}
	return "", nil, corruptf(p, "is missing")
}

// readItemBlob reads the file holding an item's value: itemBlob's lookup,
// opening the current generation's file directly rather than checking for it
// first.
func (ks *Keystore) readItemBlob(h handle, g keyGens) (data []byte, path string, orphan *Orphan, err error) {
	path = ks.pathOf(h.atGen(g.current))
	data, err = ks.files.ReadFile(path, maxBlobSize)
	if err == nil || !notExist(err) {
		return data, path, nil, err
	}
	path, orphan, err = ks.itemBlob(h, g)
	if err != nil {
		return nil, "", nil, err
	}
	data, err = ks.files.ReadFile(path, maxBlobSize)
	return data, path, orphan, err
}

// itemBlobs lists every file an item's value could be: h under the current
// generation and under each retired one.
func itemBlobs(h handle, g keyGens) []handle {
	hs := []handle{h.atGen(g.current)}
	for _, r := range g.retired {
		hs = append(hs, h.atGen(r.Generation))
	}
	return hs
}

// itemBlobPaths is itemBlobs as paths.
func (ks *Keystore) itemBlobPaths(h handle, g keyGens) []string {
	var paths []string
	for _, b := range itemBlobs(h, g) {
		paths = append(paths, ks.pathOf(b))
	}
	return paths
}

func orphanError(what, name string, o *Orphan, keyName string, recover Remedy) error {
	return &Error{
		Number: MsgItemDecrypt,
		Text: fmt.Sprintf("An error occurred while decrypting %s '%s' that was encrypted by the old master key: it is orphaned, encrypted by %s %s (generation %d).",
			what, name, keyName, o.Thumbprint, o.Generation),
		Remedy: recover,
		Kind:   ErrDecryption,
	}
}

func notExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// loadMeta reads and decodes the metadata file at p. A missing file is
// returned as fs.ErrNotExist, for the caller to say what is missing; a file
// that cannot be read or decoded is reported with its path.
func loadMeta[T any](ks *Keystore, p string, decode func([]byte) (*T, error)) (*T, error) {
	data, err := ks.files.ReadFile(p, formats.MaxMetadataSize)
	if err != nil {
		if notExist(err) {
			return nil, err
		}
		return nil, ks.fileError(p, err)
	}
	meta, err := decode(data)
	if err != nil {
		return nil, errCorrupt(p, err)
	}
	return meta, nil
}
