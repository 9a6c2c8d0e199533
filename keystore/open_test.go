package keystore

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/protect"
)

func TestInitOpenRoundTrip(t *testing.T) {
	for _, alg := range protect.Algorithms {
		t.Run(string(alg), func(t *testing.T) {
			d := testDirs(t)
			res, err := Init(Options{Dirs: d}, alg)
			if err != nil {
				t.Fatal(err)
			}
			if res.Dir != d.Keystore || res.Algorithm != alg || len(res.ID) != 32 || len(res.Thumbprint) != 40 {
				t.Fatalf("init result %+v", res)
			}
			ks := openTestKeystore(t, Options{Dirs: d})
			if ks.ID() != res.ID || ks.Dir() != d.Keystore {
				t.Fatalf("open: id %q dir %q, init said %q %q", ks.ID(), ks.Dir(), res.ID, res.Dir)
			}
			meta, err := formats.DecodeKeystore(readTestFile(t, filepath.Join(d.Keystore, keystoreFile)))
			if err != nil || meta.ID != res.ID {
				t.Fatalf("keystore.toml: %+v, %v", meta, err)
			}
			info, err := ks.VerifySMK()
			if err != nil {
				t.Fatal(err)
			}
			if info.Thumbprint != res.Thumbprint || info.Algorithm != alg || info.Generation != 1 || !info.MachineProtection {
				t.Fatalf("smk %+v after init %+v", info, res)
			}
			if len(info.Encryptions) != 2 {
				t.Fatalf("encryptions %+v", info.Encryptions)
			}
			for i, want := range []struct {
				kind  protect.Kind
				thumb string
			}{{protect.KindAccount, AccountThumbprint}, {protect.KindMachine, MachineThumbprint}} {
				e := info.Encryptions[i]
				if e.Protector != want.kind || e.Thumbprint != want.thumb || !e.Enabled || !e.Valid || e.Recreated || e.Reason != "" {
					t.Errorf("encryption %d: %+v", i, e)
				}
			}
			for _, p := range []string{keystoreFile, smkFile, lockFile, "smk/account.1.age", "smk/machine.1.age", tmpDir, credentialsDir} {
				wantExists(t, filepath.Join(d.Keystore, p), true)
			}
			wantExists(t, filepath.Join(d.Account, protect.AccountSecretName), true)
			wantExists(t, filepath.Join(d.Machine, res.ID+".entropy"), true)
			if protect.MachineSecretName != "" {
				wantExists(t, filepath.Join(d.Machine, protect.MachineSecretName), true)
			}
			// A second Keystore value on the same directory sees the same SMK.
			info2, err := openTestKeystore(t, Options{Dirs: d}).VerifySMK()
			if err != nil || info2.Thumbprint != res.Thumbprint {
				t.Fatalf("second open: %+v, %v", info2, err)
			}
		})
	}
}

// TestKeystoreHoldsNoProtectorSecret checks P4: the protectors' secrets are
// outside the keystore directory, and nothing in it repeats them.
func TestKeystoreHoldsNoProtectorSecret(t *testing.T) {
	d := testDirs(t)
	initTestKeystore(t, d)
	var secrets [][]byte
	for _, dir := range []string{d.Account, d.Machine} {
		for _, name := range dirEntries(t, dir) {
			if strings.HasSuffix(name, ".commit") || strings.HasSuffix(name, ".format2") {
				continue // a commit count, a key's format: no secret (auth.go)
			}
			data := readTestFile(t, filepath.Join(dir, name))
			if len(data) < 32 {
				t.Fatalf("%s/%s is only %d bytes", dir, name, len(data))
			}
			secrets = append(secrets, data)
			// The account secret is an age identity: look for the key line too.
			for _, line := range strings.Split(string(data), "\n") {
				if strings.HasPrefix(line, "AGE-SECRET-KEY-") {
					secrets = append(secrets, []byte(line))
				}
			}
		}
	}
	if len(secrets) < 2 {
		t.Fatalf("found %d protector secrets", len(secrets))
	}
	for name, content := range treeSnapshot(t, d.Keystore) {
		for _, s := range secrets {
			if bytes.Contains([]byte(content), s) || bytes.Contains([]byte(content), s[:32]) {
				t.Errorf("keystore file %s holds a protector secret", name)
			}
		}
	}
}

