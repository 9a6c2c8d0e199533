package keystore

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/protect"
)

// backupTestKeystore makes a keystore with credentials and a database of
// secrets, and returns it with the values it holds, by "credential/NAME"
// and "DB/NAME".
func backupTestKeystore(t *testing.T, d Dirs, n int) (*Keystore, map[string][]byte) {
	t.Helper()
	_, ks := initTestKeystore(t, d)
	values := map[string][]byte{}
	for i := range n {
		name := fmt.Sprintf("c%d", i)
		v := []byte(fmt.Sprintf("credential value %d\x00\xff", i))
		if _, err := ks.SetCredential(name, "svc", v); err != nil {
			t.Fatal(err)
		}
		values["credential/"+name] = v
	}
	if _, err := ks.CreateDMK("app", []byte("Database-Passw0rd-1"), DMKOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		name := fmt.Sprintf("s%d", i)
		v := []byte(fmt.Sprintf("secret value %d", i))
		if _, err := ks.SetSecret("app", name, v, nil); err != nil {
			t.Fatal(err)
		}
		values["app/"+name] = v
	}
	return ks, values
}

// checkValues reads every value back from ks.
func checkValues(t *testing.T, ks *Keystore, values map[string][]byte) {
	t.Helper()
	for ref, want := range values {
		var got []byte
		var err error
		if name, ok := strings.CutPrefix(ref, "credential/"); ok {
			_, got, err = ks.GetCredential(name)
		} else {
			db, name, _ := strings.Cut(ref, "/")
			got, err = ks.GetSecret(db, name, nil)
		}
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s = %q, want %q", ref, got, want)
		}
	}
}

// restoredDirs are d with the keystore at a new, absent directory.
func restoredDirs(t *testing.T, d Dirs) Dirs {
	d.Keystore = filepath.Join(newTestDir(t), "restored")
	return d
}

// ownProtectorDirs gives d copies of its account and machine directories,
// secrets only: a restored copy used beside its original (one keystore id)
// then has commit counts of its own (auth.go).
func ownProtectorDirs(t *testing.T, d Dirs) Dirs {
	t.Helper()
	for _, dir := range []*string{&d.Account, &d.Machine} {
		own := filepath.Join(newTestDir(t), "protector")
		if err := os.Mkdir(own, 0o700); err != nil {
			t.Fatal(err)
		}
		for _, name := range dirEntries(t, *dir) {
			if !strings.HasSuffix(name, ".commit") && !strings.HasSuffix(name, ".format2") {
				writeTestFile(t, filepath.Join(own, name), readTestFile(t, filepath.Join(*dir, name)))
			}
		}
		*dir = own
	}
	return d
}

