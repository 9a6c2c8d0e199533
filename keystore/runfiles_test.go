package keystore

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"testing"

	"github.com/keytree-dev/keytree/keystore/internal/fsio"
)

// The files of keytree run --file (P19): a run directory of owner-only
// files in a private base, removed with its lock file when the run ends;
// the directories of runs that ended without removing them (killed) are
// removed by the next run, those of live runs kept; nothing in or in place
// of the base leads keytree to write or remove anything outside it.

var runDirName = regexp.MustCompile(`^run-[0-9a-f]{24}$`)

// runBaseIn is a base directory that does not exist yet, in a new
// directory of the test's.
func runBaseIn(t *testing.T) string {
	t.Helper()
	return filepath.Join(newTestDir(t), "run")
}

func checkPerm(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	if runtime.GOOS == "windows" {
		return // an owner-only DACL; fsio's ACL tests check those
	}
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != want {
		t.Errorf("%s has mode %04o, want %04o", path, fi.Mode().Perm(), want)
	}
}

func mustWrite(t *testing.T, path string, data []byte, perm fs.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, data, perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil { // whatever the umask
		t.Fatal(err)
	}
}

func mustMkdir(t *testing.T, path string) {
	t.Helper()
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
}

func mustSymlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// dieRun leaves r as a run killed while its program ran leaves its
// directory: its files and lock file in place, the lock free.
func dieRun(r *RunFiles) {
	r.lock.Release()
	r.files.Close()
}

func TestRunFilesWriteAndRemove(t *testing.T) {
	base := runBaseIn(t)
	r, err := NewRunFiles(base)
	if err != nil {
		t.Fatal(err)
	}
	checkPerm(t, base, 0o700) // made, owner-only
	if !runDirName.MatchString(r.name) {
		t.Fatalf("run directory %q is not run-<24 hex digits>", r.name)
	}
	dir := filepath.Join(base, r.name)
	lock := dir + runLockSuffix
	if fi, err := os.Lstat(lock); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("the run's lock file %s: %v", lock, err)
	}

	values := map[string][]byte{
		"TOKEN":  []byte("s3cr3t\n"),
		"BINARY": {0, 0xff, '\r', '\n', 0},
		"EMPTY":  {},
	}
	for _, name := range []string{"TOKEN", "BINARY", "EMPTY"} {
		p, err := r.Write(name, values[name])
		if err != nil {
			t.Fatalf("Write %s: %v", name, err)
		}
		if want := filepath.Join(dir, name); p != want {
			t.Fatalf("Write %s returned %s, want %s", name, p, want)
		}
		got, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(got, values[name]) {
			t.Fatalf("%s holds %q (%v), want %q", p, got, err, values[name])
		}
		checkPerm(t, p, 0o600)
	}
	checkPerm(t, dir, 0o700)
	checkPerm(t, lock, 0o600)
	if got := dirEntries(t, base); !slices.Equal(got, []string{r.name, r.name + runLockSuffix}) {
		t.Fatalf("base holds %v, want the run's directory and lock", got)
	}

	if err := r.Remove(); err != nil {
		t.Fatal(err)
	}
	if got := dirEntries(t, base); len(got) != 0 {
		t.Fatalf("after Remove the base holds %v", got)
	}
}

func TestRunFilesWriteRefusesNames(t *testing.T) {
	base := runBaseIn(t)
	r, err := NewRunFiles(base)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Remove() }()
	if _, err := r.Write("A", []byte("first")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"", ".", "..", "../ESCAPE", "a/b", `a\b`, `..\ESCAPE`, "A"} {
		if p, err := r.Write(name, []byte("second")); err == nil {
			t.Errorf("Write(%q) wrote %s", name, p)
		}
	}
	if got := dirEntries(t, filepath.Join(base, r.name)); !slices.Equal(got, []string{"A"}) {
		t.Errorf("the run's directory holds %v, want only A", got)
	}
	if got := dirEntries(t, base); len(got) != 2 {
		t.Errorf("the base holds %v, want the run's directory and lock only", got)
	}
	if data, _ := os.ReadFile(filepath.Join(base, r.name, "A")); string(data) != "first" {
		t.Errorf("A was overwritten: %q", data)
	}
}

