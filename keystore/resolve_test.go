package keystore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/keytree-dev/keytree/protect"
)

// resolveTestKeystore has a credential, a database whose master key the SMK
// encrypts (app) and one whose master key only a password opens (hr).
func resolveTestKeystore(t *testing.T) (*Keystore, []byte) {
	t.Helper()
	_, ks := newTestKeystore(t)
	pw := []byte("correct horse battery staple 9")
	setTestCredential(t, ks, "pg", "postgres", []byte("pg value\n"))
	if _, err := ks.CreateDMK("app", pw, DMKOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.CreateDMK("hr", pw, DMKOptions{NoSMKEncryption: true}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct{ db, name, value string }{
		{"app", "api", "app api"}, {"app", "key", "app key"},
		{"hr", "a", "hr a"}, {"hr", "b", "hr b"}, {"hr", "c", "hr c"},
	} {
		open := pw
		if s.db == "app" {
			open = nil
		}
		if _, err := ks.SetSecret(s.db, s.name, []byte(s.value), open); err != nil {
			t.Fatal(err)
		}
	}
	return ks, pw
}

// Resolve reads every kind of reference, in order, and opens a database
// whose master key only a password opens once, asking for its password
// once, however many references use it.
func TestResolve(t *testing.T) {
	ks, pw := resolveTestKeystore(t)
	var asked []string
	var scrypts atomic.Int32
	protect.SetScryptHookForTesting(func(int) { scrypts.Add(1) })
	t.Cleanup(func() { protect.SetScryptHookForTesting(nil) })
	refs := []Ref{
		{Kind: RefSecret, DB: "hr", Name: "a"},
		{Kind: RefCredential, Name: "pg"},
		{Kind: RefCredentialIdentity, Name: "pg"},
		{Kind: RefSecret, DB: "app", Name: "api"},
		{Kind: RefSecret, DB: "hr", Name: "b"},
		{Kind: RefSecret, DB: "app", Name: "key"},
		{Kind: RefSecret, DB: "hr", Name: "c"},
	}
	values, err := ks.Resolve(refs, nil, func(db string) ([]byte, error) {
		asked = append(asked, db)
		return pw, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"hr a", "pg value\n", "postgres", "app api", "hr b", "app key", "hr c"}
	var got []string
	for _, v := range values {
		got = append(got, string(v))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("values %q, want %q", got, want)
	}
	if !slices.Equal(asked, []string{"hr"}) {
		t.Fatalf("asked for the passwords of %q, want hr once", asked)
	}
	if n := scrypts.Load(); n != 1 {
		t.Fatalf("%d scrypt runs, want 1: hr's master key was opened more than once", n)
	}

	// A password given up front is used, and nothing is asked.
	values, err = ks.Resolve(refs[:1], map[string][]byte{"hr": pw}, func(string) ([]byte, error) {
		t.Fatal("asked for a password that was given")
		return nil, nil
	})
	if err != nil || string(values[0]) != "hr a" {
		t.Fatalf("with the password given: %q, %v", values, err)
	}
}

// One walk reads each file of the keystore at most once, however many
// references lead through it: a database's metadata is read once for all
// of its secrets, not once for each.
func TestResolveReadsEachFileOnce(t *testing.T) {
	ks, pw := resolveTestKeystore(t)
	reads := map[string]int{}
	ks.setFault(serialized(func(kind, path string) error {
		if kind == "read" {
			reads[path]++
		}
		return nil
	}))
	refs := []Ref{
		{Kind: RefSecret, DB: "app", Name: "api"},
		{Kind: RefSecret, DB: "hr", Name: "a"},
		{Kind: RefSecret, DB: "app", Name: "key"},
		{Kind: RefSecret, DB: "hr", Name: "b"},
		{Kind: RefSecret, DB: "hr", Name: "c"},
		{Kind: RefCredential, Name: "pg"},
		{Kind: RefCredentialIdentity, Name: "pg"},
	}
	values, err := ks.Resolve(refs, map[string][]byte{"hr": pw}, nil)
	if err != nil || len(values) != len(refs) {
		t.Fatalf("values %q, %v", values, err)
	}
	for _, db := range []string{"app", "hr"} {
		if p := ks.pathOf(databaseMeta(db)); reads[p] != 1 {
			t.Errorf("%s read %d times in one walk, want once", p, reads[p])
		}
	}
	for p, n := range reads {
		if n > 1 && filepath.Base(p) != "database.toml" {
			t.Errorf("%s read %d times in one walk", p, n)
		}
	}
}

// A read that must repair the SMK (here, its machine encryption is gone)
// runs again under the exclusive lock: the password asked for in the first
// pass is not asked for again.
func TestResolveAsksOnceAcrossRepair(t *testing.T) {
	ks, pw := resolveTestKeystore(t)
	blobs, err := filepath.Glob(filepath.Join(ks.Dir(), smkDir, "machine.*.age"))
	if err != nil || len(blobs) != 1 {
		t.Fatalf("machine encryptions %v, %v", blobs, err)
	}
	if err := os.Remove(blobs[0]); err != nil {
		t.Fatal(err)
	}
	var asked []string
	values, err := ks.Resolve([]Ref{{Kind: RefSecret, DB: "hr", Name: "a"}, {Kind: RefCredential, Name: "pg"}}, nil,
		func(db string) ([]byte, error) {
			asked = append(asked, db)
			return pw, nil
		})
	if err != nil || len(values) != 2 || string(values[0]) != "hr a" || string(values[1]) != "pg value\n" {
		t.Fatalf("values %q, %v", values, err)
	}
	if !slices.Equal(asked, []string{"hr"}) {
		t.Fatalf("asked for the passwords of %q, want hr once", asked)
	}
	wantExists(t, blobs[0], true) // the repair was made
}

// Resolve fails closed: every reference to something that does not exist
// is listed, and no value is returned, not even the ones that resolved.
func TestResolveFailsClosed(t *testing.T) {
	ks, pw := resolveTestKeystore(t)
	ask := func(string) ([]byte, error) { return pw, nil }
	refs := []Ref{
		{Kind: RefCredential, Name: "pg"},
		{Kind: RefCredential, Name: "nosuch"},
		{Kind: RefSecret, DB: "app", Name: "nosuch"},
		{Kind: RefCredentialIdentity, Name: "gone"},
		{Kind: RefSecret, DB: "nodb", Name: "x"},
		{Kind: RefSecret, DB: "hr", Name: "a"},
	}
	values, err := ks.Resolve(refs, nil, ask)
	if values != nil {
		t.Fatalf("values returned with unresolved references: %q", values)
	}
	wantKind(t, err, ErrNotFound)
	var ue *UnresolvedError
	if !errors.As(err, &ue) {
		t.Fatalf("error %v, want an UnresolvedError", err)
	}
	if want := []Ref{refs[1], refs[2], refs[3], refs[4]}; !slices.Equal(ue.Refs, want) || len(ue.Errs) != len(want) {
		t.Fatalf("unresolved %v, want %v", ue.Refs, want)
	}

	// A key that does not open is no missing reference: it stops at once.
	_, err = ks.Resolve([]Ref{{Kind: RefSecret, DB: "hr", Name: "a"}}, nil, func(string) ([]byte, error) {
		return []byte("wrong password, long enough 1"), nil
	})
	wantKind(t, err, ErrDecryption)
	if errors.As(err, &ue) {
		t.Fatalf("a wrong password reported as unresolved: %v", err)
	}
	// Without a way to get hr's password, hr does not open.
	_, err = ks.Resolve([]Ref{{Kind: RefSecret, DB: "hr", Name: "a"}}, nil, nil)
	wantKind(t, err, ErrDecryption)

	// A reference with an invalid name is refused before anything is read.
	_, err = ks.Resolve([]Ref{{Kind: RefSecret, DB: "../x", Name: "a"}}, nil, ask)
	wantKind(t, err, ErrInvalid)
}

// ParseRef reads exactly the three forms of a reference, and URI writes
// them back.
func TestParseRef(t *testing.T) {
	for _, c := range []struct {
		s    string
		want Ref
	}{
		{"keytree://credential/pg", Ref{Kind: RefCredential, Name: "pg"}},
		{"keytree://credential/mail.relay@corp/identity", Ref{Kind: RefCredentialIdentity, Name: "mail.relay@corp"}},
		{"keytree://secret/payroll/api-key", Ref{Kind: RefSecret, DB: "payroll", Name: "api-key"}},
		{"keytree://secret/credential/x", Ref{Kind: RefSecret, DB: "credential", Name: "x"}},
	} {
		got, err := ParseRef(c.s)
		if err != nil || got != c.want {
			t.Errorf("ParseRef(%q) = %+v, %v; want %+v", c.s, got, err, c.want)
			continue
		}
		if u := got.URI(); u != c.s {
			t.Errorf("URI of %q is %q", c.s, u)
		}
	}
	for _, s := range []string{
		"", "pg", "credential/pg", "KEYTREE://credential/pg", "keytree:/credential/pg",
		"keytree://", "keytree://credential", "keytree://credential/", "keytree://credential/pg/",
		"keytree://credential/pg/value", "keytree://credential/pg/identity/x",
		"keytree://secret/payroll", "keytree://secret/payroll/", "keytree://secret//x",
		"keytree://secret/payroll/a/b", "keytree://payroll/a", "keytree://file/etc/passwd",
		"keytree://credential/..", "keytree://secret/../x", "keytree://credential/.hidden",
		"keytree://credential/a b", "keytree://credential/a\x00b", "keytree://credential/a\nb",
		"keytree://secret/CON/x", " keytree://credential/pg", "keytree://credential/pg ",
	} {
		r, err := ParseRef(s)
		if err == nil {
			t.Errorf("ParseRef(%q) = %+v, want an error", s, r)
			continue
		}
		wantKind(t, err, ErrInvalid)
	}
	// The error does not repeat what it was given: a value pasted where a
	// reference belongs must not reach a log.
	_, err := ParseRef("keytree://credential/hunter2 is my password")
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error %v repeats its input", err)
	}
}

// FuzzParseRef: whatever parses is a reference to a valid name, and writes
// back as the same text.
func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"keytree://credential/pg", "keytree://credential/pg/identity", "keytree://secret/db/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRef(s)
		if err != nil {
			return
		}
		if r.validate() != nil || r.URI() != s {
			t.Fatalf("ParseRef(%q) = %+v, URI %q", s, r, r.URI())
		}
	})
}

