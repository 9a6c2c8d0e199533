package keystore

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/keytree-dev/keytree/keystore/internal/fsio"
)

// bigLog writes an error log of more than maxErrorLogSize bytes whose
// lines all carry tag.
func bigLog(t *testing.T, path, tag string) []byte {
	t.Helper()
	var b bytes.Buffer
	for i := 0; b.Len() <= maxErrorLogSize; i++ {
		fmt.Fprintf(&b, "2026-01-01T00:00:00Z %s line %07d\n", tag, i)
	}
	writeTestFile(t, path, b.Bytes())
	return b.Bytes()
}

// TestErrorLogRotation: an error log past maxErrorLogSize becomes
// errorlog.1 at the next writer, replacing the previous errorlog.1, and
// keytree errorlog shows the old part's end, then the new part, within its
// 1 MiB bound.
func TestErrorLogRotation(t *testing.T) {
	_, ks := newTestKeystore(t)
	logPath, oldPath := ks.path(errorlogFile), ks.path(errorlogOldFile)

	writeTestFile(t, oldPath, []byte("2026-01-01T00:00:00Z oldest part\n"))
	big := bigLog(t, logPath, "second")

	// The next writer rotates it.
	if err := ks.write("test", func(*session) error { return nil }); err != nil {
		t.Fatal(err)
	}
	wantExists(t, logPath, false)
	if got := readTestFile(t, oldPath); !bytes.Equal(got, big) {
		t.Fatalf("errorlog.1 is not the rotated log (%d bytes, want %d)", len(got), len(big))
	}
	// Mode bits say nothing on Windows, where every writable file is 0666.
	if fi, err := os.Stat(oldPath); err != nil || (runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600) {
		t.Fatalf("errorlog.1: %v %v", fi, err)
	}

	ks.logEvent("the newest event")
	log, err := ks.ErrorLog()
	if err != nil {
		t.Fatal(err)
	}
	if len(log) > maxErrorLogRead+1 {
		t.Errorf("errorlog returned %d bytes, more than its bound", len(log))
	}
	if strings.Contains(log, "oldest part") {
		t.Error("the errorlog.1 before the rotation was not replaced")
	}
	lines := strings.Split(strings.TrimSuffix(log, "\n"), "\n")
	if !strings.HasSuffix(lines[len(lines)-1], " the newest event") {
		t.Errorf("last line %q, want the newest event", lines[len(lines)-1])
	}
	if !strings.HasSuffix(lines[len(lines)-2], fmt.Sprintf("second line %07d", bytes.Count(big, []byte("\n"))-1)) {
		t.Errorf("line before the newest %q, want the old part's last line", lines[len(lines)-2])
	}

	// A small log is left alone by writers.
	if err := ks.write("test", func(*session) error { return nil }); err != nil {
		t.Fatal(err)
	}
	wantExists(t, logPath, true)
	if got := readTestFile(t, oldPath); !bytes.Equal(got, big) {
		t.Error("errorlog.1 changed without a rotation")
	}
}

// TestErrorLogRotationByReader: a keystore that only sees readers (a cron
// job meeting 15466 every minute) still has its log rotated, by the reader
// that pushed it past the limit, when the exclusive lock is free; while
// another process holds the keystore, the reader neither waits nor
// rotates.
func TestErrorLogRotationByReader(t *testing.T) {
	d, ks := newTestKeystore(t)
	logPath, oldPath := ks.path(errorlogFile), ks.path(errorlogOldFile)
	bigLog(t, logPath, "reader")

	// Another reader holds the keystore (another descriptor: flock locks
	// conflict between descriptors even in one process). A reader that
	// logs neither waits for it nor rotates beside it.
	other := openTestKeystore(t, Options{Dirs: d})
	shared := holdLock(t, other, fsio.Shared, 0)
	if err := ks.read("test", func(s *session) error { s.ks.logEvent("beside another reader"); return nil }); err != nil {
		t.Fatal(err)
	}
	wantExists(t, oldPath, false)
	if !bytes.HasSuffix(readTestFile(t, logPath), []byte(" beside another reader\n")) {
		t.Fatal("the reader's line is not at the end of errorlog")
	}
	shared.Release()

	// Alone, the next reader that logs rotates.
	if err := ks.read("test", func(s *session) error { s.ks.logEvent("alone"); return nil }); err != nil {
		t.Fatal(err)
	}
	wantExists(t, logPath, false)
	if !bytes.HasSuffix(readTestFile(t, oldPath), []byte(" alone\n")) {
		t.Error("errorlog.1 does not end with the reader's line")
	}
	log, err := ks.ErrorLog()
	if err != nil || !strings.HasSuffix(log, " alone\n") {
		t.Errorf("errorlog after a rotation by a reader: %v, ends %q", err, log[max(0, len(log)-40):])
	}
}