// A file planted in the run's directory under a value's name (a link to a
// file elsewhere, Unix) is not written through.
func TestRunFilesWriteDoesNotFollowPlantedLink(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symbolic links need a privilege on Windows")
	}
	outside := newTestDir(t)
	victim := filepath.Join(outside, "victim")
	mustWrite(t, victim, []byte("victim"), 0o644)
	r, err := NewRunFiles(runBaseIn(t))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Remove() }()
	mustSymlink(t, victim, filepath.Join(r.dir(), "TOKEN"))
	if _, err := r.Write("TOKEN", []byte("s3cr3t")); err == nil {
		t.Fatal("Write wrote through a link planted at its name")
	}
	if data, _ := os.ReadFile(victim); string(data) != "victim" {
		t.Fatalf("the file the link points to now holds %q", data)
	}
	checkPerm(t, victim, 0o644)
}

// A link put in place of the run's directory, to a directory elsewhere:
// Write and Remove refuse it, and the directory elsewhere and what it holds
// are left as they were; the clean-up then removes the link, not its
// target.
func TestRunFilesLinkInPlaceOfRunDir(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symbolic links need a privilege on Windows")
	}
	outside := newTestDir(t)
	mustWrite(t, filepath.Join(outside, "keep"), []byte("keep"), 0o644)
	base := runBaseIn(t)
	r, err := NewRunFiles(base)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(r.dir()); err != nil {
		t.Fatal(err)
	}
	mustSymlink(t, outside, r.dir())
	if p, err := r.Write("TOKEN", []byte("s3cr3t")); err == nil {
		t.Errorf("Write wrote %s through a link in place of the run's directory", p)
	}
	if err := r.Remove(); err == nil {
		t.Errorf("Remove removed a link in place of the run's directory as if it were it")
	}
	if got := dirEntries(t, outside); !slices.Equal(got, []string{"keep"}) {
		t.Fatalf("the directory the link points to holds %v, want keep only", got)
	}
	dieRun(r)
	if _, err := CleanRunFiles(base); err != nil {
		t.Fatal(err)
	}
	if exists(r.dir()) {
		t.Error("the clean-up left the link")
	}
	if got := dirEntries(t, outside); !slices.Equal(got, []string{"keep"}) {
		t.Fatalf("the clean-up changed the directory the link points to: %v", got)
	}
}

func TestCleanRunFilesDeadAndLive(t *testing.T) {
	base := runBaseIn(t)
	live, err := NewRunFiles(base)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = live.Remove() }()
	if _, err := live.Write("LIVE", []byte("live")); err != nil {
		t.Fatal(err)
	}
	dead, err := NewRunFiles(base)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dead.Write("DEAD", []byte("dead")); err != nil {
		t.Fatal(err)
	}
	if _, err := dead.Write("DEAD2", []byte("dead")); err != nil {
		t.Fatal(err)
	}
	dieRun(dead)

	// A directory without its lock file, a lock file without its directory
	// (a run killed between the removals), and a lock file held by a run
	// that has not made its directory yet.
	noLock := filepath.Join(base, "run-"+fsio.RandomName())
	mustMkdir(t, noLock)
	mustMkdir(t, filepath.Join(noLock, "sub"))
	mustWrite(t, filepath.Join(noLock, "sub", "F"), []byte("x"), 0o600)
	lockOnly := filepath.Join(base, "run-"+fsio.RandomName()+runLockSuffix)
	mustWrite(t, lockOnly, nil, 0o600)
	starting := filepath.Join(base, "run-"+fsio.RandomName()+runLockSuffix)
	other, err := fsio.Open(base, fsio.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	held, err := other.Lock(starting, fsio.Exclusive, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()

	n, err := CleanRunFiles(base)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("CleanRunFiles removed %d run directories, want 2", n)
	}
	for _, p := range []string{dead.dir(), dead.dir() + runLockSuffix, noLock, lockOnly} {
		if exists(p) {
			t.Errorf("%s was left", filepath.Base(p))
		}
	}
	for _, p := range []string{live.dir(), live.dir() + runLockSuffix, filepath.Join(live.dir(), "LIVE"), starting} {
		if !exists(p) {
			t.Errorf("%s of a live run was removed", filepath.Base(p))
		}
	}
	// The live run goes on: it writes, and removes its own.
	if _, err := live.Write("MORE", []byte("more")); err != nil {
		t.Fatal(err)
	}
	if n, err := CleanRunFiles(base); n != 0 || err != nil {
		t.Fatalf("a second clean-up removed %d (%v)", n, err)
	}
	if err := live.Remove(); err != nil {
		t.Fatal(err)
	}
	held.Release()
	if _, err := CleanRunFiles(base); err != nil {
		t.Fatal(err)
	}
	if got := dirEntries(t, base); len(got) != 0 {
		t.Fatalf("the base holds %v", got)
	}
}

