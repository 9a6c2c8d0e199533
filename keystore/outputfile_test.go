package keystore

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestWriteOutputFileWhole: a reader of the output file sees the old file
// or the new one, whole, however often it is replaced (on Windows it may
// find the file busy for the instant of the rename, and open it again),
// and the file is owner-only whatever mode it had. Writing in place (truncate, write)
// fails: the reader catches a half-written file.
func TestWriteOutputFileWhole(t *testing.T) {
	dir := newTestDir(t)
	path := filepath.Join(dir, "app.conf")
	a := bytes.Repeat([]byte("a"), 1<<20)
	b := bytes.Repeat([]byte("b"), 1<<20)
	if err := os.WriteFile(path, a, 0o644); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var bad []string
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if runtime.GOOS == "windows" {
				// A reader that holds the file open without pause keeps
				// Windows from renaming over it (the writer retries for a
				// second, MoveFileEx); under a loaded Wine that second can
				// pass. A reader that reads, then lets go a moment, still
				// catches any torn file.
				time.Sleep(2 * time.Millisecond)
			}
			data, err := os.ReadFile(path)
			if runtime.GOOS == "windows" && errors.Is(err, syscall.Errno(32)) {
				// ERROR_SHARING_VIOLATION: Windows refuses to open a file
				// in the instant it is renamed over; the reader opens it
				// again. It never gets part of a file.
				continue
			}
			if err != nil {
				bad = append(bad, err.Error())
				continue
			}
			if !bytes.Equal(data, a) && !bytes.Equal(data, b) {
				bad = append(bad, fmt.Sprintf("a file of %d bytes, neither the old nor the new", len(data)))
			}
		}
	}()
	for i := range 200 {
		v := a
		if i%2 == 0 {
			v = b
		}
		if err := WriteOutputFile(path, v); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if len(bad) > 0 {
		t.Errorf("a reader saw %d bad reads, the first: %s", len(bad), bad[0])
	}
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("mode %o, want 0600", fi.Mode().Perm())
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			t.Errorf("left %s behind", e.Name())
		}
	}
}

// TestWriteOutputFileLink: a link at the output path is replaced, and the
// file it pointed at is untouched.
func TestWriteOutputFileLink(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symbolic links need a privilege on Windows")
	}
	dir := newTestDir(t)
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "out")
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	if err := WriteOutputFile(path, []byte("new")); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(target); string(got) != "keep" {
		t.Errorf("the link's target now holds %q", got)
	}
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() {
		t.Errorf("the output is not a regular file: %v %v", fi, err)
	}
}
