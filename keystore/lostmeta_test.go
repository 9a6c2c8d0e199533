package keystore

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A database directory that lost its database.toml (a disk error, a file
// removed by hand) still holds the database's master key encryptions and
// its secrets. It is damage: reported, and never swept, dropped or
// replaced (P16, P18). Nothing keytree does leaves such a directory behind:
// dmk create and db import stage in tmp/ and rename, dmk drop renames out
// (the crash harness checks that their leftovers still go).

// lostMetaFixture makes a keystore with databases payroll (two secrets,
// an SMK encryption) and hr (one secret), a credential, and an export of
// hr; then removes payroll's database.toml, and returns what it held.
func lostMetaFixture(t *testing.T) (ks *Keystore, export string, saved []byte) {
	t.Helper()
	_, ks = initTestKeystore(t, testDirs(t))
	if _, err := ks.SetCredential("c", "u", []byte("credential value")); err != nil {
		t.Fatal(err)
	}
	for _, db := range []string{"payroll", "hr"} {
		if _, err := ks.CreateDMK(db, []byte("Database-Passw0rd-1"), DMKOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := ks.SetSecret(db, "s1", []byte(db+" secret"), nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ks.SetSecret("payroll", "s2", []byte("another"), nil); err != nil {
		t.Fatal(err)
	}
	export = filepath.Join(newTestDir(t), "hr.tar")
	if _, err := ks.ExportDatabase("hr", export); err != nil {
		t.Fatal(err)
	}
	saved = readTestFile(t, ks.dbPath("payroll", databaseFile))
	if err := os.Remove(ks.dbPath("payroll", databaseFile)); err != nil {
		t.Fatal(err)
	}
	return ks, export, saved
}

// wantLost checks that err reports payroll's lost metadata as corruption,
// naming its directory.
func wantLost(t *testing.T, ks *Keystore, what string, err error) {
	t.Helper()
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("%s: %v, want the lost database.toml reported as corruption", what, err)
	}
	ke := keystoreError(t, err)
	if !strings.Contains(ke.Text, ks.dbPath("payroll")) || !strings.Contains(ke.Text, "database.toml is missing") || ke.Hint == "" {
		t.Fatalf("%s: %q (hint %q) does not name the directory and say what is missing", what, ke.Text, ke.Hint)
	}
}

func TestLostDatabaseMetaIsDamage(t *testing.T) {
	ks, export, saved := lostMetaFixture(t)
	dir := ks.dbPath("payroll")
	before := treeSnapshot(t, dir)
	unchanged := func(after string) {
		t.Helper()
		if diff := diffSnapshots(before, treeSnapshot(t, dir)); diff != "" {
			t.Fatalf("after %s, %s changed: %s", after, dir, diff)
		}
	}

	// status describes everything else, lists the damage and fails.
	st, err := ks.Status()
	wantLost(t, ks, "status", err)
	if st == nil {
		t.Fatal("status returned nothing with the damage")
	}
	// The damaged database is still there, and so are its two secrets:
	// the counts include them, and Damaged says which is damaged.
	if st.Credentials != 1 || st.Databases != 2 || st.Secrets != 3 {
		t.Fatalf("status counts %d credentials, %d databases, %d secrets; want 1, 2 and 3", st.Credentials, st.Databases, st.Secrets)
	}
	if len(st.Damaged) != 1 || st.Damaged[0].Item != "dmk/payroll" || !strings.Contains(st.Damaged[0].Problem, "database.toml is missing") {
		t.Fatalf("status damaged = %+v, want dmk/payroll", st.Damaged)
	}
	unchanged("status")

	// The listings and the commands on payroll say it is damaged, not
	// missing.
	_, err = ks.ListDatabases()
	wantLost(t, ks, "db list", err)
	_, err = ks.ListSecrets("")
	wantLost(t, ks, "secret list", err)
	_, err = ks.GetSecret("payroll", "s1", nil)
	wantLost(t, ks, "secret get", err)
	_, err = ks.SetSecret("payroll", "s3", []byte("x"), nil)
	wantLost(t, ks, "secret set", err)
	wantLost(t, ks, "dmk drop", ks.DropDMK("payroll"))
	unchanged("the commands on payroll")

	// Neither dmk create nor db import replaces it.
	_, err = ks.CreateDMK("payroll", []byte("Database-Passw0rd-2"), DMKOptions{})
	wantLost(t, ks, "dmk create", err)
	unchanged("dmk create")
	_, err = ks.ImportDatabase(export, "payroll", nil)
	wantLost(t, ks, "db import", err)
	unchanged("db import")

	// An SMK-wide operation stops on it, --force or not: the SMK
	// encryption in it would be orphaned unseen. Its failure's clean-up
	// sweeps databases/* and must keep the directory.
	for _, force := range []bool{false, true} {
		_, err = ks.RegenerateSMK(SMKOptions{Force: force})
		wantLost(t, ks, "smk regenerate", err)
		unchanged("a failed smk regenerate")
	}

	// Whatever pending.toml says, the clean-up keeps every file, and keeps
	// pending.toml too: the next writer looks again.
	writePending(t, ks, []string{"databases/payroll/secrets/s1.1.1.age", "databases/payroll/database.toml"},
		[]string{"databases/*", allDatabases, "databases/payroll", "databases/payroll/secrets"})
	if _, err := ks.SetCredential("c2", "u", []byte("v")); err != nil {
		t.Fatal(err)
	}
	unchanged("the clean-up of a pending.toml naming it")

	// With database.toml put back, payroll is whole again.
	if err := os.Remove(ks.path(pendingFile)); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	writeTestFile(t, ks.dbPath("payroll", databaseFile), saved)
	for name, want := range map[string]string{"s1": "payroll secret", "s2": "another"} {
		got, err := ks.GetSecret("payroll", name, nil)
		if err != nil || string(got) != want {
			t.Fatalf("payroll/%s after database.toml is back = %q, %v; want %q", name, got, err, want)
		}
	}
	if st, err := ks.Status(); err != nil || len(st.Damaged) != 0 || st.Databases != 2 {
		t.Fatalf("status after the repair: %+v, %v", st, err)
	}
}

// An empty directory under databases/ (a mkdir, say) holds nothing to lose:
// it is no database and no damage, and dmk create takes its place.
func TestEmptyDatabaseDirectory(t *testing.T) {
	_, ks := initTestKeystore(t, testDirs(t))
	if err := os.MkdirAll(ks.dbPath("x", secretsDir), 0o700); err != nil {
		t.Fatal(err)
	}
	st, err := ks.Status()
	if err != nil || st.Databases != 0 || len(st.Damaged) != 0 {
		t.Fatalf("status: %+v, %v; want no database and no damage", st, err)
	}
	if dbs, err := ks.ListDatabases(); err != nil || len(dbs) != 0 {
		t.Fatalf("db list: %v, %v", dbs, err)
	}
	_, err = ks.GetSecret("x", "s", nil)
	wantMsg(t, err, MsgDMKNotOpen, ErrNotFound)
	if _, err := ks.CreateDMK("x", []byte("Database-Passw0rd-1"), DMKOptions{}); err != nil {
		t.Fatalf("dmk create over an empty directory: %v", err)
	}
	if _, err := ks.SetSecret("x", "s", []byte("v"), nil); err != nil {
		t.Fatal(err)
	}
}

// dmk create and db import build a database in tmp/ and rename it into
// place, and dmk drop renames it out: at no step of theirs does databases/
// show a database directory without its database.toml, the state that
// keytree takes for lost metadata.
func TestNoStepShowsDirectoryWithoutMeta(t *testing.T) {
	_, ks := initTestKeystore(t, testDirs(t))
	pw := []byte("Database-Passw0rd-1")
	export := filepath.Join(newTestDir(t), "hr.tar")
	ops := []struct {
		name, db string
		op       func() error
	}{
		{"dmk create", "hr", func() error { _, err := ks.CreateDMK("hr", pw, DMKOptions{}); return err }},
		{"secret set", "hr", func() error { _, err := ks.SetSecret("hr", "s", []byte("v"), nil); return err }},
		{"db export", "hr", func() error { _, err := ks.ExportDatabase("hr", export); return err }},
		{"db import", "hr2", func() error { _, err := ks.ImportDatabase(export, "hr2", pw); return err }},
		{"secret rm", "hr2", func() error { return ks.RemoveSecret("hr2", "s") }},
		{"dmk drop", "hr2", func() error { return ks.DropDMK("hr2") }},
	}
	for _, o := range ops {
		var seen []string
		ks.setFault(serialized(func(kind, path string) error {
			if fileExists(ks.dbPath(o.db)) && !fileExists(ks.dbPath(o.db, databaseFile)) {
				seen = append(seen, kind+" "+path)
			}
			return nil
		}))
		err := o.op()
		ks.setFault(nil)
		if err != nil {
			t.Fatalf("%s: %v", o.name, err)
		}
		if len(seen) > 0 {
			t.Fatalf("%s showed databases/%s without database.toml at: %v", o.name, o.db, seen)
		}
	}
	wantExists(t, ks.dbPath("hr2"), false)
	if entries := dirEntries(t, ks.path(tmpDir)); len(entries) != 0 {
		t.Fatalf("tmp/ holds %v after dmk drop", entries)
	}
}
