//go:build !windows

package keystore

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestFIFORefused: a named pipe given as a backup or an export is refused at
// once. os.ReadFile (and os.Open) on a FIFO with no writer blocks forever;
// the test fails after 20 s rather than hang.
func TestFIFORefused(t *testing.T) {
	_, ks := newTestKeystore(t)
	fifo := filepath.Join(newTestDir(t), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip(err)
	}
	for _, tc := range []struct {
		name string
		run  func() error
	}{
		{"smk restore", func() error { _, err := ks.RestoreSMK(fifo, []byte("pw"), SMKOptions{}); return err }},
		{"db import", func() error { _, err := ks.ImportDatabase(fifo, "x", nil); return err }},
	} {
		done := make(chan error, 1)
		go func() { done <- tc.run() }()
		select {
		case err := <-done:
			wantRefused(t, err, "not a regular file")
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: still reading a FIFO after 20 s", tc.name)
		}
	}
}

// TestErrorLogFIFO: a FIFO planted as the keystore's error log neither hangs
// `keytree errorlog` nor a command that logs an event.
func TestErrorLogFIFO(t *testing.T) {
	_, ks := newTestKeystore(t)
	if err := syscall.Mkfifo(ks.path(errorlogFile), 0o600); err != nil {
		t.Skip(err)
	}
	done := make(chan error, 1)
	go func() {
		ks.logEvent("test event")
		_, err := ks.ErrorLog()
		done <- err
	}()
	select {
	case err := <-done:
		wantRefused(t, err, "not a regular file")
	case <-time.After(20 * time.Second):
		t.Fatal("still on the FIFO after 20 s")
	}
}
