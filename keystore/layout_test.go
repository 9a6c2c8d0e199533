package keystore

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/protect"
)

// TestLayoutRoundTrip: every handle keytree names has one path, and that
// path parses back to the same handle.
func TestLayoutRoundTrip(t *testing.T) {
	handles := []struct {
		h    handle
		path string
	}{
		{handle{kind: kindKeystore}, "keystore.toml"},
		{handle{kind: kindSMK}, "smk.toml"},
		{backupsMeta(""), "backups.toml"},
		{handle{kind: kindPending}, "pending.toml"},
		{handle{kind: kindLock}, "lock"},
		{handle{kind: kindErrorlog, name: errorlogFile}, "errorlog"},
		{handle{kind: kindErrorlog, name: errorlogOldFile}, "errorlog.1"},
		{handle{kind: kindTopDir, name: credentialsDir}, "credentials"},
		{handle{kind: kindStaged, name: "create-0123"}, "tmp/create-0123"},
		{handle{kind: kindTemp, dir: "credentials", name: formats.TempPrefix + "x"}, "credentials/.tmp-x"},
		{handle{kind: kindTemp, dir: "databases/hr/secrets", db: "hr", name: formats.TempPrefix + "x"}, "databases/hr/secrets/.tmp-x"},
		{handle{kind: kindMachineCheck}, "smk/machine.check"},
		{protectorBlob("account", 3), "smk/account.3.age"},
		{protectorBlob("machine", 12), "smk/machine.12.age"},
		{credentialMeta("mail.relay"), "credentials/mail.relay.toml"},
		{credentialBlob("mail.relay", 4, 2), "credentials/mail.relay.4.2.age"},
		{databaseDir("hr"), "databases/hr"},
		{databaseMeta("hr"), "databases/hr/database.toml"},
		{backupsMeta("hr"), "databases/hr/backups.toml"},
		{passwordBlob("hr", "0123456789abcdef", 2), "databases/hr/password.0123456789abcdef.2.age"},
		{smkEncryptionBlob("hr", 2, 5), "databases/hr/smk.2.5.age"},
		{secretsDirOf("hr"), "databases/hr/secrets"},
		{secretMeta("hr", "api.key"), "databases/hr/secrets/api.key.toml"},
		{secretBlob("hr", "api.key", 7, 2), "databases/hr/secrets/api.key.7.2.age"},
	}
	seen := map[fileKind]bool{}
	for _, c := range handles {
		if got := c.h.rel(); got != c.path {
			t.Errorf("%+v: path %q, want %q", c.h, got, c.path)
		}
		if got := parseHandle(c.path); got != c.h {
			t.Errorf("parseHandle(%q) = %+v, want %+v", c.path, got, c.h)
		}
		seen[c.h.kind] = true
	}
	for k := kindUnknown + 1; k <= kindSecretBlob; k++ {
		if !seen[k] {
			t.Errorf("kind %d has no case", k)
		}
	}
}

// TestLayoutUnknown: names keytree does not write parse as kindUnknown, and
// keep their database when they are under one, so that the clean-up asks
// that database's metadata before it decides anything.
func TestLayoutUnknown(t *testing.T) {
	for _, c := range []struct {
		path string
		db   string
	}{
		{"notes.txt", ""},
		{".tmp-x", ""},
		{"smk/account.0.age", ""},
		{"smk/account.01.age", ""},
		{"smk/other.1.age", ""},
		{"credentials/.hidden.toml", ""},
		{"credentials/-x.1.1.age", ""},
		{"credentials/x.0.1.age", ""},
		{"credentials/x.1.age", ""},
		{"credentials/sub/x.toml", ""},
		{"databases/-bad", ""},
		{"databases/-bad/database.toml", ""},
		{"databases/CON/database.toml", ""},
		{"elsewhere/hr/database.toml", ""},
		{"databases/hr/notes.txt", "hr"},
		{"databases/hr/password.xyz.1.age", "hr"},
		{"databases/hr/other.1.1.age", "hr"},
		{"databases/hr/secrets/.x.toml", "hr"},
		{"databases/hr/secrets/x.1.age", "hr"},
		{"databases/hr/secrets/deep/x.toml", "hr"},
		{"databases/hr/other/x.toml", "hr"},
	} {
		h := parseHandle(c.path)
		if h.kind != kindUnknown || h.db != c.db {
			t.Errorf("parseHandle(%q) = %+v, want unknown in database %q", c.path, h, c.db)
		}
	}
}

// FuzzLayout: whatever parses as a handle of keytree's has exactly that
// path, so no name from disk can stand for another file.
func FuzzLayout(f *testing.F) {
	for _, s := range []string{"credentials/a.1.1.age", "databases/hr/secrets/x.2.3.age", "smk/machine.1.age", "databases/hr/password.0123456789abcdef.1.age", "tmp/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rel string) {
		h := parseHandle(rel)
		if h.kind == kindUnknown {
			return
		}
		if got := h.rel(); got != rel {
			t.Fatalf("parseHandle(%q) = %+v, whose path is %q", rel, h, got)
		}
	})
}

