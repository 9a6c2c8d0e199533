package keystore

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/keystore/internal/fsio"
)

// A keystore backup is a tar archive of the keystore directory: every file
// keytree keeps there, as it is on disk (metadata in TOML, keys and values in
// age files), under the same relative names. It needs no key and no password
// to write, and reveals no more than the directory itself (P4). The SMK's
// encryptions in it open only with the protectors of the account and machine
// that wrote them, so a full backup is this copy plus an SMK backup (smk
// backup) and that backup's password, kept apart.
//
// The copy is taken under the shared lock. Writers take the exclusive lock
// for the whole of an operation, so while the copy is read no regenerate,
// restore or set is half done: the archive holds one committed state, which
// is what a tar of a live keystore does not promise. Readers may run
// meanwhile; the only files they write are the error log and
// smk/machine.check, the latter atomically and with the same bytes.
//
// What is left out is not the keystore's state: the lock file (created by
// the next command), the error log (the history of this installation, not
// data), and temporary files (tmp/'s contents and .tmp-* leftovers, never
// referenced). pending.toml is kept: under the shared lock no writer is
// running, so one that exists is what a crashed writer left, and the
// restored keystore's next writer needs it to clean up as this one's would.

// maxCopyEntries bounds the entries of an archive keytree will restore.
const maxCopyEntries = maxExportEntries

// copyKind is what keytree keeps at a path of the keystore.
type copyKind int

const (
	copyUnknown copyKind = iota // nothing keytree writes
	copySkip                    // keytree's, but not part of the keystore's state
	copyDir
	copyFile
)

// copyEntry says what keytree keeps at rel, a slash-separated path relative
// to the keystore, and for a file the most it reads of it. The backup
// writes, and the restore accepts, exactly the entries it names: a name
// keytree would not create is no part of a keystore.
func copyEntry(rel string) (copyKind, int64) {
	switch parseHandle(rel).kind {
	case kindTemp, kindStaged, kindLock, kindErrorlog:
		return copySkip, 0
	case kindTopDir, kindDatabaseDir, kindSecretsDir:
		return copyDir, 0
	case kindPending:
		return copyFile, formats.MaxPendingSize
	case kindKeystore, kindSMK, kindSMKBackups, kindDatabase, kindDatabaseBackups, kindCredential, kindSecret:
		return copyFile, formats.MaxMetadataSize
	case kindMachineCheck:
		return copyFile, maxMachineCheckSize
	case kindProtector, kindPassword, kindSMKEncryption:
		return copyFile, maxKeyBlobSize
	case kindCredentialBlob, kindSecretBlob:
		return copyFile, maxBlobSize
	}
	return copyUnknown, 0
}

// CopyResult describes a keystore backup written or restored.
type CopyResult struct {
	// ID is the keystore's id (keystore.toml).
	ID string
	// Files and Bytes count the files copied and their contents.
	Files int
	Bytes int64
	// Left lists, on backup, the entries of the directory left out because
	// keytree does not write such names (the error log, the lock and
	// temporary files are left out without being listed).
	Left []string
}

