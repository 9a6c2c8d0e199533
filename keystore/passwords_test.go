package keystore

import (
	"bytes"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/keystore/internal/fsio"
	"github.com/keytree-dev/keytree/protect"
)

// Trying passwords on a DMK's password encryptions: damage told from a wrong
// password, the scrypt ceiling and budget, tags, and scrypt kept out of the
// exclusive lock (passwords.go).

var passwordTestOpts = DMKOptions{SkipPasswordPolicy: true}

// countScrypts records the work factor of every scrypt keytree runs until
// the test ends.
func countScrypts(t *testing.T) *[]int {
	t.Helper()
	runs := &[]int{}
	protect.SetScryptHookForTesting(func(logN int) { *runs = append(*runs, logN) })
	t.Cleanup(func() { protect.SetScryptHookForTesting(nil) })
	return runs
}

// passwordTestDB makes a keystore with database "db", its DMK encrypted by
// the SMK and by each password (the first by dmk create, the others by
// add-encryption), and a secret "s".
func passwordTestDB(t *testing.T, passwords ...string) (Dirs, *Keystore) {
	t.Helper()
	d, ks := newTestKeystore(t)
	if _, err := ks.CreateDMK("db", []byte(passwords[0]), passwordTestOpts); err != nil {
		t.Fatal(err)
	}
	for _, pw := range passwords[1:] {
		if err := ks.AddDMKEncryption("db", ByPassword, []byte(pw), passwordTestOpts); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ks.SetSecret("db", "s", []byte("value"), nil); err != nil {
		t.Fatal(err)
	}
	return d, ks
}

// passwordFile is the file of the i-th password encryption of db.
func passwordFile(t *testing.T, ks *Keystore, db string, i int) string {
	t.Helper()
	meta, err := ks.loadDatabaseMeta(db)
	if err != nil {
		t.Fatal(err)
	}
	return ks.dbPath(db, formats.PasswordBlobName(meta.Passwords[i].ID, meta.Generation))
}

// editDatabaseMeta changes db's database.toml with edit.
func editDatabaseMeta(t *testing.T, ks *Keystore, db string, edit func(*formats.Database)) {
	t.Helper()
	meta, err := ks.loadDatabaseMeta(db)
	if err != nil {
		t.Fatal(err)
	}
	edit(meta)
	data, err := meta.Encode()
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, ks.dbPath(db, databaseFile), data)
}

