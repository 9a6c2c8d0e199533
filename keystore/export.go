package keystore

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"time"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/keystore/internal/fsio"
)

// An export is a tar archive: keytree-export.toml first, then the database's
// database.toml, its password encryptions and its secrets, each file as it
// is in the keystore. The archive and every age file in it open with stock
// tools (tar, age), so an export is also a way out of keytree (P15).

// maxExportEntries bounds the entries of an archive keytree will import.
const maxExportEntries = 4_000_000

// ExportDatabase writes database db to path. It needs no key: the files are
// copied as they are, encrypted. The DMK's SMK encryption is left out, since
// no other keystore's SMK could open it; the import opens by password until
// dmk add-encryption --by smk adds one again.
func (ks *Keystore) ExportDatabase(db, path string) (*formats.ExportManifest, error) {
	if err := validName("database", db); err != nil {
		return nil, err
	}
	var manifest *formats.ExportManifest
	err := ks.read("db export", func(s *session) error {
		meta, err := s.ks.databaseMeta(db, missingDatabase)
		if err != nil {
			return err
		}
		// An export opens no key, so it cannot check what it copies; but
		// a database of format 1 in a keystore of format 2 is one put
		// there, and an import would take its values as format 1's. One
		// rolled back is refused too (its commit is not verified here: an
		// edited one fails its MAC wherever the export is opened).
		if err := s.refuseFormat1Database(meta); err != nil {
			return err
		}
		if err := s.checkKeystoreIfItOpens(); err != nil {
			return err
		}
		if _, err := s.ks.databaseRollback(meta); err != nil {
			return err
		}
		n := 0
		if err := s.ks.eachSecretMeta(db, func(*formats.Secret) error { n++; return nil }); err != nil {
			return err
		}
		manifest = &formats.ExportManifest{Version: formats.Version, Kind: formats.ExportKind, Database: db,
			Thumbprint: meta.Thumbprint, Algorithm: meta.Algorithm, Exported: ks.nowUTC(), Secrets: n}
		return writeArchive(ks.outside, path, func(tw *tar.Writer) error {
			if err := addEntry(tw, formats.ExportManifestName, manifest); err != nil {
				return err
			}
			exported := *meta
			exported.SMKEncryption = false
			if err := addEntry(tw, databaseFile, &exported); err != nil {
				return err
			}
			for _, name := range passwordFiles(meta) {
				if err := addFile(ks.files, tw, name, ks.dbPath(db, name)); err != nil {
					return err
				}
			}
			return s.ks.eachSecretMeta(db, func(sm *formats.Secret) error {
				if _, err := s.ks.checkItemRollback(dbAuthenticated(meta), db, sm.Name, sm.Commit); err != nil {
					return err
				}
				p, _, err := s.ks.itemBlob(secretBlob(db, sm.Name, sm.Revision, 0), dmkGens(meta))
				if err != nil {
					return err
				}
				if err := addEntry(tw, secretsDir+"/"+formats.MetaName(sm.Name), sm); err != nil {
					return err
				}
				return addFile(ks.files, tw, secretsDir+"/"+filepath.Base(p), p)
			})
		})
	})
	return manifest, err
}

type encoder interface{ Encode() ([]byte, error) }

func addEntry(tw *tar.Writer, name string, v encoder) error {
	data, err := v.Encode()
	if err != nil {
		return err
	}
	return writeEntry(tw, name, data, time.Time{})
}

func addFile(f fsio.FS, tw *tar.Writer, name, path string) error {
	data, err := f.ReadFile(path, maxBlobSize)
	if err != nil {
		return err
	}
	return writeEntry(tw, name, data, time.Time{})
}

