package fsio

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"
)

func rooted(t *testing.T, o Options) (FS, string) {
	t.Helper()
	// Not t.TempDir: under Wine, which runs the Windows build's tests,
	// os.RemoveAll fails on what it made; a directory left behind in the
	// temporary directory is harmless.
	dir, err := os.MkdirTemp("", "fsio-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	f, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, dir
}

// The fault hook belongs to one FS: another FS, in the same process and at
// the same time, sees none of its steps. (This is what lets the crash tests
// of two keystores run in parallel.)
func TestFaultHookIsPerFS(t *testing.T) {
	var steps []string
	hooked, dir := rooted(t, Options{Fault: func(step, path string) error {
		steps = append(steps, step+" "+filepath.Base(path))
		return nil
	}})
	plain, _ := rooted(t, Options{})
	if err := plain.CreateFile(filepath.Join(plain.Dir(), "other"), []byte("x"), true); err != nil {
		t.Fatal(err)
	}
	if len(steps) != 0 {
		t.Fatalf("a write through another FS reached the hook: %q", steps)
	}
	if err := hooked.CreateFile(filepath.Join(dir, "a"), []byte("x"), true); err != nil {
		t.Fatal(err)
	}
	if want := []string{"create a", "write a", "sync a"}; !slices.Equal(steps, want) {
		t.Fatalf("steps %q, want %q", steps, want)
	}
	// WithFault gives a copy its own hook and leaves f's alone.
	stop := errors.New("stopped")
	stopped := hooked.WithFault(func(string, string) error { return stop })
	if err := stopped.RemoveFile(filepath.Join(dir, "a")); !errors.Is(err, stop) {
		t.Fatalf("remove with a failing hook: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "a")); err != nil {
		t.Fatalf("the stopped removal removed the file: %v", err)
	}
	if err := hooked.RemoveFile(filepath.Join(dir, "a")); err != nil {
		t.Fatal(err)
	}
}

// What the FS finds wrong on disk reaches the caller through Report, as the
// typed errors of errors.go.
func TestReportSeesTypedErrors(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symbolic links need a privilege on Windows; the keystore's link tests cover it")
	}
	var reported []error
	f, dir := rooted(t, Options{Report: func(err error) error {
		reported = append(reported, err)
		return err
	}})
	if err := os.WriteFile(filepath.Join(dir, "target"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("target", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	_, err := f.ReadFile(filepath.Join(dir, "link"), 10)
	var no *NotOursError
	if !errors.As(err, &no) || no.Want != "a regular file" || no.What() != "a symbolic link, not a regular file" {
		t.Fatalf("reading a link: %v", err)
	}
	_, err = f.ReadFile(filepath.Join(dir, "target"), 0)
	var bad *BadFileError
	if !errors.As(err, &bad) || bad.Reason != "file is larger than 0 bytes" {
		t.Fatalf("reading a file over the limit: %v", err)
	}
	if err := os.Chmod(filepath.Join(dir, "target"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = f.ReadFile(filepath.Join(dir, "target"), 10)
	var ex *ExposedError
	if !errors.As(err, &ex) || ex.Fix != "chmod 600 "+shellQuote(filepath.Join(dir, "target")) {
		t.Fatalf("reading a file others can read: %v", err)
	}
	if len(reported) != 3 {
		t.Fatalf("Report saw %d errors, want 3: %v", len(reported), reported)
	}
	// A path outside the root is refused before anything is opened.
	if _, err := f.ReadFile(filepath.Join(filepath.Dir(dir), "elsewhere"), 10); err == nil {
		t.Fatal("read outside the root")
	}
}

// A file is owner-only from its creation, whatever the umask.
func TestCreateFileOwnerOnly(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("modes are ACLs on Windows: keystore/acl_windows_test.go")
	}
	f, dir := rooted(t, Options{})
	p := filepath.Join(dir, "sub", "f")
	if err := f.MkdirPrivate(filepath.Dir(p)); err != nil {
		t.Fatal(err)
	}
	if err := f.CreateFile(p, []byte("x"), false); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]fs.FileMode{p: FilePerm, filepath.Dir(p): DirPerm | fs.ModeDir} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode(), want)
		}
	}
	if err := f.CreateFile(p, []byte("y"), false); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("creating an existing file: %v", err)
	}
}

