package keystore

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/protect"
)

// Fixtures of every released format: keystores written by the keytree that
// introduced format version 1 and format version 2, each with its account
// and machine directories, backups and an export. Each must keep opening,
// with every value, in every later keytree. -update-fixtures rewrites the
// newest one with the current code, which is right only while its format
// has not been released; a new format version gets a new directory, and the
// older ones stay as they are:
//
//	go test ./keystore -run TestFixture -update-fixtures
var updateFixtures = flag.Bool("update-fixtures", false, "write testdata/fixtures/keystore-v2 anew")

const (
	fixtureDir   = "../testdata/fixtures/keystore-v1"
	fixtureDirV2 = "../testdata/fixtures/keystore-v2"
)

// The fixture's contents. Its password encryptions and backups are written
// at the shipped scrypt cost, so that the released keytree opens them too:
// the test pays a second or so for each one it opens.
var (
	fixtureCredentials = map[string][]byte{
		"backup-db": []byte("hunter2"),
		"binary":    {0, 1, 2, 0xfe, 0xff, '\n'},
		"empty":     {},
	}
	fixtureSecrets = map[string][]byte{
		"payroll/signing-key": []byte("-----BEGIN KEY-----\n\x00\xff\n"),
		"payroll/token":       []byte("t0ken"),
		"hr/ssh-key":          []byte("ssh key \x01"),
	}
	fixturePassword        = []byte("Fixture-Passw0rd-1")
	fixtureOrphanCred      = "old-cred"
	fixtureOrphanSecret    = "payroll/old-secret"
	fixtureOrphanCredVal   = []byte("encrypted by the first SMK")
	fixtureOrphanSecretVal = []byte("encrypted by payroll's first DMK")
)

func fixtureDirs(root string) Dirs {
	return Dirs{Keystore: filepath.Join(root, "keystore"), Account: filepath.Join(root, "account"), Machine: filepath.Join(root, "machine")}
}

// writeFixture builds the fixture with the current code: both SMK and DMK
// generations above 1, an SMK and a DMK orphan (so both [[retired]] lists
// are written), a database opened by password only, backups and an export.
func writeFixture(t *testing.T, root string) {
	if runtime.GOOS == "windows" {
		t.Fatal("the fixture's protectors are Unix ones; write it on Unix")
	}
	os.RemoveAll(root)
	protect.SetScryptWorkFactorForTesting(shippedScryptWorkFactor)
	defer protect.SetScryptWorkFactorForTesting(testScryptWorkFactor)
	d := fixtureDirs(root)
	if _, err := Init(Options{Dirs: d}, protect.X25519); err != nil {
		t.Fatal(err)
	}
	ks, err := Open(Options{Dirs: d})
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for name, v := range fixtureCredentials {
		_, err := ks.SetCredential(name, "svc_"+name, v)
		must(err)
	}
	_, err = ks.CreateDMK("payroll", fixturePassword, DMKOptions{Algorithm: protect.MLKEM768X25519})
	must(err)
	_, err = ks.CreateDMK("hr", fixturePassword, DMKOptions{NoSMKEncryption: true})
	must(err)
	for path, v := range fixtureSecrets {
		db, name, _ := formats.SplitSecretPath(path)
		_, err := ks.SetSecret(db, name, v, openFor(db))
		must(err)
	}
	// Orphans: a value encrypted by the first key, put back after a
	// regeneration, then left behind by --force.
	_, err = ks.BackupSMK(filepath.Join(root, "smk-gen1.age"), fixturePassword, SMKOptions{})
	must(err)
	_, err = ks.BackupDMK("payroll", filepath.Join(root, "payroll-dmk-gen1.age"), fixturePassword, DMKOptions{})
	must(err)
	_, err = ks.SetCredential(fixtureOrphanCred, "svc", fixtureOrphanCredVal)
	must(err)
	db, name, _ := formats.SplitSecretPath(fixtureOrphanSecret)
	_, err = ks.SetSecret(db, name, fixtureOrphanSecretVal, nil)
	must(err)
	oldCred, _ := os.ReadFile(ks.path(credentialsDir, formats.BlobName(fixtureOrphanCred, 1, 1)))
	oldSecret, _ := os.ReadFile(ks.dbPath(db, secretsDir, formats.BlobName(name, 1, 1)))
	_, err = ks.RegenerateSMK(SMKOptions{})
	must(err)
	must(os.WriteFile(ks.path(credentialsDir, formats.BlobName(fixtureOrphanCred, 1, 2)), oldCred, 0o600))
	_, err = ks.RegenerateSMK(SMKOptions{Force: true})
	must(err)
	_, err = ks.RegenerateDMK(db, fixturePassword, DMKOptions{})
	must(err)
	must(os.WriteFile(ks.dbPath(db, secretsDir, formats.BlobName(name, 1, 2)), oldSecret, 0o600))
	_, err = ks.RegenerateDMK(db, fixturePassword, DMKOptions{Force: true})
	must(err)
	_, err = ks.BackupSMK(filepath.Join(root, "smk-current.age"), fixturePassword, SMKOptions{})
	must(err)
	_, err = ks.ExportDatabase("hr", filepath.Join(root, "hr.tar"))
	must(err)
	must(os.Remove(ks.path(errorlogFile)))
}