// BackupKeystore writes a copy of the keystore to path, a tar archive
// created owner-only beside path and linked into place only when whole; an
// existing path is refused (15240).
func (ks *Keystore) BackupKeystore(path string) (*CopyResult, error) {
	var res *CopyResult
	err := ks.read("keystore backup", func(s *session) error {
		res = &CopyResult{ID: ks.id}
		return writeArchive(ks.outside, path, func(tw *tar.Writer) error {
			return ks.copyDir(tw, "", ks.nowUTC(), res)
		})
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// BackupKeystoreTo writes a copy of the keystore to w, for standard output.
// The archive is whole only if it returns nil: whoever reads w must discard
// it otherwise.
func (ks *Keystore) BackupKeystoreTo(w io.Writer) (*CopyResult, error) {
	var res *CopyResult
	err := ks.read("keystore backup", func(s *session) error {
		res = &CopyResult{ID: ks.id}
		tw := tar.NewWriter(w)
		if err := ks.copyDir(tw, "", ks.nowUTC(), res); err != nil {
			return err
		}
		return tw.Close()
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// copyDir adds the directory rel of the keystore, and what keytree keeps
// in it, to tw. It reads through the keystore's files, so a link anywhere
// in the tree, or a file that is not a regular file where keytree keeps
// one, is refused as damage rather than followed or copied.
func (ks *Keystore) copyDir(tw *tar.Writer, rel string, now time.Time, res *CopyResult) error {
	entries, err := ks.files.ReadDir(ks.path(filepath.FromSlash(rel)))
	if err != nil {
		return ks.fileError(ks.path(filepath.FromSlash(rel)), err)
	}
	for _, e := range entries {
		r := path.Join(rel, e.Name())
		p := ks.path(filepath.FromSlash(r))
		kind, limit := copyEntry(r)
		switch kind {
		case copySkip:
			continue
		case copyUnknown:
			res.Left = append(res.Left, r)
			continue
		case copyDir:
			if e.Type() != fs.ModeDir {
				return ks.files.NotOurs(p, e.Type(), "a directory")
			}
			hdr := &tar.Header{Name: r + "/", Mode: fsio.DirPerm, ModTime: now, Typeflag: tar.TypeDir, Format: tar.FormatPAX}
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			// tmp/ is copied empty: nothing in it is ever referenced.
			if r == tmpDir {
				continue
			}
			if err := ks.copyDir(tw, r, now, res); err != nil {
				return err
			}
		case copyFile:
			if !e.Type().IsRegular() {
				return ks.files.NotOurs(p, e.Type(), "a regular file")
			}
			data, err := ks.files.ReadFile(p, limit)
			if err != nil {
				return ks.fileError(p, err)
			}
			if err := writeEntry(tw, r, data, now); err != nil {
				return err
			}
			res.Files++
			res.Bytes += int64(len(data))
		}
	}
	return nil
}

// RestoreKeystore unpacks a keystore backup, read from r (source names it
// in messages), into the keystore directory of opts, which must not exist
// or be empty: a restore never replaces or merges into a keystore.
//
// Every entry of the archive is hostile input. Only directories and
// regular files are accepted, each at a name keytree itself writes
// (copyEntry, which rules out absolute paths, "..", links and devices by
// construction), each once, within the size keytree reads of such a file,
// and no more than maxCopyEntries of them; modes, owners and times in the
// archive are ignored, everything is created owner-only. The entries are
// written into a staging directory beside the keystore directory, made
// durable, and renamed into place in one step only when all of them were
// accepted: a failed restore leaves nothing behind.
func RestoreKeystore(opts Options, r io.Reader, source string) (*CopyResult, error) {
	ks, err := newKeystore(opts)
	if err != nil {
		return nil, err
	}
	existed, err := restoreTarget(ks.dir)
	if err != nil {
		return nil, err
	}
	parent := filepath.Dir(ks.dir)
	created := missingDirs(parent)
	if err := ks.outside.MkdirPrivate(parent); err != nil {
		return nil, fmt.Errorf("create %s: %w", parent, err)
	}
	res, err := restoreInto(ks.outside, parent, r, source, func(stage string) error {
		return commitRestore(ks.outside, stage, ks.dir, existed)
	})
	if err != nil {
		// The directories made for the keystore go again: a failed
		// restore leaves nothing behind.
		for _, d := range created {
			_ = osFiles.RemoveDir(d)
		}
		return nil, err
	}
	ks.acceptRestored()
	if err := ks.outside.SyncDir(parent); err != nil {
		return nil, err
	}
	return res, nil
}

// restoreInto unpacks the archive into a new staging directory in parent
// and calls commit with it. On any failure it removes the staging
// directory, through its root, so that whatever the archive made there is
// removed and nothing outside it.
func restoreInto(out fsio.FS, parent string, r io.Reader, source string, commit func(stage string) error) (*CopyResult, error) {
	stage := filepath.Join(parent, formats.TempPrefix+fsio.RandomName())
	if err := out.MkdirPrivate(stage); err != nil {
		return nil, fmt.Errorf("create %s: %w", stage, err)
	}
	f, err := fsio.Open(stage, fsio.Options{Fault: out.Fault(), Report: ioError})
	if err != nil {
		_ = out.RemoveDir(stage)
		return nil, err
	}
	res, err := unpackCopy(f, tar.NewReader(r), source)
	if err != nil {
		_ = f.RemoveTree(stage)
		f.Close()
		_ = out.RemoveDir(stage)
		return nil, err
	}
	// Closed before the rename: Windows renames no directory with a
	// handle open in it.
	f.Close()
	if err := commit(stage); err != nil {
		_ = out.RemoveTree(stage)
		return nil, err
	}
	return res, nil
}

// missingDirs lists dir and those of its parents that do not exist, the
// deepest first.
func missingDirs(dir string) []string {
	var missing []string
	for d := dir; !exists(d); d = filepath.Dir(d) {
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	return missing
}

// commitRestore gives the staged keystore the keystore directory's name, in
// one rename, replacing the empty directory that was there if there was one
// (replaceEmptyDir): a directory no longer empty, or a name that exists
// again, stops it, so nothing anyone put there meanwhile is lost.
func commitRestore(out fsio.FS, stage, dir string, existed bool) error {
	var err error
	if existed {
		err = out.ReplaceEmptyDir(stage, dir)
	} else {
		err = out.RenameDir(stage, dir)
	}
	if err != nil {
		if errors.Is(err, fs.ErrExist) || out.Exists(dir) {
			return errNotEmpty(dir)
		}
		return fmt.Errorf("restore %s: %w", dir, err)
	}
	return nil
}

// restoreTarget checks that dir, where a keystore is to be restored, does
// not exist or is an empty directory (not a link to one), and says which.
func restoreTarget(dir string) (existed bool, err error) {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if fi.Mode().Type() != fs.ModeDir {
		return false, &Error{Text: fmt.Sprintf("%s exists and is not a directory", dir), Kind: ErrExists,
			Remedy: Remedy{Kind: RemedyRestoreIntoNewDir}}
	}
	entries, err := osFiles.ReadDir(dir)
	if err != nil {
		return false, err
	}
	if len(entries) > 0 {
		return false, errNotEmpty(dir)
	}
	return true, nil
}

func errNotEmpty(dir string) error {
	if exists(filepath.Join(dir, keystoreFile)) {
		return &Error{Text: fmt.Sprintf("a keystore already exists in %s; keytree never restores over one", dir), Kind: ErrExists,
			Remedy: Remedy{Kind: RemedyRestoreBesideKeystore}}
	}
	return &Error{Text: fmt.Sprintf("%s is not empty; keytree restores a keystore only into an empty or new directory", dir), Kind: ErrExists,
		Remedy: Remedy{Kind: RemedyRestoreIntoEmptyDir}}
}

// unpackCopy writes the entries of a keystore backup into f's directory,
// checking each (see RestoreKeystore), and makes them durable.
func unpackCopy(f fsio.FS, tr *tar.Reader, source string) (*CopyResult, error) {
	res := &CopyResult{}
	seen := map[string]bool{}
	var meta *formats.Keystore
	b := f.NewBatch(f.Dir())
	// created notes p's directory, and every one above it up to the
	// tree's root, as holding new entries: mkdirPrivate may have made any.
	created := func(p string) {
		for d := filepath.Dir(p); ; d = filepath.Dir(d) {
			b.Note(d)
			if d == f.Dir() || len(d) <= len(f.Dir()) {
				return
			}
		}
	}
	for n := 0; ; n++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, errBadCopy(source, err.Error())
		}
		if n >= maxCopyEntries {
			return nil, errBadCopy(source, fmt.Sprintf("it has more than %d entries", maxCopyEntries))
		}
		rel, kind, limit, err := checkCopyEntry(hdr)
		if err != nil {
			return nil, errBadCopy(source, err.Error())
		}
		if seen[rel] {
			return nil, errBadCopy(source, fmt.Sprintf("entry %q repeats", rel))
		}
		seen[rel] = true
		p := filepath.Join(f.Dir(), filepath.FromSlash(rel))
		if kind == copyDir {
			if err := f.MkdirPrivate(p); err != nil {
				return nil, err
			}
			created(p)
			continue
		}
		data, err := readEntryData(tr, hdr, limit)
		if err != nil {
			return nil, errBadCopy(source, err.Error())
		}
		if rel == keystoreFile {
			if meta, err = formats.DecodeKeystore(data); err != nil {
				return nil, errBadCopy(source, keystoreFile+": "+err.Error())
			}
		}
		// Parents first: an archive need not list its directories.
		if err := f.MkdirPrivate(filepath.Dir(p)); err != nil {
			return nil, err
		}
		if err := f.CreateFile(p, data, fsio.PerFileSync()); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return nil, errBadCopy(source, fmt.Sprintf("entry %q repeats", rel))
			}
			return nil, err
		}
		created(p)
		res.Files++
		res.Bytes += int64(len(data))
	}
	if meta == nil {
		return nil, errBadCopy(source, "it has no "+keystoreFile)
	}
	res.ID = meta.ID
	// The directories every keystore has, even if the archive left an
	// empty one out.
	for _, d := range []string{tmpDir, smkDir, credentialsDir, databasesDir} {
		if err := f.MkdirPrivate(filepath.Join(f.Dir(), d)); err != nil {
			return nil, err
		}
		created(filepath.Join(f.Dir(), d))
	}
	// Durable before the rename commits the tree.
	if err := b.Sync(); err != nil {
		return nil, err
	}
	return res, nil
}

// checkCopyEntry accepts an archive entry only if it is a directory or a
// regular file, at a name keytree writes, of a size keytree reads, and
// returns its keystore-relative name.
func checkCopyEntry(hdr *tar.Header) (rel string, kind copyKind, limit int64, err error) {
	name := hdr.Name
	if hdr.Typeflag == tar.TypeDir {
		name = strings.TrimSuffix(name, "/")
	}
	// copyEntry names only relative, clean, slash-separated paths of
	// keytree's own names; this check makes the error say why.
	if name == "" || strings.HasPrefix(name, "/") || strings.ContainsAny(name, "\\\x00:") || path.Clean(name) != name ||
		name == ".." || strings.HasPrefix(name, "../") || strings.Contains(name, "/../") || strings.HasSuffix(name, "/..") {
		return "", 0, 0, fmt.Errorf("entry %q is not a relative path inside the keystore", hdr.Name)
	}
	for k := range hdr.PAXRecords {
		// A sparse entry would expand to far more than the archive holds.
		if strings.HasPrefix(k, "GNU.sparse.") {
			return "", 0, 0, fmt.Errorf("entry %q is a sparse file", name)
		}
	}
	kind, limit = copyEntry(name)
	switch {
	case kind == copyUnknown || kind == copySkip:
		return "", 0, 0, fmt.Errorf("entry %q is not a file keytree keeps in a keystore", name)
	case kind == copyDir && hdr.Typeflag != tar.TypeDir, kind == copyFile && hdr.Typeflag != tar.TypeReg:
		return "", 0, 0, fmt.Errorf("entry %q is a %s, not a %s", name, entryType(hdr.Typeflag), map[copyKind]string{copyDir: "directory", copyFile: "regular file"}[kind])
	case hdr.Linkname != "":
		return "", 0, 0, fmt.Errorf("entry %q is a link", name)
	case hdr.Size < 0 || hdr.Size > limit || (kind == copyDir && hdr.Size != 0):
		return "", 0, 0, fmt.Errorf("entry %q is too large (%d bytes)", name, hdr.Size)
	}
	return name, kind, limit, nil
}

func entryType(t byte) string {
	switch t {
	case tar.TypeReg:
		return "regular file"
	case tar.TypeDir:
		return "directory"
	case tar.TypeSymlink:
		return "symbolic link"
	case tar.TypeLink:
		return "hard link"
	case tar.TypeChar, tar.TypeBlock:
		return "device"
	case tar.TypeFifo:
		return "FIFO"
	}
	return fmt.Sprintf("entry of type %q", t)
}

func errBadCopy(source, why string) error {
	return &Error{Text: fmt.Sprintf("%s is not a keytree keystore backup: %s", source, why), Kind: ErrCorrupt,
		Hint: "nothing was restored"}
}

// RestoreKeystoreFile is RestoreKeystore from the file path. A pipe or a
// device is refused before it is read: a FIFO would hang keytree, and
// /dev/zero is no backup.
func RestoreKeystoreFile(opts Options, path string) (*CopyResult, error) {
	f, _, err := fsio.OpenRegular(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, &Error{Text: fmt.Sprintf("no backup file %s", path), Kind: ErrNotFound}
	case errors.Is(err, fsio.ErrNotRegular):
		return nil, errBadCopy(path, err.Error())
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	return RestoreKeystore(opts, f, path)
}

// acceptRestored makes the account and machine directories remember the
// commit of the keystore just restored: a restore is a deliberate
// rollback. A restore takes no lock and writes nothing in the keystore, so
// the keys are only tried (as doctor tries them, repairing none): the
// count is taken from an smk.toml that verifies under the SMK, and no
// database's or item's commit above it is remembered, so that an edited
// archive cannot have the directories remember a count that leaves no
// commit to make. What the archive holds is checked by every command that
// follows; if the SMK does not open here, nothing is accepted, and those
// commands say to accept the keystore once it does.
func (ks *Keystore) acceptRestored() {
	data, err := ks.outside.ReadFile(ks.path(keystoreFile), formats.MaxMetadataSize)
	if err != nil {
		return
	}
	meta, err := formats.DecodeKeystore(data)
	if err != nil {
		return
	}
	ks.id = meta.ID
	smk, err := ks.loadSMKMeta()
	if err != nil {
		return
	}
	if authenticated(smk) {
		if _, key := ks.checkSMKEncryptions(smk); key == nil || ks.checkSMKMAC(smk, key) != nil {
			return
		}
	}
	// The keystore's own record last, as AcceptRollback does.
	ks.acceptRestoredItems(ks.highestSeen(ks.commitFiles()), smk.Commit)
	if !authenticated(smk) {
		ks.unmarkFormat2Key(smk.Thumbprint)
	}
	_ = ks.forget(smk.Commit)
}