// writeEntry writes one owner-only regular file into an archive, exports
// and keystore backups alike.
func writeEntry(tw *tar.Writer, name string, data []byte, modTime time.Time) error {
	hdr := &tar.Header{Name: name, Mode: fsio.FilePerm, Size: int64(len(data)), ModTime: modTime, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}

// writeArchive streams an archive into a temporary file beside path, then
// links it into place without replacing anything (15240 if path exists).
func writeArchive(out fsio.FS, path string, fill func(*tar.Writer) error) error {
	err := out.WriteNew(path, func(w io.Writer) error {
		tw := tar.NewWriter(w)
		if err := fill(tw); err != nil {
			return err
		}
		return tw.Close()
	})
	var pe *fs.PathError
	switch {
	case errors.Is(err, fs.ErrExist):
		return errFileExists(path)
	case errors.As(err, &pe) && pe.Op == "open" && strings.HasPrefix(filepath.Base(pe.Path), fsio.TempPrefix):
		return fmt.Errorf("write %s: %w", path, err)
	}
	return err
}

// ImportDatabase attaches an exported database to this keystore, as name (or
// the name it was exported under). Every entry of the archive is checked
// before the database appears: it is unpacked into tmp/ and renamed into
// databases/ in one step. The imported master key has no SMK encryption.
//
// database.toml of format 2 is signed under the DMK and names the database:
// importing one under another name, or an export of format 1 into a
// keystore of format 2 (whose values must be bound), needs the DMK, opened
// with openPassword (bindImport).
func (ks *Keystore) ImportDatabase(path, name string, openPassword []byte) (*formats.ExportManifest, error) {
	// An export is read as a stream of bounded entries (readEntry), but a
	// pipe or device is refused before it is read at all: a FIFO would hang
	// keytree, and /dev/zero is no export.
	f, _, err := fsio.OpenRegular(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &Error{Text: fmt.Sprintf("no export file %s", path), Kind: ErrNotFound}
		}
		if errors.Is(err, fsio.ErrNotRegular) {
			return nil, errBadExport(path, err.Error())
		}
		return nil, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	hdr, err := tr.Next()
	if err != nil || hdr.Name != formats.ExportManifestName || hdr.Typeflag != tar.TypeReg || hdr.Size > formats.MaxMetadataSize {
		return nil, errBadExport(path, "it does not start with "+formats.ExportManifestName)
	}
	data, err := io.ReadAll(io.LimitReader(tr, formats.MaxMetadataSize))
	if err != nil {
		return nil, errBadExport(path, err.Error())
	}
	manifest, err := formats.DecodeExportManifest(data)
	if err != nil {
		return nil, errBadExport(path, err.Error())
	}
	if name == "" {
		name = manifest.Database
	}
	if err := validName("database", name); err != nil {
		return nil, err
	}
	err = ks.write("db import", func(s *session) error {
		err := s.ks.claimDatabaseName(name, func() error {
			return &Error{Number: MsgDMKExists, Kind: ErrExists,
				Text:   "There is already a master key in the database. Please drop it before performing this statement.",
				Remedy: Remedy{Kind: RemedyImportAs, Database: name}}
		})
		if err != nil {
			return err
		}
		return s.begin().buildDatabase("import", name, func(stage string) error {
			meta, staged, err := unpackExport(s.ks, tr, stage, path, manifest)
			if err != nil {
				return err
			}
			if err := s.passImportedCommits(meta, staged, path); err != nil {
				return err
			}
			if err := s.bindImport(stage, meta, name, staged, openPassword); err != nil {
				return err
			}
			meta.Name, meta.SMKEncryption = name, false
			data, err := meta.Encode()
			if err != nil {
				return err
			}
			if err := ks.files.CreateFile(filepath.Join(stage, databaseFile), data, true); err != nil {
				return err
			}
			for _, d := range []string{filepath.Join(stage, secretsDir), stage} {
				if err := ks.files.SyncDir(d); err != nil {
					return err
				}
			}
			// Remembered before the database is in place, as its
			// commit is (commitStage): a crash leaves the records
			// behind its secrets, never ahead of them.
			if dbAuthenticated(meta) && s.keystoreAuthenticated() {
				for sname, st := range staged {
					ks.rememberItem(name, sname, st.meta.Commit)
				}
			}
			return nil
		})
	})
	return manifest, err
}

// unpackExport copies the archive's entries into stage, accepting only the
// files an export holds, each checked, and checks that they agree.
func unpackExport(ks *Keystore, tr *tar.Reader, stage, path string, manifest *formats.ExportManifest) (*formats.Database, map[string]stagedSecret, error) {
	var meta *formats.Database
	seen := map[string]bool{}
	secretMetas := map[string]*formats.Secret{}
	secretBlobs := map[string]string{} // name → blob file
	passwords := map[string]bool{}     // password encryption file names
	for n := 0; ; n++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, errBadExport(path, err.Error())
		}
		if n > maxExportEntries {
			return nil, nil, errBadExport(path, "too many entries")
		}
		if hdr.Typeflag != tar.TypeReg || seen[hdr.Name] {
			return nil, nil, errBadExport(path, fmt.Sprintf("entry %q is not a regular file, or repeats", hdr.Name))
		}
		seen[hdr.Name] = true
		name := hdr.Name
		var limit int64 = maxKeyBlobSize
		var target string
		switch {
		case name == databaseFile:
			data, err := readEntry(tr, hdr, formats.MaxMetadataSize, path)
			if err != nil {
				return nil, nil, err
			}
			if meta, err = formats.DecodeDatabase(data); err != nil {
				return nil, nil, errBadExport(path, databaseFile+": "+err.Error())
			}
			continue
		case strings.HasPrefix(name, "password."):
			if _, _, ok := formats.ParsePasswordBlobName(name); !ok || passwords[name] {
				return nil, nil, errBadExport(path, fmt.Sprintf("unexpected entry %q", name))
			}
			passwords[name] = true
			target = filepath.Join(stage, name)
		case strings.HasPrefix(name, secretsDir+"/"):
			file := strings.TrimPrefix(name, secretsDir+"/")
			if base, ok := strings.CutSuffix(file, ".toml"); ok && formats.ValidateName("secret", base) == nil {
				data, err := readEntry(tr, hdr, formats.MaxMetadataSize, path)
				if err != nil {
					return nil, nil, err
				}
				sm, err := formats.DecodeSecret(data)
				if err != nil || sm.Name != base {
					return nil, nil, errBadExport(path, fmt.Sprintf("%s: not the metadata of secret %q", name, base))
				}
				secretMetas[base] = sm
				if err := ks.files.CreateFile(filepath.Join(stage, secretsDir, file), data, false); err != nil {
					return nil, nil, err
				}
				continue
			}
			base, _, _, ok := formats.ParseBlobName(file)
			if !ok || formats.ValidateName("secret", base) != nil || secretBlobs[base] != "" {
				return nil, nil, errBadExport(path, fmt.Sprintf("unexpected entry %q", name))
			}
			secretBlobs[base] = file
			limit = maxBlobSize
			target = filepath.Join(stage, secretsDir, file)
		default:
			return nil, nil, errBadExport(path, fmt.Sprintf("unexpected entry %q", name))
		}
		if hdr.Size > limit || hdr.Size < 0 {
			return nil, nil, errBadExport(path, fmt.Sprintf("entry %q is too large", name))
		}
		data, err := readEntry(tr, hdr, limit, path)
		if err != nil {
			return nil, nil, err
		}
		if err := ks.files.CreateFile(target, data, false); err != nil {
			return nil, nil, err
		}
	}
	// The entries must agree with each other and with the manifest.
	if meta == nil {
		return nil, nil, errBadExport(path, "it has no "+databaseFile)
	}
	if meta.Thumbprint != manifest.Thumbprint || meta.Algorithm != manifest.Algorithm {
		return nil, nil, errBadExport(path, "the manifest and database.toml name different keys")
	}
	want := passwordFiles(meta)
	if len(passwords) != len(want) {
		return nil, nil, errBadExport(path, "its password encryptions do not match database.toml")
	}
	for _, name := range want {
		if !passwords[name] {
			return nil, nil, errBadExport(path, "its password encryptions do not match database.toml")
		}
	}
	if len(secretMetas) != len(secretBlobs) || len(secretMetas) != manifest.Secrets {
		return nil, nil, errBadExport(path, "its secrets and their values do not match")
	}
	g := dmkGens(meta)
	for name, sm := range secretMetas {
		_, rev, gen, _ := formats.ParseBlobName(secretBlobs[name])
		_, retired := formats.RetiredGeneration(g.retired, gen)
		if rev != sm.Revision || (gen != g.current && !retired) {
			return nil, nil, errBadExport(path, fmt.Sprintf("secret %q: its value is not the revision and generation its metadata names", name))
		}
	}
	if err := ks.files.SyncTree(stage); err != nil {
		return nil, nil, err
	}
	staged := make(map[string]stagedSecret, len(secretMetas))
	for name, sm := range secretMetas {
		staged[name] = stagedSecret{meta: sm, blob: secretBlobs[name]}
	}
	return meta, staged, nil
}

