package keystore

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/protect"
)

// P12: metadata is not trusted. Each test edits or replaces files the way
// someone with write access to the keystore, but no key, could, and checks
// that keytree reports corruption and writes nothing.

type trustFixture struct {
	dirs Dirs
	ks   *Keystore
	pw   []byte
}

func newTrustFixture(t *testing.T) *trustFixture {
	t.Helper()
	d, ks := newTestKeystore(t)
	f := &trustFixture{dirs: d, ks: ks, pw: []byte("Database-Passw0rd-1")}
	for _, db := range []string{"payroll", "other"} {
		if _, err := ks.CreateDMK(db, f.pw, DMKOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := ks.SetSecret(db, "s", []byte("value of "+db), nil); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// editTOML rewrites one line of a metadata file.
func editTOML(t *testing.T, path, from, to string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), from) {
		t.Fatalf("%s does not contain %q:\n%s", path, from, data)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(data), from, to, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
}

// expectCorruptNoWrite runs op, expects a corruption error, and checks that
// payroll's secret file set did not change.
func (f *trustFixture) expectCorruptNoWrite(t *testing.T, what string, op func() error) {
	t.Helper()
	before := listFiles(t, f.dirs.Keystore)
	err := op()
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("%s: err = %v, want corruption", what, err)
	}
	after := listFiles(t, f.dirs.Keystore)
	if before != after {
		t.Fatalf("%s wrote to the keystore:\nbefore %s\nafter  %s", what, before, after)
	}
}

func listFiles(t *testing.T, root string) string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() != "errorlog" {
			r, _ := filepath.Rel(root, p)
			names = append(names, r)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(names, " ")
}

func dbMetaPath(f *trustFixture, db string) string {
	return filepath.Join(f.dirs.Keystore, "databases", db, "database.toml")
}

func TestMetadataThumbprintEdit(t *testing.T) {
	f := newTrustFixture(t)
	other, _ := f.ks.loadDatabaseMeta("other")
	payroll, _ := f.ks.loadDatabaseMeta("payroll")
	// Point payroll at the other database's key.
	editTOML(t, dbMetaPath(f, "payroll"), payroll.Thumbprint, other.Thumbprint)
	f.expectCorruptNoWrite(t, "secret set", func() error {
		_, err := f.ks.SetSecret("payroll", "new", []byte("x"), nil)
		return err
	})
	f.expectCorruptNoWrite(t, "secret get by password", func() error {
		_, err := f.ks.GetSecret("payroll", "s", f.pw)
		return err
	})
}

func TestMetadataAlgorithmEdit(t *testing.T) {
	f := newTrustFixture(t)
	editTOML(t, dbMetaPath(f, "payroll"), `algorithm = "x25519"`, `algorithm = "mlkem768x25519"`)
	f.expectCorruptNoWrite(t, "dmk regenerate after an algorithm edit", func() error {
		_, err := f.ks.RegenerateDMK("payroll", f.pw, DMKOptions{})
		return err
	})
	f.expectCorruptNoWrite(t, "secret set", func() error {
		_, err := f.ks.SetSecret("payroll", "new", []byte("x"), nil)
		return err
	})

	// The SMK's algorithm, likewise.
	g := newTrustFixture(t)
	editTOML(t, filepath.Join(g.dirs.Keystore, "smk.toml"), `algorithm = "x25519"`, `algorithm = "mlkem768x25519"`)
	g.expectCorruptNoWrite(t, "smk regenerate after an algorithm edit", func() error {
		_, err := g.ks.RegenerateSMK(SMKOptions{})
		return err
	})
}

// TestGraftedDMK replaces payroll's DMK files by another database's (of this
// keystore) and by a database of another keystore: neither is accepted.
func TestGraftedDMK(t *testing.T) {
	f := newTrustFixture(t)
	smk, _ := f.ks.loadSMKMeta()
	payroll, _ := f.ks.loadDatabaseMeta("payroll")
	// The other database's SMK encryption, copied over payroll's.
	src := filepath.Join(f.dirs.Keystore, "databases", "other", formats.BlobName("smk", 1, smk.Generation))
	dst := filepath.Join(f.dirs.Keystore, "databases", "payroll", formats.BlobName("smk", payroll.Generation, smk.Generation))
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f.expectCorruptNoWrite(t, "secret set with another DMK's SMK encryption", func() error {
		_, err := f.ks.SetSecret("payroll", "new", []byte("x"), nil)
		return err
	})

	// The same, with database.toml edited to name the other key: the
	// encryption is the other database's own, so only the name it carries
	// inside tells.
	other, _ := f.ks.loadDatabaseMeta("other")
	editTOML(t, dbMetaPath(f, "payroll"), payroll.Thumbprint, other.Thumbprint)
	f.expectCorruptNoWrite(t, "secret set with another database's key and SMK encryption", func() error {
		_, err := f.ks.SetSecret("payroll", "new", []byte("x"), nil)
		return err
	})
	editTOML(t, dbMetaPath(f, "payroll"), other.Thumbprint, payroll.Thumbprint)

	// A whole database from another keystore, its SMK encryption included,
	// copied into this one: the other SMK's encryption does not open here.
	g := newTrustFixture(t)
	foreign := filepath.Join(g.dirs.Keystore, "databases", "payroll")
	target := filepath.Join(f.dirs.Keystore, "databases", "payroll")
	os.RemoveAll(target)
	if err := copyTree(foreign, target); err != nil {
		t.Fatal(err)
	}
	gsmk, _ := g.ks.loadSMKMeta()
	if gsmk.Generation != smk.Generation {
		t.Fatalf("fixtures differ in SMK generation")
	}
	f.expectCorruptNoWrite(t, "secret set into a grafted database", func() error {
		_, err := f.ks.SetSecret("payroll", "new", []byte("x"), nil)
		return err
	})
	// Its password opens it, as it should: a password is the key's owner.
	if _, err := f.ks.GetSecret("payroll", "s", f.pw); err != nil {
		t.Fatalf("opening the imported key by its own password: %v", err)
	}
}

// TestWeakScryptRefused replaces a password encryption by one of the same key
// and password at a lower scrypt work factor.
func TestWeakScryptRefused(t *testing.T) {
	f := newTrustFixture(t)
	meta, _ := f.ks.loadDatabaseMeta("payroll")
	st := &session{ks: f.ks}
	dmk, err := st.openDMK(meta, f.pw)
	if err != nil {
		t.Fatal(err)
	}
	r, err := age.NewScryptRecipient(string(f.pw))
	if err != nil {
		t.Fatal(err)
	}
	r.SetWorkFactor(protect.ScryptWorkFactor() - 1)
	weak, err := sealKey(r, dmk.key, meta.Created)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(f.dirs.Keystore, "databases", "payroll", formats.PasswordBlobName(meta.Passwords[0].ID, meta.Generation))
	if err := os.WriteFile(p, weak, 0o600); err != nil {
		t.Fatal(err)
	}
	f.expectCorruptNoWrite(t, "open by password with a weakened scrypt file", func() error {
		_, err := f.ks.GetSecret("payroll", "s", f.pw)
		return err
	})
}

// TestNoRecipientField: no metadata file has a place for a recipient, and
// adding one is an unknown key.
func TestNoRecipientField(t *testing.T) {
	f := newTrustFixture(t)
	id, _ := age.GenerateX25519Identity()
	line := "\nrecipient = \"" + id.Recipient().String() + "\"\n"
	for _, p := range []string{dbMetaPath(f, "payroll"), filepath.Join(f.dirs.Keystore, "smk.toml")} {
		data, _ := os.ReadFile(p)
		// Top-level keys must come before any table.
		text := string(data)
		if i := strings.Index(text, "\n["); i >= 0 {
			text = text[:i] + line + text[i:]
		} else {
			text += line
		}
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	f.expectCorruptNoWrite(t, "secret set", func() error {
		_, err := f.ks.SetSecret("payroll", "new", []byte("x"), nil)
		return err
	})
	f.expectCorruptNoWrite(t, "credential set", func() error {
		_, err := f.ks.SetCredential("c", "u", []byte("x"))
		return err
	})
}

// TestSMKReplacedByEditor: an encryption of the SMK that opens, but to a key
// other than the one smk.toml names, is corruption, never something to heal
// from. The replacement here is another keystore's account encryption for
// the same account: what someone who can make one protector seal (DPAPI's
// machine scope lets any local user) could put in place. Healing over it
// would adopt the editor's key for everything written afterwards.
func TestSMKReplacedByEditor(t *testing.T) {
	f := newTrustFixture(t)
	dirs := f.dirs
	dirs.Keystore = filepath.Join(newTestDir(t), "keystore")
	if _, err := Init(Options{Dirs: dirs}, protect.X25519); err != nil {
		t.Fatal(err)
	}
	g := openTestKeystore(t, Options{Dirs: dirs})
	mine, _ := f.ks.loadSMKMeta()
	theirs, _ := g.loadSMKMeta()
	if mine.Generation != theirs.Generation || mine.Thumbprint == theirs.Thumbprint {
		t.Fatalf("fixtures: generations %d and %d, thumbprints %s and %s", mine.Generation, theirs.Generation, mine.Thumbprint, theirs.Thumbprint)
	}
	name := protectorBlob(string(protect.KindAccount), mine.Generation).base()
	writeTestFile(t, filepath.Join(f.dirs.Keystore, smkDir, name), readTestFile(t, filepath.Join(dirs.Keystore, smkDir, name)))

	// The machine encryption still opens the right key; the account one
	// holds another.
	f.expectCorruptNoWrite(t, "credential set with a foreign account encryption", func() error {
		_, err := f.ks.SetCredential("c", "u", []byte("x"))
		return err
	})
	f.expectCorruptNoWrite(t, "smk verify with a foreign account encryption", func() error {
		_, err := f.ks.VerifySMK()
		return err
	})

	// smk.toml edited to name the foreign key: now the account encryption
	// agrees with the metadata and the machine encryption does not.
	editTOML(t, filepath.Join(f.dirs.Keystore, smkFile), mine.Thumbprint, theirs.Thumbprint)
	f.expectCorruptNoWrite(t, "credential set with smk.toml naming the foreign key", func() error {
		_, err := f.ks.SetCredential("c", "u", []byte("x"))
		return err
	})
	f.expectCorruptNoWrite(t, "secret get with smk.toml naming the foreign key", func() error {
		_, err := f.ks.GetSecret("payroll", "s", nil)
		return err
	})
}