// Values are decrypted on every CPU, and come back in the order asked for;
// a damaged one fails the whole read, naming the first damaged one in that
// order, and returns no value.
func TestResolveDecryptsInOrder(t *testing.T) {
	_, ks := newTestKeystore(t)
	if _, err := ks.CreateDMK("db", []byte("correct horse battery staple 9"), DMKOptions{}); err != nil {
		t.Fatal(err)
	}
	var items []ImportItem
	var refs []Ref
	for i := range 40 {
		items = append(items, ImportItem{Name: fmt.Sprintf("s%02d", i), Value: []byte(fmt.Sprint("value ", i))})
		refs = append(refs, Ref{Kind: RefSecret, DB: "db", Name: fmt.Sprintf("s%02d", 39-i)})
	}
	if _, err := ks.ImportSecrets("db", items, nil); err != nil {
		t.Fatal(err)
	}
	values, err := ks.Resolve(refs, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range values {
		if want := fmt.Sprint("value ", 39-i); string(v) != want {
			t.Fatalf("value %d = %q, want %q", i, v, want)
		}
	}
	for _, name := range []string{"s05", "s30"} {
		blobs, _ := filepath.Glob(filepath.Join(ks.pathOf(secretsDirOf("db")), name+".*.age"))
		if len(blobs) != 1 {
			t.Fatalf("blobs of %s: %v", name, blobs)
		}
		data := readTestFile(t, blobs[0])
		data[len(data)-1] ^= 1
		writeTestFile(t, blobs[0], data)
	}
	values, err = ks.Resolve(refs, nil, nil)
	if values != nil || err == nil || !strings.Contains(err.Error(), "db/s30") {
		t.Fatalf("with s05 and s30 damaged, s30 first in the order asked: %q, %v", values, err)
	}
}