// stagedSecret is a secret of an export unpacked in tmp/: its metadata and
// the name of its value's file.
type stagedSecret struct {
	meta *formats.Secret
	blob string
}

func readEntry(tr *tar.Reader, hdr *tar.Header, limit int64, path string) ([]byte, error) {
	data, err := readEntryData(tr, hdr, limit)
	if err != nil {
		return nil, errBadExport(path, err.Error())
	}
	return data, nil
}

// readEntryData reads an archive entry of at most limit bytes: one that
// says or turns out to be larger is refused before more is read. A
// truncated entry is an error from archive/tar.
func readEntryData(tr *tar.Reader, hdr *tar.Header, limit int64) ([]byte, error) {
	if hdr.Size > limit {
		return nil, fmt.Errorf("entry %q is too large", hdr.Name)
	}
	data, err := io.ReadAll(io.LimitReader(tr, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("entry %q is too large", hdr.Name)
	}
	return data, nil
}

func errBadExport(path, why string) error {
	return &Error{Text: fmt.Sprintf("%s is not a keytree database export: %s", path, why), Kind: ErrCorrupt,
		Hint: "nothing was imported"}
}

// passwordFiles names a database's password encryptions: the current key's,
// and those --force kept of retired keys. An export carries all of them, so
// that a moved database can still recover its orphans.
func passwordFiles(meta *formats.Database) []string {
	var names []string
	for _, pe := range meta.Passwords {
		names = append(names, passwordBlob(meta.Name, pe.ID, meta.Generation).base())
	}
	for _, r := range meta.Retired {
		for _, id := range r.Kept {
			names = append(names, passwordBlob(meta.Name, id, r.Generation).base())
		}
	}
	return names
}

// maxImportAhead bounds how far past this keystore's count the commits of
// an imported database may be: a database exported from a keystore that
// counted that many more commits than this one is not to be expected, and
// the count, signed, only goes up, so an export whose (unverified) commits
// claim more could use up this keystore's commits for good.
const maxImportAhead = 1 << 32

// passImportedCommits makes the keystore's count, at this import's
// commit, pass every commit the database brings from the keystore it was
// exported from (its database.toml's and its secrets'): no commit in the
// keystore is ever above its count. Commits further ahead than
// maxImportAhead are refused.
func (s *session) passImportedCommits(meta *formats.Database, staged map[string]stagedSecret, path string) error {
	if !s.keystoreAuthenticated() {
		return nil
	}
	highest := meta.Commit
	for _, st := range staged {
		highest = max(highest, st.meta.Commit)
	}
	next, err := s.commitToBe()
	if err != nil {
		return err
	}
	if highest > next+maxImportAhead {
		return errBadExport(path, fmt.Sprintf("it holds commit %d, which is more than %d past this keystore's count (%d): it was edited", highest, maxImportAhead, next))
	}
	s.commitFloor = highest
	return nil
}