func TestKeystoreBackupRestore(t *testing.T) {
	d := testDirs(t)
	ks, values := backupTestKeystore(t, d, 3)
	// The records of key backups (backups.toml, beside smk.toml and in the
	// database's directory) are part of the state too.
	keyBackups := newTestDir(t)
	if _, err := ks.BackupSMK(filepath.Join(keyBackups, "smk.age"), []byte("backup password"), SMKOptions{SkipPasswordPolicy: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.BackupDMK("app", filepath.Join(keyBackups, "app.age"), []byte("backup password"), DMKOptions{SkipPasswordPolicy: true}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{ks.path(formats.BackupsFile), ks.dbPath("app", formats.BackupsFile)} {
		wantExists(t, p, true)
	}

	// What is not the keystore's state: the error log, temporary files.
	writeTestFile(t, ks.path(errorlogFile), []byte("2026-12-01T00:00:00Z an event\n"))
	writeTestFile(t, ks.path(tmpDir, ".tmp-0123"), []byte("leftover"))
	writeTestFile(t, ks.path(credentialsDir, ".tmp-0456"), []byte("leftover"))
	// What a crashed writer left: part of the state.
	pending := []byte("version = 1\noperation = \"credential set\"\nstarted = 2026-12-01T00:00:00Z\ncandidates = [\"credentials/c0.9.1.age\"]\n")
	writeTestFile(t, ks.path(pendingFile), pending)
	archive := filepath.Join(newTestDir(t), "keystore.tar")
	res, err := ks.BackupKeystore(archive)
	if err != nil {
		t.Fatal(err)
	}
	if res.ID != ks.ID() || res.Files == 0 || len(res.Left) != 0 {
		t.Fatalf("backup result %+v", res)
	}
	if fi, err := os.Stat(archive); err != nil {
		t.Fatal(err)
	} else if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Fatalf("archive mode %v, want 0600", fi.Mode().Perm())
	}
	if left := dirEntries(t, filepath.Dir(archive)); len(left) != 1 {
		t.Fatalf("beside the archive: %v", left)
	}
	// An existing file is never replaced.
	if _, err := ks.BackupKeystore(archive); err == nil {
		t.Fatal("a second backup to the same file succeeded")
	} else {
		wantMsg(t, err, MsgFileExists, ErrExists)
	}

	rd := restoredDirs(t, d)
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rres, err := RestoreKeystore(Options{Dirs: rd}, f, archive)
	if err != nil {
		t.Fatal(err)
	}
	if rres.ID != ks.ID() || rres.Files != res.Files || rres.Bytes != res.Bytes {
		t.Fatalf("restore result %+v, backup %+v", rres, res)
	}
	// Every file of the state, byte for byte; nothing else.
	want := treeSnapshot(t, d.Keystore, lockFile, errorlogFile, "tmp/.tmp-0123", "credentials/.tmp-0456")
	got := treeSnapshot(t, rd.Keystore)
	if diff := diffSnapshots(want, got); diff != "" {
		t.Fatalf("restored keystore differs from the original:\n%s", diff)
	}
	if !bytes.Equal(readTestFile(t, filepath.Join(rd.Keystore, pendingFile)), pending) {
		t.Fatal("pending.toml was not restored as it was")
	}
	if entries := dirEntries(t, filepath.Join(rd.Keystore, tmpDir)); len(entries) != 0 {
		t.Fatalf("restored tmp/ holds %v", entries)
	}
	if entries := dirEntries(t, filepath.Dir(rd.Keystore)); len(entries) != 1 {
		t.Fatalf("beside the restored keystore: %v", entries)
	}
	checkModes(t, rd.Keystore)
	restored := openTestKeystore(t, Options{Dirs: rd})
	checkValues(t, restored, values)
}

// checkModes checks that everything under dir is owner-only (0700
// directories, 0600 regular files) and returns how many paths it checked.
func checkModes(t *testing.T, dir string) int {
	t.Helper()
	if runtime.GOOS == "windows" {
		return 0
	}
	n := 0
	_ = filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error { // it fails the test itself
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		want := fs.FileMode(0o600)
		if fi.IsDir() {
			want = 0o700 | fs.ModeDir
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), want)
		}
		n++
		return nil
	})
	return n
}

func TestKeystoreBackupToWriter(t *testing.T) {
	d := testDirs(t)
	ks, values := backupTestKeystore(t, d, 2)
	var buf bytes.Buffer
	if _, err := ks.BackupKeystoreTo(&buf); err != nil {
		t.Fatal(err)
	}
	rd := restoredDirs(t, d)
	if _, err := RestoreKeystore(Options{Dirs: rd}, &buf, "standard input"); err != nil {
		t.Fatal(err)
	}
	checkValues(t, openTestKeystore(t, Options{Dirs: rd}), values)
}

// A file keytree does not write is left out of the copy, and said so.
func TestKeystoreBackupLeavesOutStrangers(t *testing.T) {
	d := testDirs(t)
	ks, _ := backupTestKeystore(t, d, 1)
	writeTestFile(t, ks.path(credentialsDir, "notes.txt"), []byte("mine"))
	var buf bytes.Buffer
	res, err := ks.BackupKeystoreTo(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Left) != 1 || res.Left[0] != "credentials/notes.txt" {
		t.Fatalf("left out %v, want credentials/notes.txt", res.Left)
	}
	if bytes.Contains(buf.Bytes(), []byte("notes.txt")) {
		t.Fatal("the archive holds notes.txt")
	}
}