func TestCleanRunFilesMissingBase(t *testing.T) {
	base := runBaseIn(t)
	if n, err := CleanRunFiles(base); n != 0 || err != nil {
		t.Fatalf("CleanRunFiles of a missing base: %d, %v", n, err)
	}
	if exists(base) {
		t.Fatal("CleanRunFiles made the base")
	}
}

// Names in the base that are not a run's (no run- prefix) are left alone.
func TestCleanRunFilesKeepsOtherNames(t *testing.T) {
	base := runBaseIn(t)
	r, err := NewRunFiles(base)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Remove(); err != nil {
		t.Fatal(err)
	}
	mustMkdir(t, filepath.Join(base, "notes"))
	mustWrite(t, filepath.Join(base, "notes", "keep"), []byte("keep"), 0o600)
	mustWrite(t, filepath.Join(base, "keep.lock"), nil, 0o600)
	if n, err := CleanRunFiles(base); n != 0 || err != nil {
		t.Fatalf("CleanRunFiles: %d, %v", n, err)
	}
	if got := dirEntries(t, base); !slices.Equal(got, []string{"keep.lock", "notes"}) {
		t.Fatalf("the base holds %v", got)
	}
}

// Links planted in the base (Unix): a dead run's directory that is a link
// to a directory elsewhere, a dead run's directory that holds links to a
// file and a directory elsewhere, a run's lock file that is a link or a
// hard link to a file elsewhere (keytree would lock it and make it 0600).
// The clean-up removes links as links and leaves a lock it cannot trust,
// with its directory; nothing outside the base changes.
func TestCleanRunFilesPlantedLinks(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symbolic links need a privilege on Windows")
	}
	outside := newTestDir(t)
	victimDir := filepath.Join(outside, "dir")
	mustMkdir(t, victimDir)
	mustWrite(t, filepath.Join(victimDir, "keep"), []byte("keep"), 0o644)
	victim := filepath.Join(outside, "victim")
	mustWrite(t, victim, []byte("victim"), 0o644)
	victim2 := filepath.Join(outside, "victim2")
	mustWrite(t, victim2, []byte("victim2"), 0o644)

	base := runBaseIn(t)
	r, err := NewRunFiles(base)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Remove(); err != nil {
		t.Fatal(err)
	}
	linkDir := filepath.Join(base, "run-"+fsio.RandomName())
	mustSymlink(t, victimDir, linkDir)
	linksIn := filepath.Join(base, "run-"+fsio.RandomName())
	mustMkdir(t, linksIn)
	mustSymlink(t, victim, filepath.Join(linksIn, "F"))
	mustSymlink(t, victimDir, filepath.Join(linksIn, "D"))
	linkLock := filepath.Join(base, "run-"+fsio.RandomName())
	mustMkdir(t, linkLock)
	mustWrite(t, filepath.Join(linkLock, "F"), []byte("x"), 0o600)
	mustSymlink(t, victim, linkLock+runLockSuffix)
	hardLock := filepath.Join(base, "run-"+fsio.RandomName())
	mustMkdir(t, hardLock)
	if err := os.Link(victim2, hardLock+runLockSuffix); err != nil {
		t.Fatal(err)
	}

	n, err := CleanRunFiles(base)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("CleanRunFiles removed %d, want 2 (the link and the directory of links)", n)
	}
	for _, p := range []string{linkDir, linksIn} {
		if exists(p) {
			t.Errorf("%s was left", p)
		}
	}
	for _, p := range []string{linkLock, linkLock + runLockSuffix, filepath.Join(linkLock, "F"), hardLock, hardLock + runLockSuffix} {
		if !exists(p) {
			t.Errorf("%s, whose lock is not keytree's, was removed", p)
		}
	}
	if got := dirEntries(t, victimDir); !slices.Equal(got, []string{"keep"}) {
		t.Errorf("the directory elsewhere holds %v", got)
	}
	for p, want := range map[string]string{victim: "victim", victim2: "victim2"} {
		if data, err := os.ReadFile(p); string(data) != want {
			t.Errorf("%s holds %q (%v)", p, data, err)
		}
		checkPerm(t, p, 0o644)
	}
	checkPerm(t, victimDir, 0o700)
}