// TestCollectorDecidesByKind drives the clean-up's decision on one file of
// each kind, against committed metadata: what metadata names is kept, the
// other revisions and generations are garbage, what keytree does not write
// is kept without a decision, and a file of a database whose metadata is
// lost leaves the clean-up undecided. The crash tests check leftovers with
// this same decision, so it is pinned here on its own.
func TestCollectorDecidesByKind(t *testing.T) {
	_, ks := newTestKeystore(t)
	pw := []byte("correct horse battery staple 9")
	setTestCredential(t, ks, "c", "svc", []byte("v"))
	if _, err := ks.CreateDMK("hr", pw, DMKOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.SetSecret("hr", "s", []byte("v"), nil); err != nil {
		t.Fatal(err)
	}
	meta, err := ks.loadDatabaseMeta("hr")
	if err != nil {
		t.Fatal(err)
	}
	id := meta.Passwords[0].ID
	other := "0123456789abcdef"
	if other == id {
		other = "fedcba9876543210"
	}
	const (
		keep    = "keep"    // referenced
		garbage = "garbage" // decided: not referenced
		unknown = "unknown" // kept, undecided by nature (not keytree's)
		damaged = "damaged" // kept, and the clean-up is undecided
	)
	cases := []struct{ path, want string }{
		{"tmp/create-x", garbage},
		{"smk/machine.check", keep},
		{"smk/account.1.age", keep},
		{"smk/account.2.age", garbage},
		{"smk/" + formats.TempPrefix + "x", unknown},
		{"smk/notes", unknown},
		{"credentials/c.1.1.age", keep},
		{"credentials/c.2.1.age", garbage},
		{"credentials/c.1.2.age", garbage},
		{"credentials/gone.1.1.age", garbage},
		{"credentials/" + formats.TempPrefix + "x", garbage},
		{"credentials/notes.txt", unknown},
		{"databases/hr/password." + id + ".1.age", keep},
		{"databases/hr/password." + other + ".1.age", garbage},
		{"databases/hr/password." + id + ".2.age", garbage},
		{"databases/hr/smk.1.1.age", keep},
		{"databases/hr/smk.2.1.age", garbage},
		{"databases/hr/smk.1.2.age", garbage},
		{"databases/hr/" + formats.TempPrefix + "x", garbage},
		{"databases/hr/notes", unknown},
		{"databases/hr/secrets/s.1.1.age", keep},
		{"databases/hr/secrets/s.2.1.age", garbage},
		{"databases/hr/secrets/s.1.2.age", garbage},
		{"databases/hr/secrets/gone.1.1.age", garbage},
		{"databases/lost/secrets/s.1.1.age", damaged},
	}
	for _, c := range cases {
		p := ks.path(filepath.FromSlash(c.path))
		if !fileExists(p) {
			if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
				t.Fatal(err)
			}
			writeTestFile(t, p, []byte("x"))
		}
		col := &collector{ks: ks}
		ref, known := col.referenced(c.path)
		got := unknown
		switch {
		case ref && known:
			got = keep
		case known:
			got = garbage
		case col.undecided:
			got = damaged
		}
		if got != c.want {
			t.Errorf("%s: %s (referenced %v, known %v), want %s", c.path, got, ref, known, c.want)
		}
	}
}

// newKeyAlgorithm: a regenerate uses the algorithm asked for, else the old
// key's, else (--force, the old key not opened) the one its metadata
// records; a recorded algorithm keytree does not know is an error.
func TestNewKeyAlgorithm(t *testing.T) {
	old, err := protect.GenerateKey(protect.KindSMK, protect.MLKEM768X25519)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		requested protect.Algorithm
		old       *protect.Key
		recorded  string
		want      protect.Algorithm
	}{
		{protect.X25519, old, string(protect.MLKEM768X25519), protect.X25519},
		{"", old, string(protect.X25519), protect.MLKEM768X25519},
		{"", nil, string(protect.MLKEM768X25519), protect.MLKEM768X25519},
		{"", nil, string(protect.X25519), protect.X25519},
	} {
		got, err := newKeyAlgorithm(c.requested, c.old, c.recorded)
		if err != nil || got != c.want {
			t.Errorf("newKeyAlgorithm(%q, %v, %q) = %q, %v; want %q", c.requested, c.old != nil, c.recorded, got, err, c.want)
		}
	}
	if _, err := newKeyAlgorithm("", nil, "rot13"); err == nil {
		t.Error("an unknown recorded algorithm was accepted")
	}
}