func TestInitCreatesMissingDirectories(t *testing.T) {
	d := testDirs(t)
	d.Keystore = filepath.Join(d.Keystore, "a", "b", "ks")
	d.Account = filepath.Join(d.Account, "acct")
	d.Machine = filepath.Join(d.Machine, "m", "n")
	_, ks := initTestKeystore(t, d)
	if _, err := ks.VerifySMK(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenMissingKeystore(t *testing.T) {
	d := testDirs(t)
	d.Keystore = filepath.Join(d.Keystore, "nothing-here")
	_, err := Open(Options{Dirs: d})
	wantKind(t, err, ErrNotFound)
	if ke := keystoreError(t, err); ke.Remedy.Kind != RemedyInitOrChooseKeystore || !strings.Contains(ke.Text, d.Keystore) {
		t.Errorf("error %+v should name the directory and give the remedy", ke)
	}
	wantExists(t, d.Keystore, false)
}

func TestOpenNotAKeystore(t *testing.T) {
	d := testDirs(t)
	// An empty directory.
	_, err := Open(Options{Dirs: d})
	wantKind(t, err, ErrNotFound)
	// A directory with other things in it.
	writeTestFile(t, filepath.Join(d.Keystore, "notes.txt"), []byte("hello"))
	_, err = Open(Options{Dirs: d})
	wantKind(t, err, ErrNotFound)
	if got := dirEntries(t, d.Keystore); len(got) != 1 {
		t.Errorf("open wrote into a directory that is not a keystore: %v", got)
	}
	// A file, not a directory.
	file := filepath.Join(d.Keystore, "notes.txt")
	_, err = Open(Options{Dirs: Dirs{Keystore: file, Account: d.Account, Machine: d.Machine}})
	wantKind(t, err, ErrInvalid)
}

func TestOpenCorruptKeystoreFile(t *testing.T) {
	d := testDirs(t)
	initTestKeystore(t, d)
	p := filepath.Join(d.Keystore, keystoreFile)
	for _, content := range []string{"", "version = 1\n", "version = 3\nid = \"0123456789abcdef0123456789abcdef\"\ncreated = 2026-01-01T00:00:00Z\n", "\x00\xff"} {
		writeTestFile(t, p, []byte(content))
		_, err := Open(Options{Dirs: d})
		wantKind(t, err, ErrCorrupt)
	}
}

func TestInitRefusesExistingKeystore(t *testing.T) {
	d := testDirs(t)
	res, ks := initTestKeystore(t, d)
	setTestCredential(t, ks, "c", "u", []byte("v"))
	before := treeSnapshot(t, d.Keystore, lockFile, errorlogFile)
	_, err := Init(Options{Dirs: d}, protect.X25519)
	wantKind(t, err, ErrExists)
	if diff := diffSnapshots(before, treeSnapshot(t, d.Keystore, lockFile, errorlogFile)); diff != "" {
		t.Fatalf("refused init changed the keystore: %s", diff)
	}
	info, err := ks.VerifySMK()
	if err != nil || info.Thumbprint != res.Thumbprint {
		t.Fatalf("after refused init: %+v, %v", info, err)
	}
}

func TestInitRefusesNonEmptyDirectory(t *testing.T) {
	for _, entry := range []string{"notes.txt", ".hidden", "credentials"} {
		t.Run(entry, func(t *testing.T) {
			d := testDirs(t)
			writeTestFile(t, filepath.Join(d.Keystore, entry), []byte("mine"))
			_, err := Init(Options{Dirs: d}, protect.X25519)
			wantKind(t, err, ErrExists)
			if got := dirEntries(t, d.Keystore); len(got) != 1 || got[0] != entry {
				t.Fatalf("refused init left %v", got)
			}
			if got := dirEntries(t, d.Account); len(got) != 0 {
				t.Fatalf("refused init created %v in the account directory", got)
			}
		})
	}
}

// TestInitAfterInterruptedInit: an init that stopped after taking the lock
// leaves only the lock file and tmp/; the next init proceeds.
func TestInitAfterInterruptedInit(t *testing.T) {
	d := testDirs(t)
	writeTestFile(t, filepath.Join(d.Keystore, lockFile), nil)
	if err := os.Mkdir(filepath.Join(d.Keystore, tmpDir), 0o700); err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(d.Keystore, tmpDir, formats.TempPrefix+"x"), []byte("partial"))
	_, ks := initTestKeystore(t, d)
	if _, err := ks.VerifySMK(); err != nil {
		t.Fatal(err)
	}
}

// TestDirsOverlap checks that the keystore and the two protector directories
// must be separate (P4): Init and Open refuse any two that are the same or
// nested, and create nothing.
func TestDirsOverlap(t *testing.T) {
	root := newTestDir(t)
	ks, acct, mach := filepath.Join(root, "ks"), filepath.Join(root, "acct"), filepath.Join(root, "mach")
	cases := map[string]Dirs{
		"account is keystore":           {Keystore: ks, Account: ks, Machine: mach},
		"machine is keystore":           {Keystore: ks, Account: acct, Machine: ks},
		"machine is account":            {Keystore: ks, Account: acct, Machine: acct},
		"account inside keystore":       {Keystore: ks, Account: filepath.Join(ks, "acct"), Machine: mach},
		"machine inside keystore":       {Keystore: ks, Account: acct, Machine: filepath.Join(ks, "a", "b")},
		"keystore inside account":       {Keystore: filepath.Join(acct, "ks"), Account: acct, Machine: mach},
		"keystore inside machine":       {Keystore: filepath.Join(mach, "ks"), Account: acct, Machine: mach},
		"account inside machine":        {Keystore: ks, Account: filepath.Join(mach, "acct"), Machine: mach},
		"same through ..":               {Keystore: ks, Account: filepath.Join(ks, "x", ".."), Machine: mach},
		"nested through ..":             {Keystore: filepath.Join(acct, "..", "acct", "ks"), Account: acct, Machine: mach},
		"keystore is the parent of all": {Keystore: root, Account: acct, Machine: mach},
	}
	if runtime.GOOS == "windows" {
		cases["same but for case"] = Dirs{Keystore: ks, Account: strings.ToUpper(ks), Machine: mach}
	}
	for name, d := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Init(Options{Dirs: d}, protect.X25519)
			wantKind(t, err, ErrInvalid)
			if !strings.Contains(err.Error(), "overlap") {
				t.Errorf("error %q does not say the directories overlap", err)
			}
			_, err = Open(Options{Dirs: d})
			wantKind(t, err, ErrInvalid)
			if got := dirEntries(t, root); len(got) != 0 {
				t.Fatalf("refused init created %v", got)
			}
		})
	}
	// Siblings whose names share a prefix are separate.
	d := Dirs{Keystore: ks, Account: ks + "-account", Machine: ks + "x"}
	if _, err := Init(Options{Dirs: d}, protect.X25519); err != nil {
		t.Fatalf("separate directories with a common prefix refused: %v", err)
	}
	// Every directory must be given.
	for _, d := range []Dirs{{Account: acct, Machine: mach}, {Keystore: ks, Machine: mach}, {Keystore: ks, Account: acct}} {
		if _, err := Open(Options{Dirs: d}); err == nil {
			t.Errorf("open with %+v accepted", d)
		}
	}
}