// The base itself: it must be a real directory, the account's own, that
// nobody else can use. Anything else is refused (ErrPermissions, exit 8)
// by NewRunFiles and CleanRunFiles alike, and nothing in it, or where it
// leads, is written or removed.
func TestOpenRunBaseRefuses(t *testing.T) {
	deadRunIn := func(t *testing.T, dir string) string {
		d := filepath.Join(dir, "run-"+fsio.RandomName())
		mustMkdir(t, d)
		mustWrite(t, filepath.Join(d, "F"), []byte("x"), 0o600)
		return d
	}
	refused := func(t *testing.T, base string) {
		t.Helper()
		if f, err := openRunBase(base); err == nil {
			f.Close()
			t.Error("openRunBase opened it")
		} else if !errors.Is(err, ErrPermissions) {
			t.Errorf("openRunBase: %v, not an unsafe-permissions error", err)
		}
		if r, err := NewRunFiles(base); err == nil {
			_ = r.Remove()
			t.Error("NewRunFiles made a run directory in it")
		} else if !errors.Is(err, ErrPermissions) {
			t.Errorf("NewRunFiles: %v, not an unsafe-permissions error", err)
		}
		if n, err := CleanRunFiles(base); err == nil || n != 0 {
			t.Errorf("CleanRunFiles: %d, %v", n, err)
		}
	}

	t.Run("file", func(t *testing.T) {
		base := runBaseIn(t)
		mustWrite(t, base, []byte("a file"), 0o600)
		refused(t, base)
		if data, _ := os.ReadFile(base); string(data) != "a file" {
			t.Errorf("the file now holds %q", data)
		}
	})
	t.Run("link to a private directory", func(t *testing.T) {
		if runtime.GOOS == "windows" {
			t.Skip("symbolic links need a privilege on Windows")
		}
		target := newTestDir(t) // 0700, the account's own
		dead := deadRunIn(t, target)
		base := runBaseIn(t)
		mustSymlink(t, target, base)
		refused(t, base)
		if got := dirEntries(t, target); !slices.Equal(got, []string{filepath.Base(dead)}) {
			t.Errorf("the directory the link points to holds %v", got)
		}
		if !exists(filepath.Join(dead, "F")) {
			t.Error("a run directory was removed through the link")
		}
	})
	t.Run("dangling link", func(t *testing.T) {
		if runtime.GOOS == "windows" {
			t.Skip("symbolic links need a privilege on Windows")
		}
		target := filepath.Join(newTestDir(t), "made-through-link")
		base := runBaseIn(t)
		mustSymlink(t, target, base)
		refused(t, base)
		if exists(target) {
			t.Error("the link's target was made")
		}
	})
	for _, perm := range []fs.FileMode{0o750, 0o770, 0o705, 0o701} {
		t.Run(fmt.Sprintf("mode %04o", perm), func(t *testing.T) {
			if runtime.GOOS == "windows" {
				t.Skip("Unix modes")
			}
			base := runBaseIn(t)
			mustMkdir(t, base)
			dead := deadRunIn(t, base)
			if err := os.Chmod(base, perm); err != nil {
				t.Fatal(err)
			}
			refused(t, base)
			checkPerm(t, base, perm)
			if got := dirEntries(t, base); !slices.Equal(got, []string{filepath.Base(dead)}) {
				t.Errorf("the base holds %v", got)
			}
		})
	}
	t.Run("another account's", func(t *testing.T) {
		if runtime.GOOS == "windows" || os.Geteuid() != 0 {
			t.Skip("giving a directory to another account needs root on Unix")
		}
		base := runBaseIn(t)
		mustMkdir(t, base)
		dead := deadRunIn(t, base)
		if err := os.Lchown(base, 12345, 12345); err != nil {
			t.Fatal(err)
		}
		refused(t, base)
		if got := dirEntries(t, base); !slices.Equal(got, []string{filepath.Base(dead)}) {
			t.Errorf("the base holds %v", got)
		}
		_, err := openRunBase(base)
		var ke *Error
		if !errors.As(err, &ke) || !regexp.MustCompile(`belongs to uid 12345`).MatchString(ke.Text) {
			t.Errorf("the error does not name the owner: %v", err)
		}
	})
}

// A base the account owns and keeps private is used as it is.
func TestOpenRunBaseExisting(t *testing.T) {
	base := runBaseIn(t)
	mustMkdir(t, base)
	mustWrite(t, filepath.Join(base, "keep.lock"), nil, 0o600)
	r, err := NewRunFiles(base)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Remove(); err != nil {
		t.Fatal(err)
	}
	if got := dirEntries(t, base); !slices.Equal(got, []string{"keep.lock"}) {
		t.Fatalf("the base holds %v", got)
	}
}