// scryptWorkFactorOf reads the work factor of an age file's scrypt stanza.
func scryptWorkFactorOf(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "->" && f[1] == "scrypt" {
			n, err := strconv.Atoi(f[3])
			if err != nil {
				t.Fatalf("%s: scrypt stanza %q", path, line)
			}
			return n
		}
	}
	t.Fatalf("%s has no scrypt stanza", path)
	return 0
}

func openFor(db string) []byte {
	if db == "hr" {
		return fixturePassword
	}
	return nil
}

// copyFixture copies the fixture to a temporary directory with the modes
// keytree wants, which git does not keep.
func copyFixture(t *testing.T) string { return copyFixtureOf(t, fixtureDir) }

func copyFixtureOf(t *testing.T, dir string) string {
	t.Helper()
	root := crashTempDir(t)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		r, _ := filepath.Rel(dir, p)
		dst := filepath.Join(root, r)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// TestFixtureV1 opens the fixture of format 1, then upgrades it to format
// 2: every value reads the same, and a swap is caught.
func TestFixtureV1(t *testing.T) {
	t.Parallel()
	root := copyFixture(t)
	ks := checkFixture(t, root)
	if m, err := ks.loadSMKMeta(); err != nil || authenticated(m) {
		t.Fatalf("the fixture of format 1: smk.toml %+v, %v", m, err)
	}
	res, err := ks.Upgrade(map[string][]byte{"hr": fixturePassword, "hr2": fixturePassword})
	if err != nil || len(res.Databases) != 3 {
		t.Fatalf("upgrade of the fixture: %+v, %v", res, err)
	}
	checkFixtureValues(t, ks)
	d := fixtureDirs(root)
	a, b := filepath.Join(d.Keystore, credentialsDir), ""
	for _, n := range dirEntries(t, a) {
		if strings.HasPrefix(n, "binary.") && strings.HasSuffix(n, ".age") {
			b = filepath.Join(a, n)
		}
	}
	for _, n := range dirEntries(t, a) {
		if strings.HasPrefix(n, "backup-db.") && strings.HasSuffix(n, ".age") {
			writeTestFile(t, filepath.Join(a, n), readTestFile(t, b))
		}
	}
	if _, v, err := ks.GetCredential("backup-db"); !errors.Is(err, ErrCorrupt) || v != nil {
		t.Fatalf("a swap in the upgraded fixture: %q, %v", v, err)
	}
}

// TestFixtureV2 opens the fixture of format 2.
func TestFixtureV2(t *testing.T) {
	t.Parallel()
	if *updateFixtures {
		writeFixture(t, fixtureDirV2)
	}
	ks := checkFixture(t, copyFixtureOf(t, fixtureDirV2))
	if m, err := ks.loadSMKMeta(); err != nil || !authenticated(m) {
		t.Fatalf("the fixture of format 2: smk.toml %+v, %v", m, err)
	}
	for _, db := range []string{"payroll", "hr", "hr2"} {
		if m, err := ks.loadDatabaseMeta(db); err != nil || !dbAuthenticated(m) {
			t.Fatalf("the fixture of format 2: database %s %+v, %v", db, m, err)
		}
	}
}

// checkFixtureValues reads every credential and secret of a fixture.
func checkFixtureValues(t *testing.T, ks *Keystore) {
	t.Helper()
	for name, want := range fixtureCredentials {
		if _, got, err := ks.GetCredential(name); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("credential %s = %q, %v; want %q", name, got, err, want)
		}
	}
	for path, want := range fixtureSecrets {
		db, name, _ := formats.SplitSecretPath(path)
		if got, err := ks.GetSecret(db, name, openFor(db)); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("secret %s = %q, %v; want %q", path, got, err, want)
		}
	}
}

