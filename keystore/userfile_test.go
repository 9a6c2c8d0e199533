package keystore

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// sparseFile makes a file of size bytes that takes no disk space.
func sparseFile(t *testing.T, dir string, size int64) string {
	t.Helper()
	p := filepath.Join(dir, "sparse")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	return p
}

// allocated runs fn and returns how many bytes it allocated.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func wantRefused(t *testing.T, err error, why string) {
	t.Helper()
	if err == nil || !errors.Is(err, ErrCorrupt) || !strings.Contains(errorText(err), why) {
		t.Fatalf("got %v, want a corrupt-file error saying %q", err, why)
	}
}

// errorText is an *Error's text and details, as the CLI prints them.
func errorText(err error) string {
	var ke *Error
	if errors.As(err, &ke) {
		return ke.Text + "\n" + strings.Join(ke.Detail, "\n")
	}
	return err.Error()
}

// TestBackupSizeCheckedBeforeRead: a backup one byte over the limit is
// refused, and a 256 MiB sparse one is refused without being read into
// memory (os.ReadFile then a length check allocated its whole size; a
// 10 GiB one took 10.5 GB).
func TestBackupSizeCheckedBeforeRead(t *testing.T) {
	_, ks := newTestKeystore(t)
	tmp := newTestDir(t)

	_, err := ks.RestoreSMK(sparseFile(t, tmp, maxBackupFileSize+1), []byte("pw"), SMKOptions{})
	wantRefused(t, err, "too large")

	big := sparseFile(t, tmp, 256<<20)
	n := allocated(func() {
		_, err = ks.RestoreSMK(big, []byte("pw"), SMKOptions{})
	})
	wantRefused(t, err, "too large")
	if n > 16<<20 {
		t.Errorf("refusing a 256 MiB backup allocated %d MiB", n>>20)
	}
}

// TestDeviceRefused: /dev/zero is neither a backup nor an export, and is
// refused without being read (os.ReadFile on it ran out of memory).
func TestDeviceRefused(t *testing.T) {
	if _, err := os.Stat(os.DevNull); err != nil {
		t.Skip(err)
	}
	zero := "/dev/zero"
	if _, err := os.Stat(zero); err != nil {
		zero = os.DevNull
	}
	_, ks := newTestKeystore(t)
	_, err := ks.RestoreSMK(zero, []byte("pw"), SMKOptions{})
	wantRefused(t, err, "not a regular file")
	_, err = ks.ImportDatabase(zero, "x", nil)
	wantRefused(t, err, "not a regular file")
}
