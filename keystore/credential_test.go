package keystore

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestCredentialLifecycle(t *testing.T) {
	d := testDirs(t)
	initTestKeystore(t, d)
	first := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	now := first
	ks := openTestKeystore(t, Options{Dirs: d, Now: func() time.Time { return now }})

	value := []byte("s3cr\x00t\xff\n")
	created, err := ks.SetCredential("sa", "CORP\\sa", value)
	if err != nil || !created {
		t.Fatalf("first set: created %v, %v", created, err)
	}
	c, got, err := ks.GetCredential("sa")
	if err != nil || !bytes.Equal(got, value) {
		t.Fatalf("get: %q, %v", got, err)
	}
	if c.Name != "sa" || c.Identity != "CORP\\sa" || !c.Created.Equal(now) || !c.Updated.Equal(now) || c.Orphan != nil {
		t.Fatalf("credential %+v", c)
	}
	// The value on disk is an age file that does not contain it in clear.
	blob := readTestFile(t, ks.path(credentialsDir, "sa.1.1.age"))
	if !bytes.HasPrefix(blob, []byte("age-encryption.org/v1\n")) || bytes.Contains(blob, value) {
		t.Fatal("the credential's blob is not an age file hiding the value")
	}

	later := first.Add(time.Hour)
	now = later
	created, err = ks.SetCredential("sa", "svc_sa", nil)
	if err != nil || created {
		t.Fatalf("update: created %v, %v", created, err)
	}
	c, got, err = ks.GetCredential("sa")
	if err != nil || len(got) != 0 {
		t.Fatalf("get empty value: %q, %v", got, err)
	}
	if c.Identity != "svc_sa" || !c.Created.Equal(first) || !c.Updated.Equal(later) {
		t.Fatalf("after update %+v", c)
	}

	setTestCredential(t, ks, "backup-op", "u2", []byte("x"))
	list, err := ks.ListCredentials()
	if err != nil || len(list) != 2 || list[0].Name != "backup-op" || list[1].Name != "sa" || list[1].Identity != "svc_sa" {
		t.Fatalf("list %+v, %v", list, err)
	}

	if err := ks.RemoveCredential("sa"); err != nil {
		t.Fatal(err)
	}
	_, _, err = ks.GetCredential("sa")
	wantMsg(t, err, MsgNotExist, ErrNotFound)
	wantKind(t, ks.RemoveCredential("sa"), ErrNotFound)
	list, err = ks.ListCredentials()
	if err != nil || len(list) != 1 || list[0].Name != "backup-op" {
		t.Fatalf("list after rm %+v, %v", list, err)
	}
	// Set after rm creates afresh.
	if created, err := ks.SetCredential("sa", "u", []byte("again")); err != nil || !created {
		t.Fatalf("set after rm: %v, %v", created, err)
	}
}

func TestCredentialInvalidInput(t *testing.T) {
	d, ks := newTestKeystore(t)
	before := treeSnapshot(t, d.Keystore, lockFile, errorlogFile)
	for _, name := range []string{"", "../x", "a/b", "a\\b", "..", ".x", "CON", "nul.txt", "com1", "a\x00b", "a\nb", "é", strings.Repeat("a", 129)} {
		_, err := ks.SetCredential(name, "u", []byte("v"))
		wantKind(t, err, ErrInvalid)
		_, _, err = ks.GetCredential(name)
		wantKind(t, err, ErrInvalid)
		wantKind(t, ks.RemoveCredential(name), ErrInvalid)
	}
	for _, id := range []string{"", "a\nb", "a\x1b[2J", strings.Repeat("i", 1025)} {
		_, err := ks.SetCredential("ok", id, []byte("v"))
		wantKind(t, err, ErrInvalid)
	}
	_, err := ks.SetCredential("big", "u", make([]byte, MaxValueSize+1))
	wantKind(t, err, ErrInvalid)
	if diff := diffSnapshots(before, treeSnapshot(t, d.Keystore, lockFile, errorlogFile)); diff != "" {
		t.Fatalf("invalid input changed the keystore: %s", diff)
	}
	_, _, err = ks.GetCredential("missing")
	wantMsg(t, err, MsgNotExist, ErrNotFound)
	if !strings.Contains(err.Error(), "missing") {
		t.Errorf("not-found message %q does not name the credential", err)
	}
}

// TestCredentialDamagedBlob: a value whose file was damaged is reported as
// corruption, not as a wrong key or a missing credential.
func TestCredentialDamagedBlob(t *testing.T) {
	_, ks := newTestKeystore(t)
	setTestCredential(t, ks, "c", "u", []byte("value"))
	p := ks.path(credentialsDir, "c.1.1.age")
	blob := readTestFile(t, p)
	blob[len(blob)-3] ^= 1
	writeTestFile(t, p, blob)
	_, _, err := ks.GetCredential("c")
	wantKind(t, err, ErrCorrupt)
	if errors.Is(err, ErrNotFound) {
		t.Fatal("damage reported as not found")
	}
	// A missing value file is corruption too.
	if err := ks.files.RemoveFile(p); err != nil {
		t.Fatal(err)
	}
	_, _, err = ks.GetCredential("c")
	wantKind(t, err, ErrCorrupt)
	// Metadata naming another credential is corruption.
	setTestCredential(t, ks, "d", "u", []byte("d"))
	writeTestFile(t, ks.path(credentialsDir, "d.toml"),
		bytes.Replace(readTestFile(t, ks.path(credentialsDir, "d.toml")), []byte(`name = "d"`), []byte(`name = "e"`), 1))
	_, _, err = ks.GetCredential("d")
	wantKind(t, err, ErrCorrupt)
}