// backupTestArchive is backupTestKeystore(t, d, 1) and its keystore
// backup.
func backupTestArchive(t *testing.T, d Dirs) (*Keystore, map[string][]byte, []byte) {
	t.Helper()
	ks, values := backupTestKeystore(t, d, 1)
	var buf bytes.Buffer
	if _, err := ks.BackupKeystoreTo(&buf); err != nil {
		t.Fatal(err)
	}
	return ks, values, buf.Bytes()
}

// A restore never writes into a directory that holds anything.
func TestKeystoreRestoreRefusesNonEmpty(t *testing.T) {
	d := testDirs(t)
	ks, values, archive := backupTestArchive(t, d)

	// Over the keystore itself.
	before := treeSnapshot(t, d.Keystore)
	_, err := RestoreKeystore(Options{Dirs: d}, bytes.NewReader(archive), "archive")
	wantKind(t, err, ErrExists)
	if !strings.Contains(err.Error(), "a keystore already exists") {
		t.Fatalf("error %q", err)
	}
	if diff := diffSnapshots(before, treeSnapshot(t, d.Keystore)); diff != "" {
		t.Fatalf("a refused restore changed the keystore:\n%s", diff)
	}
	checkValues(t, ks, values)

	// Into a directory with something else in it, or a file.
	rd := restoredDirs(t, d)
	if err := os.Mkdir(rd.Keystore, 0o700); err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(rd.Keystore, "mine"), []byte("mine"))
	_, err = RestoreKeystore(Options{Dirs: rd}, bytes.NewReader(archive), "archive")
	wantKind(t, err, ErrExists)
	if got := dirEntries(t, rd.Keystore); len(got) != 1 {
		t.Fatalf("the directory holds %v after a refused restore", got)
	}
	if got := dirEntries(t, filepath.Dir(rd.Keystore)); len(got) != 1 {
		t.Fatalf("beside it: %v", got)
	}
	file := filepath.Join(filepath.Dir(rd.Keystore), "file")
	writeTestFile(t, file, nil)
	_, err = RestoreKeystore(Options{Dirs: Dirs{Keystore: file, Account: d.Account, Machine: d.Machine}}, bytes.NewReader(archive), "archive")
	wantKind(t, err, ErrExists)

	// An empty directory is fine.
	empty := filepath.Join(filepath.Dir(rd.Keystore), "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	ed := Dirs{Keystore: empty, Account: d.Account, Machine: d.Machine}
	if _, err := RestoreKeystore(Options{Dirs: ed}, bytes.NewReader(archive), "archive"); err != nil {
		t.Fatal(err)
	}
	checkModes(t, empty)
	checkValues(t, openTestKeystore(t, Options{Dirs: ed}), values)
}

// tarEntry is one entry of a hand-made archive; data is written only if
// it is not nil, so an entry can claim a size it does not carry.
type tarEntry struct {
	hdr  tar.Header
	data []byte
}