// A lock held elsewhere makes Lock wait, then give up with a
// LockTimeoutError naming the file and the mode.
func TestLockTimeout(t *testing.T) {
	f, dir := rooted(t, Options{})
	p := filepath.Join(dir, "lock")
	held, err := f.Lock(p, Exclusive, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()
	// Each Lock opens the file anew: a second open file description, as
	// another process has.
	other := f
	_, err = other.Lock(p, Shared, 50*time.Millisecond)
	var lt *LockTimeoutError
	if !errors.As(err, &lt) || lt.Path != p || lt.Mode != Shared {
		t.Fatalf("lock held elsewhere: %v", err)
	}
	held.Release()
	l, err := other.Lock(p, Shared, time.Second)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	l.Release()
}

// A batch's files are all there, with their contents, once Sync returns,
// and a leftover of the same name is replaced.
func TestBatch(t *testing.T) {
	f, dir := rooted(t, Options{})
	if err := os.WriteFile(filepath.Join(dir, "b"), []byte("leftover"), 0o600); err != nil {
		t.Fatal(err)
	}
	b := f.NewBatch(dir)
	for _, n := range []string{"a", "b", "c"} {
		if err := b.Create(filepath.Join(dir, n), dir, []byte(n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a", "b", "c"} {
		if data, err := os.ReadFile(filepath.Join(dir, n)); err != nil || string(data) != n {
			t.Fatalf("%s: %q, %v", n, data, err)
		}
	}
}

// Files queued with CreateLater are all created once Wait returns; a
// writer's failure is Wait's error, and CreateLater's once it is known.
func TestBatchWriters(t *testing.T) {
	f, dir := rooted(t, Options{})
	b := f.NewBatch(dir)
	b.StartWriters()
	var names []string
	for i := range 200 {
		n := filepath.Join(dir, fmt.Sprintf("f%03d", i))
		names = append(names, n)
		if err := b.CreateLater(n, dir, []byte(n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if data, err := os.ReadFile(n); err != nil || string(data) != n {
			t.Fatalf("%s: %q, %v", n, data, err)
		}
	}

	stop := errors.New("stopped")
	failing := f.WithFault(func(step, path string) error {
		if step == "create" && filepath.Base(path) == "bad" {
			return stop
		}
		return nil
	})
	b = failing.NewBatch(dir)
	b.StartWriters()
	if err := b.CreateLater(filepath.Join(dir, "bad"), dir, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Wait(); !errors.Is(err, stop) {
		t.Fatalf("Wait after a failed create: %v", err)
	}
	if err := b.Wait(); !errors.Is(err, stop) {
		t.Fatalf("Wait again: %v", err)
	}
}

// A batch's file replaces a leftover of the same name, a link included
// (the link goes, what it points to stays), and the fault hook sees the
// same steps whether there was a leftover or not.
func TestBatchCreateReplacesLeftover(t *testing.T) {
	var steps []string
	f, dir := rooted(t, Options{Fault: func(step, path string) error {
		steps = append(steps, step+" "+filepath.Base(path))
		return nil
	}})
	elsewhere, err := os.MkdirTemp("", "fsio-test-") // not t.TempDir: see rooted
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(elsewhere) })
	outside := filepath.Join(elsewhere, "outside")
	if err := os.WriteFile(outside, []byte("not keytree's"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "leftover"), []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	names := []string{"fresh", "leftover"}
	if runtime.GOOS != "windows" {
		if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
			t.Fatal(err)
		}
		names = append(names, "link")
	}
	b := f.NewBatch(dir)
	for _, n := range names {
		steps = nil
		if err := b.Create(filepath.Join(dir, n), dir, []byte("new "+n)); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		want := []string{"remove " + n, "create " + n, "write " + n}
		if PerFileSync() {
			want = append(want, "sync "+n)
		}
		if n != "fresh" {
			// The name was taken: the creation is tried again.
			want = []string{"remove " + n, "create " + n, "create " + n, "write " + n}
			if PerFileSync() {
				want = append(want, "sync "+n)
			}
		}
		if !slices.Equal(steps, want) {
			t.Errorf("%s: steps %q, want %q", n, steps, want)
		}
		fi, err := os.Lstat(filepath.Join(dir, n))
		if err != nil || !fi.Mode().IsRegular() {
			t.Fatalf("%s: %v, %v: want a regular file", n, fi, err)
		}
		if got, _ := os.ReadFile(filepath.Join(dir, n)); string(got) != "new "+n {
			t.Errorf("%s holds %q", n, got)
		}
	}
	if got, _ := os.ReadFile(outside); string(got) != "not keytree's" {
		t.Fatalf("the link's target was changed: %q", got)
	}
}

// IsAt tells a lock on the file at a path from a lock on a file that was
// removed from it, even if another file has that name now.
func TestLockIsAt(t *testing.T) {
	f, dir := rooted(t, Options{})
	p := filepath.Join(dir, "run.lock")
	l, err := f.Lock(p, Exclusive, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if !l.IsAt(f, p) {
		t.Fatal("a lock on the file at its path is not at it")
	}
	if runtime.GOOS == "windows" {
		return // an open file cannot be removed there
	}
	if err := f.RemoveFile(p); err != nil {
		t.Fatal(err)
	}
	if l.IsAt(f, p) {
		t.Error("a lock on a removed file is at its old path")
	}
	if err := f.CreateFile(p, nil, false); err != nil {
		t.Fatal(err)
	}
	if l.IsAt(f, p) {
		t.Error("a lock on a removed file is at a new file of the same name")
	}
}

// A view reads the files of its directory through a handle of it, and
// everything else as before; a view of a directory that is a link is
// refused.
func TestView(t *testing.T) {
	f, dir := rooted(t, Options{})
	sub := filepath.Join(dir, "a", "b")
	if err := f.MkdirPrivate(sub); err != nil {
		t.Fatal(err)
	}
	if err := f.CreateFile(filepath.Join(sub, "x"), []byte("in view"), false); err != nil {
		t.Fatal(err)
	}
	if err := f.CreateFile(filepath.Join(dir, "a", "y"), []byte("outside view"), false); err != nil {
		t.Fatal(err)
	}
	v, err := f.View(sub)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = v.CloseView() }()
	for p, want := range map[string]string{filepath.Join(sub, "x"): "in view", filepath.Join(dir, "a", "y"): "outside view"} {
		got, err := v.ReadFile(p, 100)
		if err != nil || string(got) != want {
			t.Errorf("%s: %q, %v", p, got, err)
		}
	}
	if _, err := v.ReadFile(filepath.Join(sub, "..", "y"), 100); err != nil {
		t.Errorf("a path with .. is not the view's, and reads as before: %v", err)
	}
	if runtime.GOOS == "windows" {
		return
	}
	// The directory renamed away and a link put in its place: the view
	// still reads the directory it opened, never the link's target, and
	// a new view of the link is refused.
	if err := os.Rename(sub, filepath.Join(dir, "a", "moved")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "elsewhere"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "elsewhere"), sub); err != nil {
		t.Fatal(err)
	}
	if got, err := v.ReadFile(filepath.Join(sub, "x"), 100); err != nil || string(got) != "in view" {
		t.Errorf("after the rename: %q, %v", got, err)
	}
	if _, err := f.View(sub); err == nil {
		t.Error("a view of a link to a directory was opened")
	}
}