// editSignedDatabaseMeta is editDatabaseMeta for a state keytree could
// have written: the result is signed by the DMK (opened by the SMK).
func editSignedDatabaseMeta(t *testing.T, ks *Keystore, db string, edit func(*formats.Database)) {
	t.Helper()
	err := ks.write("test", func(s *session) error {
		meta, err := s.ks.loadDatabaseMeta(db)
		if err != nil {
			return err
		}
		dmk, err := s.openDMK(meta, nil)
		if err != nil {
			return err
		}
		edit(meta)
		if err := signDatabase(meta, dmk.key); err != nil {
			return err
		}
		writeTestFile(t, ks.dbPath(db, databaseFile), mustEncode(t, meta))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// addUntaggedPassword adds a password encryption to db the way a
// keytree before tags did (no tag), written at work factor logN (0:
// keytree's own), without the checks of add-encryption.
func addUntaggedPassword(t *testing.T, ks *Keystore, db, password string, logN int) {
	t.Helper()
	err := ks.write("test", func(s *session) error {
		meta, err := s.ks.loadDatabaseMeta(db)
		if err != nil {
			return err
		}
		dmk, err := s.openDMK(meta, nil)
		if err != nil {
			return err
		}
		r, err := age.NewScryptRecipient(password)
		if err != nil {
			return err
		}
		if logN == 0 {
			logN = protect.ScryptWorkFactor()
		}
		r.SetWorkFactor(logN)
		plain, err := keyFileOf(dmk.key, meta.Created).Encode()
		if err != nil {
			return err
		}
		blob, err := protect.Seal(r, plain)
		if err != nil {
			return err
		}
		pe := formats.PasswordEncryption{ID: newPasswordID(), Created: ks.nowUTC()}
		if err := ks.files.CreateFile(ks.dbPath(db, formats.PasswordBlobName(pe.ID, meta.Generation)), blob, true); err != nil {
			return err
		}
		meta.Passwords = append(meta.Passwords, pe)
		if err := signDatabase(meta, dmk.key); err != nil {
			return err
		}
		return s.begin().commitDatabase(meta)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Damage to an age file's parts: each returns the file changed.
func truncateFile(b []byte) []byte { return b[:len(b)/2] }

func flipPayload(b []byte) []byte {
	b = bytes.Clone(b)
	b[len(b)-1] ^= 1
	return b
}

// flipBase64 changes the base64 character at i into another one.
func flipBase64(b []byte, i int) []byte {
	b = bytes.Clone(b)
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return b
}

func flipHeaderMAC(b []byte) []byte { return flipBase64(b, bytes.Index(b, []byte("\n--- "))+5) }

// flipWrappedKey changes the stanza body: the file key wrapped by scrypt.
func flipWrappedKey(b []byte) []byte {
	stanza := bytes.Index(b, []byte("\n-> scrypt "))
	body := stanza + 1 + bytes.IndexByte(b[stanza+1:], '\n') + 1
	return flipBase64(b, body)
}

// setWorkFactor rewrites the work factor in the scrypt stanza.
func setWorkFactor(b []byte, logN string) []byte {
	lines := strings.SplitN(string(b), "\n", 3)
	f := strings.Fields(lines[1])
	f[3] = logN
	lines[1] = strings.Join(f, " ")
	return []byte(strings.Join(lines, "\n"))
}

func wantCorruptFile(t *testing.T, err error, path string) {
	t.Helper()
	if !errors.Is(err, ErrCorrupt) || errors.Is(err, ErrDecryption) {
		t.Fatalf("error %v, want corruption", err)
	}
	if !strings.Contains(err.Error(), filepath.Base(path)) {
		t.Fatalf("error %q does not name %s", err, filepath.Base(path))
	}
}

// TestDamagedPasswordEncryption: a password encryption that is damaged in a
// way age can tell is reported as corruption naming the file, by readers
// and writers, not as a wrong password (15313).
func TestDamagedPasswordEncryption(t *testing.T) {
	x, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	notScrypt, err := protect.Seal(x.Recipient(), []byte("a key file"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		edit func([]byte) []byte
	}{
		{"truncated", truncateFile},
		{"empty", func([]byte) []byte { return nil }},
		{"payload bit flipped", flipPayload},
		{"header MAC flipped", flipHeaderMAC},
		{"not a scrypt stanza", func([]byte) []byte { return notScrypt }},
		{"work factor not a number", func(b []byte) []byte { return setWorkFactor(b, "1x") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, ks := passwordTestDB(t, "right-password")
			path := passwordFile(t, ks, "db", 0)
			writeTestFile(t, path, tc.edit(readTestFile(t, path)))
			before := treeSnapshot(t, d.Keystore, "errorlog")
			_, err := ks.GetSecret("db", "s", []byte("right-password"))
			wantCorruptFile(t, err, path)
			_, err = ks.SetSecret("db", "s", []byte("new"), []byte("right-password"))
			wantCorruptFile(t, err, path)
			if diff := diffSnapshots(before, treeSnapshot(t, d.Keystore, "errorlog")); diff != "" {
				t.Fatalf("a failed secret set changed the keystore: %s", diff)
			}
		})
	}

	// An intact file that the password does not open stays 15313.
	_, ks := passwordTestDB(t, "right-password")
	_, err = ks.GetSecret("db", "s", []byte("wrong-password"))
	wantMsg(t, err, MsgNotEncryptedBy, ErrDecryption)
}

// TestDamagedWrappedKey: a damaged wrapped file key looks like a wrong
// password to age. The entry's tag tells them apart: damage if the tag
// says the password is this encryption's, a wrong password if not. Without
// tags (keytree before them) it is reported as a wrong password.
func TestDamagedWrappedKey(t *testing.T) {
	_, ks := passwordTestDB(t, "password-1", "password-2")
	path := passwordFile(t, ks, "db", 0)
	writeTestFile(t, path, flipWrappedKey(readTestFile(t, path)))

	_, err := ks.GetSecret("db", "s", []byte("password-1"))
	wantCorruptFile(t, err, path)
	if !strings.Contains(err.Error(), "tag") {
		t.Errorf("error %q does not say how damage was told from a wrong password", err)
	}
	if got, err := ks.GetSecret("db", "s", []byte("password-2")); err != nil || string(got) != "value" {
		t.Fatalf("the other password: %q, %v", got, err)
	}
	_, err = ks.GetSecret("db", "s", []byte("wrong-password"))
	wantMsg(t, err, MsgNotEncryptedBy, ErrDecryption)

	editDatabaseMeta(t, ks, "db", func(m *formats.Database) {
		for i := range m.Passwords {
			m.Passwords[i].Tag = ""
		}
	})
	_, err = ks.GetSecret("db", "s", []byte("password-1"))
	wantMsg(t, err, MsgNotEncryptedBy, ErrDecryption)
}

// TestScryptCeiling: a password encryption, or a tag, whose work factor is
// above the ceiling is refused as corruption before any scrypt runs at it.
func TestScryptCeiling(t *testing.T) {
	_, ks := passwordTestDB(t, "password-1")
	addUntaggedPassword(t, ks, "db", "hostile", 0)
	path := passwordFile(t, ks, "db", 1)
	writeTestFile(t, path, setWorkFactor(readTestFile(t, path), "21"))

	runs := countScrypts(t)
	_, err := ks.GetSecret("db", "s", []byte("hostile"))
	wantCorruptFile(t, err, path)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "above keytree's maximum") {
		t.Fatalf("error %v, want the work factor refused", err)
	}
	for _, logN := range *runs {
		if logN > testScryptWorkFactor {
			t.Fatalf("scrypt ran at work factor %d", logN)
		}
	}

	// A tag at a work factor out of range makes database.toml corrupt.
	for _, logN := range []string{"21", strconv.Itoa(testScryptWorkFactor - 1)} {
		editDatabaseMeta(t, ks, "db", func(m *formats.Database) {
			_, tag, _ := m.Passwords[0].ParseTag()
			m.Passwords[0].Tag = logN + ":" + tag
		})
		*runs = nil
		_, err = ks.GetSecret("db", "s", []byte("password-1"))
		wantCorruptFile(t, err, databaseFile)
		if len(*runs) != 0 {
			t.Fatalf("tag at work factor %s: scrypt ran at %v", logN, *runs)
		}
	}
}

// TestScryptBudget: one password's scrypt work in a command is bounded,
// whatever the database's password encryptions ask for.
func TestScryptBudget(t *testing.T) {
	defer func(l int64) { passwordScryptLimit = l }(passwordScryptLimit)
	passwordScryptLimit = 6 << testScryptWorkFactor

	_, ks := passwordTestDB(t, "password-1")
	for _, pw := range []string{"a", "b", "c", "d", "e", "f", "g"} {
		addUntaggedPassword(t, ks, "db", pw, 0)
	}
	runs := countScrypts(t)
	_, err := ks.GetSecret("db", "s", []byte("wrong-password"))
	wantKind(t, err, ErrRefused)
	if len(*runs) != 6 {
		t.Fatalf("%d scrypts, want the 6 the budget allows (a tag key and 5 files)", len(*runs))
	}
	// Within the budget the right password still opens.
	if got, err := ks.GetSecret("db", "s", []byte("b")); err != nil || string(got) != "value" {
		t.Fatalf("secret by password b: %q, %v", got, err)
	}

	// A file at a higher work factor counts for more: at the factor plus
	// 2 (within the ceiling), four times as much.
	_, ks = passwordTestDB(t, "password-1")
	addUntaggedPassword(t, ks, "db", "a", testScryptWorkFactor+2)
	addUntaggedPassword(t, ks, "db", "b", testScryptWorkFactor+2)
	*runs = nil
	_, err = ks.GetSecret("db", "s", []byte("wrong-password"))
	wantKind(t, err, ErrRefused)
	if len(*runs) != 2 {
		t.Fatalf("scrypts at %v, want a tag key and one file", *runs)
	}
}

// TestPasswordTags: with tags, a wrong password costs one scrypt however
// many password encryptions there are, and the right one two; entries
// without a tag (keytree before them) are tried as before.
func TestPasswordTags(t *testing.T) {
	passwords := []string{"password-0", "password-1", "password-2", "password-3", "password-4", "password-5", "password-6", "password-7"}
	_, ks := passwordTestDB(t, passwords...)
	meta, err := ks.loadDatabaseMeta("db")
	if err != nil {
		t.Fatal(err)
	}
	for _, pe := range meta.Passwords {
		if logN, _, ok := pe.ParseTag(); !ok || logN != testScryptWorkFactor {
			t.Fatalf("entry %+v has no tag at the work factor", pe)
		}
	}

	runs := countScrypts(t)
	count := func(what string, want int, err error) {
		t.Helper()
		if err != nil && !isMsg(err, MsgNotEncryptedBy) {
			t.Fatalf("%s: %v", what, err)
		}
		if len(*runs) != want {
			t.Errorf("%s: %d scrypts, want %d", what, len(*runs), want)
		}
		*runs = nil
	}
	_, err = ks.GetSecret("db", "s", []byte("wrong-password"))
	wantMsg(t, err, MsgNotEncryptedBy, ErrDecryption)
	count("secret get, wrong password", 1, err)
	_, err = ks.GetSecret("db", "s", []byte("password-7"))
	count("secret get, the last password", 2, err)
	_, err = ks.SetSecret("db", "s", []byte("value"), []byte("password-3"))
	count("secret set", 2, err)
	// Checking the new password is not there yet, sealing and checking
	// the new encryption; its tag reuses the first scrypt.
	err = ks.AddDMKEncryption("db", ByPassword, []byte("password-8"), passwordTestOpts)
	count("add-encryption", 3, err)

	// A database as keytree before tags left it, signed as the upgrade
	// would sign it.
	editSignedDatabaseMeta(t, ks, "db", func(m *formats.Database) {
		for i := range m.Passwords {
			m.Passwords[i].Tag = ""
		}
	})
	_, err = ks.GetSecret("db", "s", []byte("password-7"))
	count("secret get without tags, the eighth password", 8, err)
}

// TestScryptOutsideExclusiveLock: commands that try or seal passwords run
// scrypt while other keytree processes can still read the keystore.
func TestScryptOutsideExclusiveLock(t *testing.T) {
	d, ks := passwordTestDB(t, "password-1")
	backup := filepath.Join(newTestDir(t), "db.age")
	if _, err := ks.BackupDMK("db", backup, []byte("backup-password"), passwordTestOpts); err != nil {
		t.Fatal(err)
	}
	var runs, locked int
	countScryptsUnderLock(t, ks, &runs, &locked)

	open := DMKOptions{SkipPasswordPolicy: true, OpenPassword: []byte("password-1")}
	for _, op := range []struct {
		name string
		run  func() error
	}{
		{"dmk create", func() error { _, err := ks.CreateDMK("db2", []byte("password-1"), passwordTestOpts); return err }},
		{"secret set", func() error { _, err := ks.SetSecret("db", "s", []byte("v"), []byte("password-1")); return err }},
		{"secret set, wrong password", func() error {
			_, err := ks.SetSecret("db", "s", []byte("v"), []byte("wrong-password"))
			if isMsg(err, MsgNotEncryptedBy) {
				return nil
			}
			return err
		}},
		{"dmk add-encryption", func() error { return ks.AddDMKEncryption("db", ByPassword, []byte("password-2"), open) }},
		{"dmk drop-encryption", func() error { return ks.DropDMKEncryption("db", ByPassword, []byte("password-2")) }},
		{"dmk regenerate", func() error { _, err := ks.RegenerateDMK("db", []byte("password-1"), open); return err }},
		{"dmk restore", func() error {
			_, err := ks.RestoreDMK("db", backup, []byte("backup-password"), []byte("password-1"), open)
			return err
		}},
	} {
		runs, locked = 0, 0
		if err := op.run(); err != nil {
			t.Fatalf("%s: %v", op.name, err)
		}
		if runs == 0 || locked != 0 {
			t.Errorf("%s: %d of its %d scrypts ran under the exclusive lock", op.name, locked, runs)
		}
	}
	if got, err := ks.GetSecret("db", "s", []byte("password-1")); err != nil || string(got) != "v" {
		t.Fatalf("secret after the commands: %q, %v", got, err)
	}
	_ = d
}

// countScryptsUnderLock counts, for the rest of the test, the scrypt runs
// and, in locked, those of them that ran while another process could not
// take a shared lock on ks, that is, under the exclusive lock.
func countScryptsUnderLock(t *testing.T, ks *Keystore, runs, locked *int) {
	protect.SetScryptHookForTesting(func(int) {
		*runs++
		l, err := ks.lock(fsio.Shared, 0)
		if err != nil {
			*locked++
			return
		}
		l.Release()
	})
	t.Cleanup(func() { protect.SetScryptHookForTesting(nil) })
}

// TestPasswordsChangedBetweenPasses: if another writer changes the password
// encryptions between the scrypt pass and the exclusive lock, the command
// does its scrypt pass again, still outside the lock, and succeeds.
func TestPasswordsChangedBetweenPasses(t *testing.T) {
	d, ks := passwordTestDB(t, "password-1")
	other := openTestKeystore(t, Options{Dirs: d})
	rehearsals, regenerated := 0, false
	rehearsedHook = func() {
		rehearsals++
		if !regenerated {
			regenerated = true
			// A new DMK, encrypted by the same password in a new file.
			if _, err := other.RegenerateDMK("db", []byte("password-1"), DMKOptions{SkipPasswordPolicy: true}); err != nil {
				t.Errorf("regenerate in between: %v", err)
			}
		}
	}
	defer func() { rehearsedHook = nil }()
	var runs, locked int
	countScryptsUnderLock(t, ks, &runs, &locked)

	if _, err := ks.SetSecret("db", "t", []byte("value t"), []byte("password-1")); err != nil {
		t.Fatal(err)
	}
	// One rehearsal for the regenerate, two for the secret set.
	if rehearsals != 3 || locked != 0 {
		t.Fatalf("%d rehearsals, %d scrypts under the exclusive lock; want 3 and 0", rehearsals, locked)
	}
	meta, _ := ks.loadDatabaseMeta("db")
	if meta.Generation != 2 {
		t.Fatalf("generation %d, want 2", meta.Generation)
	}
	if got, err := ks.GetSecret("db", "t", nil); err != nil || string(got) != "value t" {
		t.Fatalf("secret t: %q, %v", got, err)
	}
}