func makeTar(t *testing.T, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("%s: %v", h.Name, err)
		}
		if e.data == nil {
			// The header alone: a truncated archive, which must be
			// refused on the header, before any data is read.
			tw.Flush()
			return buf.Bytes()
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func reg(name string, data []byte) tarEntry {
	return tarEntry{hdr: tar.Header{Name: name, Typeflag: tar.TypeReg, Size: int64(len(data))}, data: data}
}

// Every entry of an archive is hostile: anything but keytree's own files
// and directories is refused, and nothing is left behind, in the target or
// beside it.
func TestKeystoreRestoreRefusesHostileArchives(t *testing.T) {
	d := testDirs(t)
	ks, _ := backupTestKeystore(t, d, 1)
	meta := readTestFile(t, ks.path(keystoreFile))
	good := []tarEntry{reg("keystore.toml", meta), {hdr: tar.Header{Name: "credentials/", Typeflag: tar.TypeDir}, data: []byte{}}}
	with := func(extra ...tarEntry) []byte { return makeTar(t, append(append([]tarEntry{}, good...), extra...)...) }
	cases := []struct {
		name, why string
		archive   []byte
	}{
		{"dotdot", "not a relative path inside the keystore", with(reg("../escaped.toml", []byte("x")))},
		{"dotdot inside", "not a relative path inside the keystore", with(reg("credentials/../../escaped", []byte("x")))},
		{"absolute", "not a relative path inside the keystore", with(reg("/tmp/escaped.toml", []byte("x")))},
		{"backslash", "not a relative path inside the keystore", with(reg(`credentials\..\..\x.toml`, []byte("x")))},
		{"symlink", "symbolic link", with(tarEntry{hdr: tar.Header{Name: "credentials/c.toml", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}, data: []byte{}})},
		{"hard link", "hard link", with(tarEntry{hdr: tar.Header{Name: "credentials/c.toml", Typeflag: tar.TypeLink, Linkname: "keystore.toml"}, data: []byte{}})},
		{"symlink dir", "symbolic link", with(tarEntry{hdr: tar.Header{Name: "databases/app", Typeflag: tar.TypeSymlink, Linkname: "/"}, data: []byte{}})},
		{"device", "device", with(tarEntry{hdr: tar.Header{Name: "credentials/c.1.1.age", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 5}, data: []byte{}})},
		{"fifo", "FIFO", with(tarEntry{hdr: tar.Header{Name: "smk.toml", Typeflag: tar.TypeFifo}, data: []byte{}})},
		{"huge value", "too large", with(tarEntry{hdr: tar.Header{Name: "credentials/c.1.1.age", Typeflag: tar.TypeReg, Size: maxBlobSize + 1}})},
		{"huge metadata", "too large", with(tarEntry{hdr: tar.Header{Name: "smk.toml", Typeflag: tar.TypeReg, Size: 1 << 40}})},
		{"sparse", "sparse", sparseTar(t)},
		{"unknown name", "not a file keytree keeps", with(reg("authorized_keys", []byte("x")))},
		{"hidden name", "not a file keytree keeps", with(reg("credentials/.profile", []byte("x")))},
		{"lock", "not a file keytree keeps", with(reg("lock", []byte{}))},
		{"tmp file", "not a file keytree keeps", with(reg("tmp/.tmp-0123", []byte("x")))},
		{"invalid name", "not a file keytree keeps", with(reg("credentials/CON.toml", []byte("x")))},
		{"file as dir", "not a directory", with(reg("smk", []byte("x")))},
		{"repeat", "repeats", with(reg("smk.toml", []byte("a")), reg("smk.toml", []byte("b")))},
		{"no keystore.toml", "no keystore.toml", makeTar(t, reg("smk.toml", []byte("x")))},
		{"bad keystore.toml", "keystore.toml", makeTar(t, reg("keystore.toml", []byte("version = 99\n")))},
		{"not tar", "", []byte(strings.Repeat("not an archive\n", 100))},
		{"an export", "not a file keytree keeps", makeTar(t, reg("keytree-export.toml", []byte("x")))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			parent := newTestDir(t)
			// Missing parents are made, and removed again.
			rd := Dirs{Keystore: filepath.Join(parent, "a", "b", "restored"), Account: d.Account, Machine: d.Machine}
			_, err := RestoreKeystore(Options{Dirs: rd}, bytes.NewReader(c.archive), "hostile.tar")
			wantKind(t, err, ErrCorrupt)
			if !strings.Contains(err.Error(), "hostile.tar is not a keytree keystore backup") || !strings.Contains(err.Error(), c.why) {
				t.Fatalf("error %q, want one saying %q", err, c.why)
			}
			if entries := dirEntries(t, parent); len(entries) != 0 {
				t.Fatalf("a refused restore left %v", entries)
			}
			wantExists(t, filepath.Join(filepath.Dir(parent), "escaped.toml"), false)
		})
	}
}

