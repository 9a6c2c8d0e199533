package keystore

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/protect"
)

// What an interrupted operation leaves behind is removed by the next writer,
// and only that: whether a file is garbage is decided from committed
// metadata, never from pending.toml (P6, P12).

func writePending(t *testing.T, ks *Keystore, candidates, sweep []string) {
	t.Helper()
	p := &formats.Pending{Version: formats.Version, Operation: "credential set", Started: time.Now().UTC().Truncate(time.Second),
		Candidates: candidates, Sweep: sweep}
	data, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, ks.path(pendingFile), data)
}

// TestPendingCandidatesRemoved: leftovers listed in pending.toml, and
// anything in tmp/, are removed by the next writer, whichever operation it
// is; referenced files listed there survive, and paths that lead out of the
// keystore are ignored.
func TestPendingCandidatesRemoved(t *testing.T) {
	writers := map[string]func(ks *Keystore) error{
		"credential set": func(ks *Keystore) error { _, err := ks.SetCredential("other", "u", []byte("x2")); return err },
		"credential rm":  func(ks *Keystore) error { return ks.RemoveCredential("other") },
		"machine-protection on, unchanged": func(ks *Keystore) error {
			changed, err := ks.SetMachineProtection(true)
			if changed {
				t.Error("machine protection changed")
			}
			return err
		},
	}
	for name, write := range writers {
		t.Run(name, func(t *testing.T) {
			d, ks := newTestKeystore(t)
			for _, c := range []string{"foo", "other"} {
				setTestCredential(t, ks, c, "u", []byte(c+" value"))
			}
			live := ks.path(credentialsDir, "foo.1.1.age")
			wantExists(t, live, true)
			stray := ks.path(credentialsDir, "foo.7.1.age")
			writeTestFile(t, stray, []byte("age-encryption.org/v1\nleftover"))
			strayNew := ks.path(credentialsDir, "bar.1.1.age") // a credential never committed
			writeTestFile(t, strayNew, []byte("leftover"))
			tmpFile := ks.path(tmpDir, formats.TempPrefix+"abc")
			writeTestFile(t, tmpFile, []byte("half-written"))
			if err := os.MkdirAll(ks.path(tmpDir, "sub"), 0o700); err != nil {
				t.Fatal(err)
			}
			writeTestFile(t, ks.path(tmpDir, "sub", "x"), []byte("x"))
			outside := filepath.Join(d.Account, protect.AccountSecretName)
			outsideBefore := readTestFile(t, outside)
			rel := func(p string) string {
				r, err := filepath.Rel(d.Keystore, p)
				if err != nil {
					t.Fatal(err)
				}
				return filepath.ToSlash(r)
			}
			writePending(t, ks, []string{
				rel(stray), rel(strayNew),
				rel(live),                      // listed, but committed metadata names it
				"credentials/foo.toml",         // metadata, never a candidate's business
				"smk/account.1.age",            // the live SMK encryption
				rel(outside),                   // ../<account dir>/account.key: outside the keystore
				filepath.ToSlash(outside),      // absolute
				"credentials/../../etc/passwd", // not clean
				"credentials/nonexistent.1.1.age",
			}, nil)

			// A reader does not clean up: it holds only a shared lock.
			wantCredential(t, ks, "foo", "foo value", "get")
			wantExists(t, stray, true)

			// Any writer does, before its own work.
			if err := write(ks); err != nil {
				t.Fatal(err)
			}
			wantExists(t, stray, false)
			wantExists(t, strayNew, false)
			wantExists(t, tmpFile, false)
			wantExists(t, ks.path(tmpDir, "sub"), false)
			wantExists(t, ks.path(pendingFile), false)
			wantExists(t, ks.path(tmpDir), true)
			wantExists(t, live, true)
			wantExists(t, ks.path(credentialsDir, "foo.toml"), true)
			wantExists(t, ks.path(smkDir, "account.1.age"), true)
			if !bytes.Equal(readTestFile(t, outside), outsideBefore) {
				t.Fatal("a file outside the keystore named in pending.toml was touched")
			}
			wantCredential(t, ks, "foo", "foo value", "get after clean-up")
			if _, err := ks.VerifySMK(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestPendingGarbageFullSweep: a pending.toml that is not TOML makes the
// next writer sweep everywhere; it removes what committed metadata does not
// reference, keeps what it references, and keeps what it cannot decide
// about, and the record, until it can.
func TestPendingGarbageFullSweep(t *testing.T) {
	_, ks := newTestKeystore(t)
	for _, name := range []string{"foo", "bad"} {
		setTestCredential(t, ks, name, "u", []byte(name+" value"))
	}
	setTestCredential(t, ks, "foo", "u", []byte("foo value 2"))
	cred := func(n string) string { return ks.path(credentialsDir, n) }
	remove := []string{
		cred("foo.1.1.age"),             // an earlier revision
		cred("foo.3.1.age"),             // a later, uncommitted revision
		cred("foo.2.2.age"),             // under a generation that does not exist
		cred("gone.1.1.age"),            // no metadata
		cred(formats.TempPrefix + "xx"), // a temporary file
		ks.path(smkDir, "account.2.age"),
		ks.path(smkDir, "machine.9.age"),
	}
	keep := []string{
		cred("foo.2.1.age"), cred("foo.toml"),
		cred("bad.1.1.age"), ks.path(smkDir, "account.1.age"), ks.path(smkDir, "machine.1.age"),
		cred("notes.txt"),   // not a blob name: undecidable
		cred("bad.2.1.age"), // bad.toml is damaged below: undecidable
		cred("x..1.1.age"),  // not a valid credential name
		ks.path(smkDir, "keep.me"),
	}
	for _, p := range remove {
		writeTestFile(t, p, []byte("leftover"))
	}
	for _, p := range keep {
		if !fileExists(p) {
			writeTestFile(t, p, []byte("unknown"))
		}
	}
	badMeta := readTestFile(t, cred("bad.toml"))
	writeTestFile(t, cred("bad.toml"), []byte("this is not toml ]]"))
	writeTestFile(t, ks.path(pendingFile), []byte("\x00\x01 not [[ toml"))

	setTestCredential(t, ks, "new", "u", []byte("n"))
	for _, p := range remove {
		wantExists(t, p, false)
	}
	for _, p := range keep {
		wantExists(t, p, true)
	}
	// What could not be decided keeps the (now readable) record.
	wantExists(t, ks.path(pendingFile), true)
	wantCredential(t, ks, "foo", "foo value 2", "foo after the sweep")
	// Once its metadata is repaired, the kept credential reads as before,
	// and the next writer's sweep decides its leftover and drops the record.
	writeTestFile(t, cred("bad.toml"), badMeta)
	wantCredential(t, ks, "bad", "bad value", "bad after the sweep")
	setTestCredential(t, ks, "new", "u", []byte("n2"))
	wantExists(t, cred("bad.2.1.age"), false)
	wantExists(t, ks.path(pendingFile), false)
	wantCredential(t, ks, "bad", "bad value", "bad after the second sweep")
}

// TestPendingSweepWithoutSMK: if smk.toml cannot be read, nothing under
// smk/ or credentials/ can be decided, and nothing there is removed.
func TestPendingSweepWithoutSMK(t *testing.T) {
	d, ks := newTestKeystore(t)
	setTestCredential(t, ks, "foo", "u", []byte("v"))
	stray := ks.path(credentialsDir, "foo.9.1.age")
	writeTestFile(t, stray, []byte("leftover"))
	smkMeta := readTestFile(t, ks.path(smkFile))
	writeTestFile(t, ks.path(smkFile), []byte("garbage ["))
	writeTestFile(t, ks.path(pendingFile), []byte("garbage ["))
	before := treeSnapshot(t, d.Keystore, lockFile, errorlogFile, pendingFile, tmpDir)
	_, err := ks.SetCredential("foo", "u", []byte("w"))
	wantKind(t, err, ErrCorrupt)
	if diff := diffSnapshots(before, treeSnapshot(t, d.Keystore, lockFile, errorlogFile, pendingFile, tmpDir)); diff != "" {
		t.Fatalf("with smk.toml damaged, the sweep changed: %s", diff)
	}
	// Nothing was lost: with smk.toml repaired, the keystore reads as before.
	writeTestFile(t, ks.path(smkFile), smkMeta)
	wantCredential(t, ks, "foo", "v", "foo")
}

// TestUpdateRemovesOldRevision: a committed update leaves one blob, and a
// removal none, without any pending.toml left behind.
func TestUpdateRemovesOldRevision(t *testing.T) {
	_, ks := newTestKeystore(t)
	for i, v := range []string{"one", "two", "three"} {
		setTestCredential(t, ks, "c", "u", []byte(v))
		names := dirEntries(t, ks.path(credentialsDir))
		want := []string{formats.BlobName("c", i+1, 1), "c.toml"}
		if len(names) != 2 || names[0] != want[0] || names[1] != want[1] {
			t.Fatalf("after update %d: %v, want %v", i+1, names, want)
		}
		wantExists(t, ks.path(pendingFile), false)
		if got := dirEntries(t, ks.path(tmpDir)); len(got) != 0 {
			t.Fatalf("tmp/ holds %v", got)
		}
	}
	if err := ks.RemoveCredential("c"); err != nil {
		t.Fatal(err)
	}
	if names := dirEntries(t, ks.path(credentialsDir)); len(names) != 0 {
		t.Fatalf("after rm: %v", names)
	}
	wantExists(t, ks.path(pendingFile), false)
}

// TestKeptPendingNotOverwritten: a pending.toml the clean-up keeps, because
// a file it lists cannot be decided yet (its item's metadata is damaged),
// is added to by the next writer, not replaced: once the metadata is
// repaired, a later writer still removes the leftover.
func TestKeptPendingNotOverwritten(t *testing.T) {
	_, ks := newTestKeystore(t)
	for _, c := range []string{"foo", "bar"} {
		setTestCredential(t, ks, c, "u", []byte(c+" value"))
	}
	stray := ks.path(credentialsDir, "foo.9.1.age")
	writeTestFile(t, stray, []byte("age-encryption.org/v1\nleftover"))
	writePending(t, ks, []string{credentialsDir + "/foo.9.1.age"}, nil)
	fooMeta := readTestFile(t, ks.path(credentialsDir, "foo.toml"))
	writeTestFile(t, ks.path(credentialsDir, "foo.toml"), []byte("garbage ["))

	// foo cannot be decided; bar's update commits and lists its own
	// leftovers in pending.toml.
	setTestCredential(t, ks, "bar", "u", []byte("bar value 2"))
	wantExists(t, stray, true)
	wantExists(t, ks.path(pendingFile), true)

	writeTestFile(t, ks.path(credentialsDir, "foo.toml"), fooMeta)
	setTestCredential(t, ks, "bar", "u", []byte("bar value 3"))
	wantExists(t, stray, false)
	wantExists(t, ks.path(pendingFile), false)
	for c, want := range map[string]string{"foo": "foo value", "bar": "bar value 3"} {
		if _, v, err := ks.GetCredential(c); err != nil || string(v) != want {
			t.Fatalf("%s: %q, %v", c, v, err)
		}
	}
}
