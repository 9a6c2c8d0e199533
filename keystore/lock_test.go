package keystore

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keytree-dev/keytree/keystore/internal/fsio"
)

// P10: writers take the keystore's lock exclusively, readers share it. The
// tests hold the lock through acquireLock, as another keytree process would,
// and drive a second Keystore value on the same directory.

const shortLock = 150 * time.Millisecond

// lockTestKeystores makes a keystore holding credential c, value v1, and
// opens it twice: ks1 to hold the lock with, ks2 to run commands that give
// up after shortLock.
func lockTestKeystores(t *testing.T) (ks1, ks2 *Keystore) {
	t.Helper()
	d := testDirs(t)
	_, ks1 = initTestKeystore(t, d)
	setTestCredential(t, ks1, "c", "u", []byte("v1"))
	return ks1, openTestKeystore(t, Options{Dirs: d, LockTimeout: shortLock})
}

func TestLockWriterWaitsThenFails(t *testing.T) {
	ks1, ks2 := lockTestKeystores(t)
	l := holdLock(t, ks1, fsio.Exclusive, time.Second)
	ops := map[string]func() error{
		"credential set (writer)":  func() error { _, err := ks2.SetCredential("c", "u", []byte("v2")); return err },
		"credential rm (writer)":   func() error { return ks2.RemoveCredential("c") },
		"credential get (reader)":  func() error { _, _, err := ks2.GetCredential("c"); return err },
		"credential list (reader)": func() error { _, err := ks2.ListCredentials(); return err },
		"smk verify (reader)":      func() error { _, err := ks2.VerifySMK(); return err },
	}
	for name, op := range ops {
		start := time.Now()
		err := op()
		waited := time.Since(start)
		if !errors.Is(err, ErrLocked) {
			l.Release()
			t.Fatalf("%s with the exclusive lock held elsewhere: %v, want ErrLocked", name, err)
		}
		if waited < shortLock {
			t.Errorf("%s gave up after %v, before its %v timeout", name, waited, shortLock)
		}
		if !strings.Contains(err.Error(), "another keytree process") || keystoreError(t, err).Remedy.Kind != RemedyLockTimeout {
			t.Errorf("%s: message %q", name, err)
		}
	}
	// Another lock on the same file, not the one held, is refused too.
	if l2, err := ks1.lock(fsio.Shared, shortLock); !errors.Is(err, ErrLocked) {
		l2.Release()
		t.Errorf("shared lock while exclusive held: %v", err)
	}
	l.Release()

	// Nothing the refused writers tried happened.
	wantCredential(t, ks2, "c", "v1", "after the lock was released")
}

func TestLockReadersShare(t *testing.T) {
	ks1, ks2 := lockTestKeystores(t)
	defer holdLock(t, ks1, fsio.Shared, time.Second).Release()
	// Readers run alongside another reader...
	wantCredential(t, ks2, "c", "v1", "reader beside a reader")
	if _, err := ks2.ListCredentials(); err != nil {
		t.Fatalf("list beside a reader: %v", err)
	}
	if _, err := ks2.Status(); err != nil {
		t.Fatalf("status beside a reader: %v", err)
	}
	// ...and a writer waits for it.
	if _, err := ks2.SetCredential("c", "u", []byte("v2")); !errors.Is(err, ErrLocked) {
		t.Fatalf("writer beside a reader: %v, want ErrLocked", err)
	}
}

// TestLockWriterProceedsWhenReleased: a writer with a long timeout blocks
// while another process holds the lock, and completes once it is released.
func TestLockWriterProceedsWhenReleased(t *testing.T) {
	d, ks1 := newTestKeystore(t)
	setTestCredential(t, ks1, "c", "u", []byte("v1"))
	for _, held := range []fsio.LockMode{fsio.Shared, fsio.Exclusive} {
		t.Run(held.String(), func(t *testing.T) {
			ks2 := openTestKeystore(t, Options{Dirs: d, LockTimeout: 20 * time.Second})
			l := holdLock(t, ks1, held, time.Second)
			want := "written after a " + held.String() + " lock"
			done := make(chan error, 1)
			go func() {
				_, err := ks2.SetCredential("c", "u", []byte(want))
				done <- err
			}()
			select {
			case err := <-done:
				l.Release()
				t.Fatalf("writer did not wait for the %s lock: %v", held, err)
			case <-time.After(300 * time.Millisecond):
			}
			l.Release()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("writer after release: %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Fatal("writer still blocked after the lock was released")
			}
			if _, v, err := ks1.GetCredential("c"); err != nil || string(v) != want {
				t.Fatalf("value %q, %v; want %q", v, err, want)
			}
		})
	}
}

// TestLockConcurrentWriters: writers from several Keystore values on one
// directory never lose an update.
func TestLockConcurrentWriters(t *testing.T) {
	d := testDirs(t)
	initTestKeystore(t, d)
	const n = 8
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func(i int) {
			ks, err := Open(Options{Dirs: d, LockTimeout: 30 * time.Second})
			if err != nil {
				errs <- err
				return
			}
			_, err = ks.SetCredential(strings.Repeat("x", i+1), "u", []byte{byte(i)})
			errs <- err
		}(i)
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	creds, err := openTestKeystore(t, Options{Dirs: d}).ListCredentials()
	if err != nil || len(creds) != n {
		t.Fatalf("%d credentials after %d concurrent writers: %v", len(creds), n, err)
	}
}