// A backup taken while another process regenerates keys and replaces
// values holds one committed state: restored, every value reads back. A
// tar of the live directory taken the same way was damaged 4 times out of
// 40 (issue 9).
func TestKeystoreBackupConsistentDuringRegenerate(t *testing.T) {
	t.Parallel()
	d := testDirs(t)
	_, values := backupTestKeystore(t, d, 8)
	writer := openTestKeystore(t, Options{Dirs: d, LockTimeout: time.Minute})
	reader := openTestKeystore(t, Options{Dirs: d, LockTimeout: time.Minute})

	var stop atomic.Bool
	var wg sync.WaitGroup
	var regenerations atomic.Int64
	errs := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; !stop.Load(); i++ {
			var err error
			switch i % 3 {
			case 0:
				_, err = writer.RegenerateSMK(SMKOptions{})
			case 1:
				_, err = writer.RegenerateDMK("app", []byte("Database-Passw0rd-1"), DMKOptions{})
			case 2:
				// The same value, a new revision: files come and go.
				_, err = writer.SetCredential("c0", "svc", values["credential/c0"])
			}
			if err != nil {
				errs <- err
				return
			}
			regenerations.Add(1)
		}
	}()
	const copies = 12
	last := int64(-1)
	for i := range copies {
		// Each copy after at least one more operation, taken while
		// the writer goes on.
		for deadline := time.Now().Add(time.Minute); regenerations.Load() == last && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		last = regenerations.Load()
		var buf bytes.Buffer
		if _, err := reader.BackupKeystoreTo(&buf); err != nil {
			stop.Store(true)
			wg.Wait()
			t.Fatalf("backup %d: %v", i, err)
		}
		// The copy is used while the original goes on: with protector
		// directories of its own, or the original's next commit would
		// make the copy look rolled back.
		rd := ownProtectorDirs(t, restoredDirs(t, d))
		if _, err := RestoreKeystore(Options{Dirs: rd}, &buf, "copy"); err != nil {
			stop.Store(true)
			wg.Wait()
			t.Fatalf("restore %d: %v", i, err)
		}
		checkValues(t, openTestKeystore(t, Options{Dirs: rd}), values)
	}
	stop.Store(true)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatalf("the writer failed: %v", err)
	default:
	}
	if regenerations.Load() < copies {
		t.Fatalf("only %d operations ran beside %d copies: the test did not overlap them", regenerations.Load(), copies)
	}
	checkValues(t, writer, values)
}