// checkFixture opens a copy of a fixture in root and checks everything it
// holds: values, orphans and their recovery, the export.
func checkFixture(t *testing.T, root string) *Keystore {
	t.Helper()
	d := fixtureDirs(root)
	ks, err := Open(Options{Dirs: d})
	if err != nil {
		t.Fatalf("the fixture does not open: %v", err)
	}
	// The shipped keytree refuses a password file below its work factor,
	// so the fixture's must be at it.
	passwordFiles, _ := filepath.Glob(filepath.Join(d.Keystore, "databases", "*", "password.*.age"))
	backups, _ := filepath.Glob(filepath.Join(root, "*.age"))
	if len(passwordFiles) < 2 || len(backups) < 3 {
		t.Fatalf("the fixture has %d password encryptions and %d backups", len(passwordFiles), len(backups))
	}
	for _, p := range append(passwordFiles, backups...) {
		if got := scryptWorkFactorOf(t, p); got != shippedScryptWorkFactor {
			t.Errorf("%s: scrypt work factor %d, want the shipped %d", p, got, shippedScryptWorkFactor)
		}
	}

	// Every database's secrets, by password: this needs no protector, so
	// it holds on every OS.
	for path, want := range fixtureSecrets {
		db, name, _ := formats.SplitSecretPath(path)
		got, err := ks.GetSecret(db, name, fixturePassword)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("secret %s by password = %q, %v; want %q", path, got, err, want)
		}
	}
	db, name, _ := formats.SplitSecretPath(fixtureOrphanSecret)
	if _, err := ks.GetSecret(db, name, fixturePassword); !isMsg(err, MsgItemDecrypt) {
		t.Fatalf("the fixture's orphaned secret: %v, want 15320", err)
	}

	if runtime.GOOS == "windows" {
		// The fixture's account and machine secrets are Unix ones; on
		// Windows the SMK comes back from its backup.
		if _, err := ks.RestoreSMK(filepath.Join(root, "smk-current.age"), fixturePassword, SMKOptions{Force: true}); err != nil {
			t.Fatalf("restore of the fixture's SMK backup: %v", err)
		}
	}

	// Credentials and secrets through the SMK, as a cron job reads them.
	for name, want := range fixtureCredentials {
		if _, got, err := ks.GetCredential(name); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("credential %s = %q, %v; want %q", name, got, err, want)
		}
	}
	for path, want := range fixtureSecrets {
		db, name, _ := formats.SplitSecretPath(path)
		if got, err := ks.GetSecret(db, name, openFor(db)); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("secret %s = %q, %v; want %q", path, got, err, want)
		}
	}
	st, err := ks.Status()
	if err != nil {
		t.Fatal(err)
	}
	if st.Credentials != len(fixtureCredentials)+1 || st.Databases != 2 || st.Secrets != len(fixtureSecrets)+1 || len(st.Orphans) != 2 {
		t.Fatalf("status of the fixture: %d credentials, %d databases, %d secrets, %d orphans", st.Credentials, st.Databases, st.Secrets, len(st.Orphans))
	}

	// The orphans recover with the first generation's backups.
	if _, err := ks.RecoverSMK(filepath.Join(root, "smk-gen1.age"), fixturePassword, SMKOptions{}); err != nil {
		t.Fatalf("smk recover: %v", err)
	}
	if _, got, err := ks.GetCredential(fixtureOrphanCred); err != nil || !bytes.Equal(got, fixtureOrphanCredVal) {
		t.Fatalf("recovered credential = %q, %v", got, err)
	}
	if _, err := ks.RecoverDMK(db, filepath.Join(root, "payroll-dmk-gen1.age"), fixturePassword, DMKOptions{}); err != nil {
		t.Fatalf("dmk recover: %v", err)
	}
	if got, err := ks.GetSecret(db, name, nil); err != nil || !bytes.Equal(got, fixtureOrphanSecretVal) {
		t.Fatalf("recovered secret = %q, %v", got, err)
	}

	// The export imports, under another name: with its password.
	if _, err := ks.ImportDatabase(filepath.Join(root, "hr.tar"), "hr2", fixturePassword); err != nil {
		t.Fatalf("import of the fixture's export: %v", err)
	}
	if got, err := ks.GetSecret("hr2", "ssh-key", fixturePassword); err != nil || !bytes.Equal(got, fixtureSecrets["hr/ssh-key"]) {
		t.Fatalf("imported secret = %q, %v", got, err)
	}
	return ks
}

// TestFixtureFutureVersion: a keystore of a format this keytree does not
// know is refused, cleanly and without being touched, whichever file says so.
func TestFixtureFutureVersion(t *testing.T) {
	t.Parallel()
	files := []string{"keystore.toml", "smk.toml", "databases/payroll/database.toml", "credentials/backup-db.toml"}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			root := copyFixture(t)
			p := filepath.Join(fixtureDirs(root).Keystore, filepath.FromSlash(f))
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, bytes.Replace(data, []byte("version = 1"), []byte("version = 3"), 1), 0o600); err != nil {
				t.Fatal(err)
			}
			before := listFiles(t, root)
			var opErr error
			ks, err := Open(Options{Dirs: fixtureDirs(root)})
			if err != nil {
				opErr = err
			} else {
				_, err1 := ks.Status()
				_, err2 := ks.GetSecret("payroll", "token", fixturePassword)
				_, _, err3 := ks.GetCredential("backup-db")
				opErr = errors.Join(err1, err2, err3)
			}
			if !errors.Is(opErr, ErrCorrupt) || !strings.Contains(opErr.Error(), "format version 3 is not supported") {
				t.Fatalf("%s at version 3: %v", f, opErr)
			}
			// Nothing is damaged: the hint says so, not to restore.
			var ke *Error
			if !errors.As(opErr, &ke) || !strings.Contains(ke.Hint, "a newer keytree wrote this keystore") {
				t.Fatalf("%s at version 3: hint of %#v", f, ke)
			}
			if after := listFiles(t, root); after != before {
				t.Fatalf("a refused keystore was changed: %s", fmt.Sprint(after))
			}
		})
	}
}