// A crash at any step of a restore leaves the directory as it was (absent,
// or empty): never half a keystore under its name. The staging directory
// beside it is all that remains, and the restore runs again.
func TestKeystoreRestoreCrash(t *testing.T) {
	t.Parallel()
	d := testDirs(t)
	_, values, archive := backupTestArchive(t, d)
	for _, existing := range []bool{false, true} {
		steps := 0
		for n := 1; ; n++ {
			parent := newTestDir(t)
			rd := Dirs{Keystore: filepath.Join(parent, "restored"), Account: d.Account, Machine: d.Machine}
			if existing {
				if err := os.Mkdir(rd.Keystore, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			cp := &crashPoint{n: n}
			_, err := RestoreKeystore(Options{Dirs: rd, fault: cp.hook}, bytes.NewReader(archive), "archive")
			if !cp.crashed {
				if err != nil {
					t.Fatalf("restore with no crash: %v", err)
				}
				steps = n - 1
				checkValues(t, openTestKeystore(t, Options{Dirs: rd}), values)
				break
			}
			if fileExists(filepath.Join(rd.Keystore, keystoreFile)) {
				// After the commit: the whole keystore.
				checkValues(t, openTestKeystore(t, Options{Dirs: rd}), values)
				continue
			}
			if !existing && fileExists(rd.Keystore) {
				t.Fatalf("crash at step %d (%s): the keystore directory is no longer as it was", n, cp.at)
			}
			// On Windows the empty directory is removed just before the
			// rename, so a crash in between leaves none.
			if existing && (runtime.GOOS != "windows" || fileExists(rd.Keystore)) && len(dirEntries(t, rd.Keystore)) != 0 {
				t.Fatalf("crash at step %d (%s): the empty directory holds %v", n, cp.at, dirEntries(t, rd.Keystore))
			}
			if _, err := RestoreKeystore(Options{Dirs: rd}, bytes.NewReader(archive), "archive"); err != nil {
				t.Fatalf("restore after a crash at step %d (%s): %v", n, cp.at, err)
			}
			checkValues(t, openTestKeystore(t, Options{Dirs: rd}), values)
		}
		if steps < 10 {
			t.Fatalf("a restore took %d steps: the hook does not see it", steps)
		}
		t.Logf("restore (into an existing directory: %v): %d steps, each crashed at", existing, steps)
	}
}

// A crash at any step of a backup leaves no file at its name, or the whole
// archive.
func TestKeystoreBackupCrash(t *testing.T) {
	d := testDirs(t)
	ks, values := backupTestKeystore(t, d, 2)
	for n := 1; ; n++ {
		archive := filepath.Join(newTestDir(t), "keystore.tar")
		cp := &crashPoint{n: n}
		ks.setFault(cp.hook)
		_, err := ks.BackupKeystore(archive)
		ks.setFault(nil)
		if !cp.crashed {
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("backup: %d steps, each crashed at", n-1)
			break
		}
		if !fileExists(archive) {
			continue
		}
		f, err := os.Open(archive)
		if err != nil {
			t.Fatal(err)
		}
		rd := restoredDirs(t, d)
		_, err = RestoreKeystore(Options{Dirs: rd}, f, archive)
		f.Close()
		if err != nil {
			t.Fatalf("crash at step %d (%s) left an archive that does not restore: %v", n, cp.at, err)
		}
		checkValues(t, openTestKeystore(t, Options{Dirs: rd}), values)
	}
}

// sparseTar is an archive of one sparse entry (PAX format 1.0): a few
// bytes that a reader expands to a megabyte of zeros, within the size
// limit, so that only the refusal of sparse entries stops it. archive/tar
// writes no sparse entries, so the PAX header is made by hand.
func sparseTar(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	records := ""
	for _, kv := range [][2]string{{"GNU.sparse.major", "1"}, {"GNU.sparse.minor", "0"},
		{"GNU.sparse.name", "credentials/c.1.1.age"}, {"GNU.sparse.realsize", "1048576"}} {
		rec := " " + kv[0] + "=" + kv[1] + "\n"
		n := len(rec)
		for len(fmt.Sprint(n)+rec) != n {
			n = len(fmt.Sprint(n) + rec)
		}
		records += fmt.Sprint(n) + rec
	}
	if err := tw.WriteHeader(&tar.Header{Name: "keystore.toml", Typeflag: tar.TypeReg, Size: int64(len(records)), Mode: 0o600, Format: tar.FormatUSTAR}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte(records)); err != nil {
		t.Fatal(err)
	}
	tw.Flush()
	// Make that entry a PAX extended header: its type flag, and the
	// header's checksum again.
	hdr := buf.Bytes()[:512]
	hdr[156] = tar.TypeXHeader
	copy(hdr[148:156], "        ")
	sum := 0
	for _, c := range hdr {
		sum += int(c)
	}
	copy(hdr[148:156], fmt.Sprintf("%06o\x00 ", sum))
	// The sparse map (one region of one byte at offset 0), then the data.
	data := append([]byte("1\n0\n1\n"), make([]byte, 512-6)...)
	data = append(data, 'x')
	if err := tw.WriteHeader(&tar.Header{Name: "credentials/c.1.1.age", Typeflag: tar.TypeReg, Size: int64(len(data)), Mode: 0o600, Format: tar.FormatUSTAR}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// FuzzCopyEntry: whatever name an archive gives, a name the restore
// accepts is a local, clean, slash-separated path: it cannot reach outside
// the directory it is unpacked into, on any OS.
func FuzzCopyEntry(f *testing.F) {
	for _, s := range []string{"keystore.toml", "smk/account.1.age", "credentials/c.1.1.age", "databases/app/secrets/s.toml",
		"databases/app/password.0123456789abcdef.2.age", "databases/app/smk.1.2.age", "../x", "/etc/passwd", "credentials/..",
		`credentials\..\x.toml`, "databases/C:/x", "databases/app/secrets/", "tmp/.tmp-1", "credentials/CON.toml"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, name string, dir bool) {
		hdr := &tar.Header{Name: name, Typeflag: tar.TypeReg}
		if dir {
			hdr.Typeflag = tar.TypeDir
		}
		rel, kind, limit, err := checkCopyEntry(hdr)
		if err != nil {
			return
		}
		if !filepath.IsLocal(filepath.FromSlash(rel)) || !fs.ValidPath(rel) || strings.ContainsAny(rel, `\:`) {
			t.Fatalf("accepted %q as %q, which is not a local path", name, rel)
		}
		if (kind == copyDir) != dir || (kind == copyFile && limit <= 0) {
			t.Fatalf("accepted %q as kind %d, limit %d", name, kind, limit)
		}
	})
}

// FuzzRestoreKeystore: an archive restores, or fails and leaves nothing;
// either way no panic, and what it restores is only files keytree keeps.
func FuzzRestoreKeystore(f *testing.F) {
	var archive bytes.Buffer
	d, err := fuzzDirs()
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { os.RemoveAll(filepath.Dir(d.Keystore)) })
	if _, err := Init(Options{Dirs: d}, protect.X25519); err != nil {
		f.Fatal(err)
	}
	ks, err := Open(Options{Dirs: d})
	if err != nil {
		f.Fatal(err)
	}
	if _, err := ks.SetCredential("c", "svc", []byte("v")); err != nil {
		f.Fatal(err)
	}
	if _, err := ks.BackupKeystoreTo(&archive); err != nil {
		f.Fatal(err)
	}
	f.Add(archive.Bytes())
	f.Add(archive.Bytes()[:len(archive.Bytes())/2])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		parent, err := os.MkdirTemp("", "keytree-fuzz-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(parent)
		rd := Dirs{Keystore: filepath.Join(parent, "restored"), Account: d.Account, Machine: d.Machine}
		_, err = RestoreKeystore(Options{Dirs: rd}, bytes.NewReader(data), "fuzz")
		if err != nil {
			if entries, _ := os.ReadDir(parent); len(entries) != 0 {
				t.Fatalf("a failed restore (%v) left %d entries", err, len(entries))
			}
			return
		}
		err = filepath.WalkDir(rd.Keystore, func(p string, e fs.DirEntry, err error) error {
			if err != nil || p == rd.Keystore {
				return err
			}
			r, _ := filepath.Rel(rd.Keystore, p)
			kind, _ := copyEntry(filepath.ToSlash(r))
			if kind != copyDir && kind != copyFile || (kind == copyDir) != e.IsDir() {
				t.Fatalf("restored %s", r)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// fuzzDirs makes the three directories of a keystore for a fuzz target,
// under one temporary directory.
func fuzzDirs() (Dirs, error) {
	root, err := os.MkdirTemp("", "keytree-fuzz-")
	if err != nil {
		return Dirs{}, err
	}
	return Dirs{Keystore: filepath.Join(root, "keystore"), Account: filepath.Join(root, "account"), Machine: filepath.Join(root, "machine")}, nil
}
