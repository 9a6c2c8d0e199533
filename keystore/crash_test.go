package keystore

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/protect"
)

// The crash-injection harness. Every change keytree makes to the disk goes
// through keystore/internal/fsio, which calls the keystore's fault hook
// (setFault) before each step; a crashPoint lets the first n-1 steps happen
// and fails the n-th and every one after it, as if the process had died
// there.
// For each operation the harness counts its steps, then for every n runs
// it on a fresh copy of the same keystore, stopped at step n, and checks
// that:
//   - the keystore opens, and is wholly in the old state or wholly in the new
//     one (smk.toml's generation and thumbprint, and every value readable
//     under them);
//   - every credential reads back with its right value;
//   - the next writing command removes everything the crash left behind:
//     afterwards tmp/ is empty, pending.toml is gone and every file is
//     referenced by committed metadata.
// docs/reliability.md reports the figures this test logs.

var errCrashed = errors.New("simulated crash")

type crashPoint struct {
	n, seen int
	crashed bool
	at      string
}

func (c *crashPoint) hook(kind, path string) error {
	if kind == "read" {
		// Reads change nothing on disk: a crash there is a crash before
		// the next write.
		return nil
	}
	if c.crashed {
		return errCrashed
	}
	c.seen++
	if c.seen == c.n {
		c.crashed = true
		c.at = kind + " " + path
		return errCrashed
	}
	return nil
}

// crashEnv is one copy of a test keystore: its three directories and what
// the test knows about it.
type crashEnv struct {
	root     string
	dirs     Dirs
	values   map[string][]byte
	password []byte
	// SMK thumbprints: before the operation, and after it if known.
	oldThumb, newThumb string
	oldGen             int
	backupOld          string // backup of an earlier SMK
	backupCur          string // backup of the current SMK
	orphan             string // a credential that is orphaned before the operation
	// secrets of database "payroll" (SMK encryption, passwords pw1 and
	// pw2) and "hr" (password pw1 only), by DB/NAME.
	secrets          map[string][]byte
	pw1, pw2         []byte
	dmkBackupOld     string // backup of payroll's earlier DMK
	exportFile       string // an export of payroll
	dbGen            int    // payroll's DMK generation before the operation
	dbThumb, dbNewTh string
	secretOrphan     string // a secret orphaned before the operation
	format1          bool   // the template is a keystore of format 1
}

func (e *crashEnv) opts() Options { return Options{Dirs: e.dirs, format1: e.format1} }

func (e *crashEnv) open(t *testing.T) *Keystore {
	t.Helper()
	ks, err := Open(e.opts())
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return ks
}

func crashTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "keytree-crash-")
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" {
		t.Cleanup(func() { os.RemoveAll(dir) })
	}
	return dir
}

// newCrashTemplate builds a keystore with a few credentials, a backup of its
// first SMK, then regenerates so that the backup is of an earlier key, and
// takes a backup of the current key too.
func newCrashTemplate(t *testing.T) *crashEnv {
	return newCrashTemplateOf(t, false)
}

func newCrashTemplateOf(t *testing.T, format1 bool) *crashEnv {
	t.Helper()
	root := crashTempDir(t)
	e := &crashEnv{
		format1:  format1,
		root:     root,
		dirs:     Dirs{Keystore: filepath.Join(root, "ks"), Account: filepath.Join(root, "account"), Machine: filepath.Join(root, "machine")},
		values:   map[string][]byte{},
		password: []byte("Backup-Passw0rd-7"),
	}
	if _, err := Init(e.opts(), protect.X25519); err != nil {
		t.Fatal(err)
	}
	ks := e.open(t)
	for i, v := range []string{"alpha", "b\x00inary\xff", "", "delta-value"} {
		name := fmt.Sprintf("cred-%d", i)
		e.values[name] = []byte(v)
		if _, err := ks.SetCredential(name, "user"+name, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	e.backupOld = filepath.Join(root, "backup-old.age")
	if _, err := ks.BackupSMK(e.backupOld, e.password, SMKOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.RegenerateSMK(SMKOptions{}); err != nil {
		t.Fatal(err)
	}
	e.backupCur = filepath.Join(root, "backup-cur.age")
	if _, err := ks.BackupSMK(e.backupCur, e.password, SMKOptions{}); err != nil {
		t.Fatal(err)
	}
	e.pw1, e.pw2 = []byte("Database-Passw0rd-1"), []byte("Database-Passw0rd-2")
	e.secrets = map[string][]byte{}
	if _, err := ks.CreateDMK("payroll", e.pw1, DMKOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := ks.AddDMKEncryption("payroll", ByPassword, e.pw2, DMKOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.CreateDMK("hr", e.pw1, DMKOptions{NoSMKEncryption: true}); err != nil {
		t.Fatal(err)
	}
	for i, v := range []string{"s\x00ecret", "", "third"} {
		for _, db := range []string{"payroll", "hr"} {
			name := fmt.Sprintf("%s/sec-%d", db, i)
			e.secrets[name] = []byte(v + db)
			if _, err := ks.SetSecret(db, fmt.Sprintf("sec-%d", i), e.secrets[name], e.openPassword(db)); err != nil {
				t.Fatal(err)
			}
		}
	}
	e.dmkBackupOld = filepath.Join(root, "dmk-old.age")
	if _, err := ks.BackupDMK("payroll", e.dmkBackupOld, e.password, DMKOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.RegenerateDMK("payroll", e.pw1, DMKOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := ks.AddDMKEncryption("payroll", ByPassword, e.pw2, DMKOptions{}); err != nil {
		t.Fatal(err)
	}
	e.exportFile = filepath.Join(root, "payroll.tar")
	if _, err := ks.ExportDatabase("payroll", e.exportFile); err != nil {
		t.Fatal(err)
	}
	e.refresh(t)
	return e
}

// openPassword is what opens a database's master key in the template: the
// SMK for payroll, a password for hr.
func (e *crashEnv) openPassword(db string) []byte {
	if db == "hr" {
		return e.pw1
	}
	return nil
}

// refresh records the current SMK as the "old" state.
func (e *crashEnv) refresh(t *testing.T) {
	t.Helper()
	meta, err := e.open(t).loadSMKMeta()
	if err != nil {
		t.Fatal(err)
	}
	e.oldThumb, e.oldGen = meta.Thumbprint, meta.Generation
	if db, err := e.open(t).loadDatabaseMeta("payroll"); err == nil {
		e.dbGen, e.dbThumb = db.Generation, db.Thumbprint
	}
}

// clone copies the template into a new directory.
func (e *crashEnv) clone(t *testing.T) *crashEnv {
	t.Helper()
	root := crashTempDir(t)
	c := *e
	c.root = root
	move := func(p string) string {
		r, err := filepath.Rel(e.root, p)
		if err != nil {
			t.Fatal(err)
		}
		return filepath.Join(root, r)
	}
	c.dirs = Dirs{Keystore: move(e.dirs.Keystore), Account: move(e.dirs.Account), Machine: move(e.dirs.Machine)}
	if filepath.IsAbs(e.orphan) {
		c.orphan = move(e.orphan)
	}
	c.values = map[string][]byte{}
	for k, v := range e.values {
		c.values[k] = v
	}
	c.secrets = map[string][]byte{}
	for k, v := range e.secrets {
		c.secrets[k] = v
	}
	c.dmkBackupOld = move(e.dmkBackupOld)
	c.exportFile = move(e.exportFile)
	if err := copyTree(e.root, root); err != nil {
		t.Fatal(err)
	}
	c.backupOld = filepath.Join(root, filepath.Base(e.backupOld))
	c.backupCur = filepath.Join(root, filepath.Base(e.backupCur))
	return &c
}

func copyTree(from, to string) error {
	return filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		r, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, r)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			if err := os.MkdirAll(dst, 0o700); err != nil {
				return err
			}
			return os.Chmod(dst, info.Mode().Perm())
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, data, info.Mode().Perm())
	})
}

// checkValues reads every credential back. An orphan may be unreadable in the
// old state only.
func (e *crashEnv) checkValues(t *testing.T, ks *Keystore, state string) {
	t.Helper()
	for name, want := range e.values {
		_, got, err := ks.GetCredential(name)
		if name == e.orphan && state == "old" {
			if err == nil || !errors.Is(err, ErrDecryption) {
				t.Fatalf("orphan %s in the old state: err = %v, want it still orphaned", name, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("credential %s (%s state): %v", name, state, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("credential %s (%s state) = %q, want %q", name, state, got, want)
		}
	}
	e.checkSecrets(t, ks, state)
}

// checkSecrets reads every secret back, opening hr's key by password. A
// secret orphaned before the operation may be unreadable in the old state.
func (e *crashEnv) checkSecrets(t *testing.T, ks *Keystore, state string) {
	t.Helper()
	for path, want := range e.secrets {
		db, name, _ := formats.SplitSecretPath(path)
		got, err := ks.GetSecret(db, name, e.openPassword(db))
		if path == e.secretOrphan && state == "old" {
			if err == nil {
				t.Fatalf("orphan %s read back in the old state", path)
			}
			continue
		}
		if err != nil {
			t.Fatalf("secret %s (%s state): %v", path, state, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("secret %s (%s state) = %q, want %q", path, state, got, want)
		}
	}
}

// dbState reports "old" or "new" from payroll's database.toml, for the
// operations that move it to a new generation.
func (e *crashEnv) dbState(t *testing.T, ks *Keystore) string {
	t.Helper()
	meta, err := ks.loadDatabaseMeta("payroll")
	if err != nil {
		t.Fatalf("payroll's database.toml: %v", err)
	}
	switch {
	case meta.Generation == e.dbGen && meta.Thumbprint == e.dbThumb:
		return "old"
	case meta.Generation == e.dbGen+1 && (e.dbNewTh == "" || meta.Thumbprint == e.dbNewTh):
		return "new"
	}
	t.Fatalf("payroll is neither in the old state (gen %d) nor the new one: gen %d, %s", e.dbGen, meta.Generation, meta.Thumbprint)
	return ""
}

// smkState reports "old" or "new" from smk.toml, failing on anything else.
func (e *crashEnv) smkGeneration(t *testing.T, ks *Keystore) string {
	t.Helper()
	meta, err := ks.loadSMKMeta()
	if err != nil {
		t.Fatalf("smk.toml: %v", err)
	}
	switch {
	case meta.Generation == e.oldGen && meta.Thumbprint == e.oldThumb:
		return "old"
	case meta.Generation == e.oldGen+1 && (e.newThumb == "" || meta.Thumbprint == e.newThumb):
		return "new"
	}
	t.Fatalf("smk.toml is neither the old state (gen %d, %s) nor the new one (gen %d, %s): gen %d, %s",
		e.oldGen, e.oldThumb, e.oldGen+1, e.newThumb, meta.Generation, meta.Thumbprint)
	return ""
}

// assertClean checks that nothing an interrupted operation left behind
// survives: tmp/ is empty, pending.toml is gone, and every file is
// referenced by committed metadata.
func assertClean(t *testing.T, ks *Keystore) {
	t.Helper()
	if entries, _ := os.ReadDir(ks.path(tmpDir)); len(entries) > 0 {
		t.Fatalf("tmp/ still holds %d files", len(entries))
	}
	if exists(ks.path(pendingFile)) {
		t.Fatal("pending.toml survived the next writer")
	}
	c := &collector{ks: ks}
	var garbage []string
	dirs := []string{smkDir, credentialsDir}
	dbs, err := os.ReadDir(ks.path(databasesDir))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dbs {
		dirs = append(dirs, rel(databasesDir, d.Name()), rel(databasesDir, d.Name(), secretsDir))
		if !exists(ks.dbPath(d.Name(), databaseFile)) {
			garbage = append(garbage, rel(databasesDir, d.Name()))
		}
	}
	for _, dir := range dirs {
		entries, err := os.ReadDir(ks.path(dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, en := range entries {
			if strings.HasSuffix(en.Name(), ".toml") || en.IsDir() {
				continue
			}
			p := rel(dir, en.Name())
			if ref, known := c.referenced(p); !ref || !known {
				garbage = append(garbage, p)
			}
		}
	}
	if len(garbage) > 0 {
		sort.Strings(garbage)
		t.Fatalf("files left behind: %v", garbage)
	}
}

type crashCase struct {
	name string
	// prepare turns a clone of the template into the operation's starting
	// point (it runs with the fault hook off).
	prepare func(t *testing.T, e *crashEnv)
	op      func(e *crashEnv, ks *Keystore) error
	// check verifies the keystore after the operation was stopped, and
	// returns "old" or "new".
	check func(t *testing.T, e *crashEnv, ks *Keystore) string
	// finish, if set, is run when check found the old state: the operation,
	// run again without faults, must then succeed.
	finish func(e *crashEnv, ks *Keystore) error
}

// checkRekey is the check of the SMK-wide operations.
func checkRekey(t *testing.T, e *crashEnv, ks *Keystore) string {
	state := e.smkGeneration(t, ks)
	e.checkValues(t, ks, state)
	return state
}

// checkReprotect checks a restore of the key in use while no encryption of
// it opened: it re-protects the key in its own generation, so smk.toml never
// changes; the old state is the key that still does not open, the new one
// every value readable.
func checkReprotect(t *testing.T, e *crashEnv, ks *Keystore) string {
	t.Helper()
	meta, err := ks.loadSMKMeta()
	if err != nil {
		t.Fatal(err)
	}
	if meta.Generation != e.oldGen || meta.Thumbprint != e.oldThumb {
		t.Fatalf("smk.toml moved to generation %d, %s; a restore of the key in use keeps generation %d, %s",
			meta.Generation, meta.Thumbprint, e.oldGen, e.oldThumb)
	}
	if _, err := ks.VerifySMK(); isMsg(err, MsgDecryption) {
		wantSMKLost(t, ks)
		return "old"
	} else if err != nil {
		t.Fatal(err)
	}
	e.checkValues(t, ks, "new")
	return "new"
}

func crashCases() []crashCase {
	regen := func(e *crashEnv, ks *Keystore) error { _, err := ks.RegenerateSMK(SMKOptions{}); return err }
	return []crashCase{
		{
			name: "backup",
			op: func(e *crashEnv, ks *Keystore) error {
				_, err := ks.BackupSMK(filepath.Join(e.root, "new-backup.age"), e.password, SMKOptions{})
				return err
			},
			check: checkBackup,
		},
		{
			name: "restore",
			prepare: func(t *testing.T, e *crashEnv) {
				key, _, err := readKeyBackup(e.backupOld, protect.KindSMK, e.password)
				if err != nil {
					t.Fatal(err)
				}
				e.newThumb = key.Thumbprint()
			},
			op: func(e *crashEnv, ks *Keystore) error {
				_, err := ks.RestoreSMK(e.backupOld, e.password, SMKOptions{})
				return err
			},
			check: checkRekey,
		},
		{
			name: "restore of the key in use, both encryptions invalid",
			prepare: func(t *testing.T, e *crashEnv) {
				// Another account and another machine: 15466.
				e.dirs.Account += "-new"
				e.dirs.Machine += "-new"
				e.newThumb = e.oldThumb
			},
			op: func(e *crashEnv, ks *Keystore) error {
				_, err := ks.RestoreSMK(e.backupCur, e.password, SMKOptions{Force: false})
				return err
			},
			check: checkReprotect,
			finish: func(e *crashEnv, ks *Keystore) error {
				_, err := ks.RestoreSMK(e.backupCur, e.password, SMKOptions{Force: false})
				return err
			},
		},
		{
			name: "restore --force of the key in use, both encryptions invalid",
			prepare: func(t *testing.T, e *crashEnv) {
				// Another account and another machine: 15466.
				e.dirs.Account += "-new"
				e.dirs.Machine += "-new"
				e.newThumb = e.oldThumb
			},
			op: func(e *crashEnv, ks *Keystore) error {
				_, err := ks.RestoreSMK(e.backupCur, e.password, SMKOptions{Force: true})
				return err
			},
			check: checkReprotect,
			finish: func(e *crashEnv, ks *Keystore) error {
				_, err := ks.RestoreSMK(e.backupCur, e.password, SMKOptions{Force: true})
				return err
			},
		},
		{name: "regenerate", op: regen, check: checkRekey},
		{
			name: "regenerate --algorithm mlkem768x25519",
			op: func(e *crashEnv, ks *Keystore) error {
				_, err := ks.RegenerateSMK(SMKOptions{Algorithm: protect.MLKEM768X25519})
				return err
			},
			check: checkRekey,
		},
		{
			name:    "regenerate --force with an undecryptable credential",
			prepare: prepareForeignCredential,
			op: func(e *crashEnv, ks *Keystore) error {
				_, err := ks.RegenerateSMK(SMKOptions{Force: true})
				return err
			},
			check: func(t *testing.T, e *crashEnv, ks *Keystore) string {
				state := e.smkGeneration(t, ks)
				// The foreign credential never reads, in either state; the
				// others always do.
				for name, want := range e.values {
					_, got, err := ks.GetCredential(name)
					if name == e.orphan {
						if err == nil {
							t.Fatalf("foreign credential read back in the %s state", state)
						}
						continue
					}
					if err != nil || !bytes.Equal(got, want) {
						t.Fatalf("%s (%s state) = %q, %v; want %q", name, state, got, err, want)
					}
				}
				return state
			},
		},
		{
			name: "recover",
			prepare: func(t *testing.T, e *crashEnv) {
				prepareForeignCredential(t, e)
				ks := e.open(t)
				if _, err := ks.RegenerateSMK(SMKOptions{Force: true}); err != nil {
					t.Fatal(err)
				}
				e.refresh(t)
				e.newThumb = e.oldThumb // recover keeps the key, in a new generation
			},
			op: func(e *crashEnv, ks *Keystore) error {
				_, err := ks.RecoverSMK(e.backupOld, e.password, SMKOptions{})
				return err
			},
			check: checkRekey,
		},
		{
			name: "alter --old-account-dir",
			prepare: func(t *testing.T, e *crashEnv) {
				e.orphan = e.dirs.Account // remember the old account's directory
				e.dirs.Account += "-new"
				e.dirs.Machine += "-new"
			},
			op: func(e *crashEnv, ks *Keystore) error {
				_, err := ks.AlterSMKOldAccount(e.orphan)
				return err
			},
			check: func(t *testing.T, e *crashEnv, ks *Keystore) string {
				// The key does not change; either it opens (new, possibly with
				// one encryption still to re-create) or it does not (old).
				if _, _, err := ks.GetCredential("cred-0"); isMsg(err, MsgDecryption) {
					return "old"
				}
				e.orphan = ""
				checkRekey(t, e, ks)
				return "new"
			},
			finish: func(e *crashEnv, ks *Keystore) error {
				_, err := ks.AlterSMKOldAccount(strings.TrimSuffix(e.dirs.Account, "-new"))
				return err
			},
		},
		{
			name: "alter --new-account-dir",
			op: func(e *crashEnv, ks *Keystore) error {
				_, err := ks.AlterSMKNewAccount(filepath.Join(e.root, "account-next"))
				return err
			},
			check: func(t *testing.T, e *crashEnv, ks *Keystore) string {
				// New state: the account encryption opens with the next
				// account's secret. Check that before reading values, which
				// would re-create it for the current account.
				state := "old"
				if p, err := ks.accountProtectorIn(filepath.Join(e.root, "account-next"), createNone); err == nil {
					blob, err := os.ReadFile(ks.pathOf(protectorBlob("account", e.oldGen)))
					if err == nil {
						if _, _, err := openKeyFile(p, blob, protect.KindSMK, e.oldThumb); err == nil {
							state = "new"
						}
					}
				}
				checkRekey(t, e, ks)
				return state
			},
		},
		{
			name: "machine-protection off",
			op:   func(e *crashEnv, ks *Keystore) error { _, err := ks.SetMachineProtection(false); return err },
			check: func(t *testing.T, e *crashEnv, ks *Keystore) string {
				meta, _ := ks.loadSMKMeta()
				checkRekey(t, e, ks)
				if meta.MachineProtection {
					return "old"
				}
				return "new"
			},
		},
		{
			name: "machine-protection on",
			prepare: func(t *testing.T, e *crashEnv) {
				if _, err := e.open(t).SetMachineProtection(false); err != nil {
					t.Fatal(err)
				}
			},
			op: func(e *crashEnv, ks *Keystore) error { _, err := ks.SetMachineProtection(true); return err },
			check: func(t *testing.T, e *crashEnv, ks *Keystore) string {
				meta, _ := ks.loadSMKMeta()
				checkRekey(t, e, ks)
				if !meta.MachineProtection {
					return "old"
				}
				return "new"
			},
			finish: func(e *crashEnv, ks *Keystore) error { _, err := ks.SetMachineProtection(true); return err },
		},
		{
			name: "dmk create",
			op: func(e *crashEnv, ks *Keystore) error {
				_, err := ks.CreateDMK("newdb", e.pw1, DMKOptions{})
				return err
			},
			check: func(t *testing.T, e *crashEnv, ks *Keystore) string {
				checkRekey(t, e, ks)
				if _, err := ks.loadDatabaseMeta("newdb"); notExist(err) {
					return "old"
				}
				if _, err := ks.SetSecret("newdb", "x", []byte("y"), nil); err != nil {
					t.Fatalf("new database: %v", err)
				}
				return "new"
			},
		},
		{
			name: "dmk add-encryption --by password",
			op: func(e *crashEnv, ks *Keystore) error {
				return ks.AddDMKEncryption("payroll", ByPassword, []byte("Third-Passw0rd-3"), DMKOptions{})
			},
			check: func(t *testing.T, e *crashEnv, ks *Keystore) string {
				checkRekey(t, e, ks)
				meta, _ := ks.loadDatabaseMeta("payroll")
				if len(meta.Passwords) == 2 {
					return "old"
				}
				if _, _, err := ks.openDMKByPassword(meta, []byte("Third-Passw0rd-3")); err != nil {
					t.Fatalf("the added password does not open: %v", err)
				}
				return "new"
			},
		},
		{
			name: "dmk drop-encryption --by password",
			op:   func(e *crashEnv, ks *Keystore) error { return ks.DropDMKEncryption("payroll", ByPassword, e.pw2) },
			check: func(t *testing.T, e *crashEnv, ks *Keystore) string {
				checkRekey(t, e, ks)
				meta, _ := ks.loadDatabaseMeta("payroll")
				for _, pw := range [][]byte{e.pw1, e.pw2} {
					if _, _, err := ks.openDMKByPassword(meta, pw); err != nil && (len(meta.Passwords) == 2 || string(pw) == string(e.pw1)) {
						t.Fatalf("password %s: %v", pw, err)
					}
				}
				if len(meta.Passwords) == 2 {
					return "old"
				}
				return "new"
			},
		},
		{
			name: "dmk drop-encryption --by smk, then add it again",
			op: func(e *crashEnv, ks *Keystore) error {
				if err := ks.DropDMKEncryption("payroll", BySMK, nil); err != nil {
					return err
				}
				return ks.AddDMKEncryption("payroll", BySMK, nil, DMKOptions{OpenPassword: e.pw2})
			},
			check: func(t *testing.T, e *crashEnv, ks *Keystore) string {
				meta, _ := ks.loadDatabaseMeta("payroll")
				if !meta.SMKEncryption {
					// Between the two: secrets open by password only.
					if _, err := ks.GetSecret("payroll", "sec-0", nil); !isMsg(err, MsgDMKNotOpen) {
						t.Fatalf("without its SMK encryption: %v, want 15581", err)
					}
					if _, err := ks.GetSecret("payroll", "sec-0", e.pw1); err != nil {
						t.Fatal(err)
					}
					return "old"
				}
				checkRekey(t, e, ks)
				return "new"
			},
			finish: func(e *crashEnv, ks *Keystore) error {
				return ks.AddDMKEncryption("payroll", BySMK, nil, DMKOptions{OpenPassword: e.pw2})
			},
		},
		{
			name: "dmk regenerate",
			op: func(e *crashEnv, ks *Keystore) error {
				_, err := ks.RegenerateDMK("payroll", []byte("Fresh-Passw0rd-9"), DMKOptions{})
				return err
			},
			check: func(t *testing.T, e *crashEnv, ks *Keystore) string {
				e.smkGeneration(t, ks)
				state := e.dbState(t, ks)
				e.checkSecrets(t, ks, state)
				return state
			},
		},
		{
			name: "dmk restore",
			prepare: func(t *testing.T, e *crashEnv) {
				key, _, err := readKeyBackup(e.dmkBackupOld, protect.KindDMK, e.password)
				if err != nil {
					t.Fatal(err)
				}
				e.dbNewTh = key.Thumbprint()
			},
			op: func(e *crashEnv, ks *Keystore) error {
				_, err := ks.RestoreDMK("payroll", e.dmkBackupOld, e.password, nil, DMKOptions{})
				return err
			},
			check: func(t *testing.T, e *crashEnv, ks *Keystore) string {
				e.smkGeneration(t, ks)
				state := e.dbState(t, ks)
				e.checkSecrets(t, ks, state)
				return state
			},
		},
		{
			name: "dmk recover",
			prepare: func(t *testing.T, e *crashEnv) {
				// Put back a value of payroll/sec-2 encrypted by the old DMK,
				// then orphan it with regenerate --force.
				ks := e.open(t)
				oldKey, _, err := readKeyBackup(e.dmkBackupOld, protect.KindDMK, e.password)
				if err != nil {
					t.Fatal(err)
				}
				sm, _ := ks.loadSecretMeta("payroll", "sec-2")
				// (The file it was, bound to the secret, as keytree
				// wrote it under that key.)
				ct, _ := protect.SealBound(oldKey, secretBinding("payroll", sm), e.secrets["payroll/sec-2"])
				if err := os.WriteFile(ks.dbPath("payroll", secretsDir, formats.BlobName("sec-2", sm.Revision, e.dbGen)), ct, 0o600); err != nil {
					t.Fatal(err)
				}
				if _, err := ks.RegenerateDMK("payroll", e.pw1, DMKOptions{Force: true}); err != nil {
					t.Fatal(err)
				}
				e.refresh(t)
				e.dbNewTh = e.dbThumb
				e.secretOrphan = "payroll/sec-2"
			},
			op: func(e *crashEnv, ks *Keystore) error {
				_, err := ks.RecoverDMK("payroll", e.dmkBackupOld, e.password, DMKOptions{})
				return err
			},
			check: func(t *testing.T, e *crashEnv, ks *Keystore) string {
				state := e.dbState(t, ks)
				e.checkSecrets(t, ks, state)
				return state
			},
		},
		keptDMKRegenerate(),
		keptDMKRecover(),
		keptSMKRestore(),
		keptSMKRecover(),
		{
			name: "db import",
			op: func(e *crashEnv, ks *Keystore) error {
				_, err := ks.ImportDatabase(e.exportFile, "payroll2", e.pw2)
				return err
			},
			check: func(t *testing.T, e *crashEnv, ks *Keystore) string {
				checkRekey(t, e, ks)
				if _, err := ks.loadDatabaseMeta("payroll2"); notExist(err) {
					return "old"
				}
				for path, want := range e.secrets {
					db, name, _ := formats.SplitSecretPath(path)
					if db != "payroll" {
						continue
					}
					got, err := ks.GetSecret("payroll2", name, e.pw2)
					if err != nil || !bytes.Equal(got, want) {
						t.Fatalf("imported %s = %q, %v", name, got, err)
					}
				}
				return "new"
			},
		},
		{
			name: "db export",
			op: func(e *crashEnv, ks *Keystore) error {
				_, err := ks.ExportDatabase("hr", filepath.Join(e.root, "hr.tar"))
				return err
			},
			check: func(t *testing.T, e *crashEnv, ks *Keystore) string {
				checkRekey(t, e, ks)
				if !exists(filepath.Join(e.root, "hr.tar")) {
					return "old"
				}
				if _, err := ks.ImportDatabase(filepath.Join(e.root, "hr.tar"), "hr2", e.pw1); err != nil {
					t.Fatalf("the export does not import: %v", err)
				}
				return "new"
			},
		},
		{
			name: "secret set and rm, dmk drop",
			op: func(e *crashEnv, ks *Keystore) error {
				if _, err := ks.SetSecret("hr", "sec-0", []byte("changed"), e.pw1); err != nil {
					return err
				}
				for i := 0; i < 3; i++ {
					if err := ks.RemoveSecret("hr", fmt.Sprintf("sec-%d", i)); err != nil {
						return err
					}
				}
				return ks.DropDMK("hr")
			},
			check: func(t *testing.T, e *crashEnv, ks *Keystore) string {
				checkValuesOnly(t, e, ks)
				if _, err := ks.loadDatabaseMeta("hr"); notExist(err) {
					return "new"
				}
				return "old"
			},
		},
		{
			name: "credential set (replace)",
			op: func(e *crashEnv, ks *Keystore) error {
				_, err := ks.SetCredential("cred-3", "someone-else", []byte("replacement"))
				return err
			},
			check: func(t *testing.T, e *crashEnv, ks *Keystore) string {
				cred, got, err := ks.GetCredential("cred-3")
				if err != nil {
					t.Fatal(err)
				}
				state := "old"
				if cred.Identity == "someone-else" {
					state = "new"
					e.values["cred-3"] = []byte("replacement")
				}
				if !bytes.Equal(got, e.values["cred-3"]) {
					t.Fatalf("cred-3 in the %s state = %q", state, got)
				}
				checkRekey(t, e, ks)
				return state
			},
		},
		{
			name: "credential import",
			op: func(e *crashEnv, ks *Keystore) error {
				_, err := ks.ImportCredentials(importedCredentials)
				return err
			},
			check: func(t *testing.T, e *crashEnv, ks *Keystore) string {
				return checkImported(t, e, ks, "", importedCredentials, e.values)
			},
		},
		{
			name: "secret import, a database that a password opens",
			op: func(e *crashEnv, ks *Keystore) error {
				_, err := ks.ImportSecrets("hr", importedSecrets, e.pw1)
				return err
			},
			check: func(t *testing.T, e *crashEnv, ks *Keystore) string {
				return checkImported(t, e, ks, "hr", importedSecrets, e.secrets)
			},
		},
		{
			name: "credential rm",
			op:   func(e *crashEnv, ks *Keystore) error { return ks.RemoveCredential("cred-0") },
			check: func(t *testing.T, e *crashEnv, ks *Keystore) string {
				state := "old"
				if _, _, err := ks.GetCredential("cred-0"); errors.Is(err, ErrNotFound) {
					state = "new"
					delete(e.values, "cred-0")
				}
				checkRekey(t, e, ks)
				return state
			},
		},
	}
}

// The imports of the crash cases: each replaces items of the template and
// adds new ones.
var (
	importedCredentials = []ImportItem{
		{Name: "cred-1", Value: []byte("imported one")},
		{Name: "cred-3", Identity: "imported-id", Value: []byte("imported three")},
		{Name: "imp-a", Identity: "ia", Value: []byte("new a")},
		{Name: "imp-b", Identity: "ib", Value: []byte("new \x00 b")},
	}
	importedSecrets = []ImportItem{
		{Name: "sec-0", Value: []byte("imported zero")},
		{Name: "new-1", Value: []byte("new one")},
		{Name: "new-2", Value: []byte("")},
	}
)

// checkImported reports whether an import of items (into database db, or
// of credentials) is wholly there ("new") or wholly not ("old"): an item
// new and another old is a half-made batch and fails. It then checks every
// value as the state has it, values being the template's (e.values or
// e.secrets), which a new state updates.
func checkImported(t *testing.T, e *crashEnv, ks *Keystore, db string, items []ImportItem, values map[string][]byte) string {
	t.Helper()
	key := func(name string) string {
		if db == "" {
			return name
		}
		return db + "/" + name
	}
	get := func(name string) ([]byte, error) {
		if db == "" {
			_, v, err := ks.GetCredential(name)
			return v, err
		}
		return ks.GetSecret(db, name, e.openPassword(db))
	}
	state := ""
	for _, it := range items {
		got, err := get(it.Name)
		var s string
		switch {
		case err == nil && bytes.Equal(got, it.Value):
			s = "new"
		case err == nil && bytes.Equal(got, values[key(it.Name)]):
			s = "old"
		case errors.Is(err, ErrNotFound) && values[key(it.Name)] == nil:
			s = "old"
		default:
			t.Fatalf("%s: %q, %v: neither the old value nor the imported one", key(it.Name), got, err)
		}
		if state != "" && s != state {
			t.Fatalf("half an import: %s is in the %s state, an earlier item in the %s state", key(it.Name), s, state)
		}
		state = s
	}
	if state == "new" {
		for _, it := range items {
			values[key(it.Name)] = it.Value
		}
		if db == "" {
			cred, _, err := ks.GetCredential("cred-3")
			if err != nil || cred.Identity != "imported-id" {
				t.Fatalf("cred-3 after the import: %v, %v", cred, err)
			}
			if cred, _, err := ks.GetCredential("cred-1"); err != nil || cred.Identity != "usercred-1" {
				t.Fatalf("cred-1 after an import without an identity: %v, %v, want its identity kept", cred, err)
			}
		}
	}
	checkRekey(t, e, ks)
	return state
}

// checkValuesOnly checks credentials and payroll's secrets, for operations
// that change hr one step at a time.
func checkValuesOnly(t *testing.T, e *crashEnv, ks *Keystore) {
	t.Helper()
	hr := map[string][]byte{}
	for k, v := range e.secrets {
		if strings.HasPrefix(k, "hr/") {
			hr[k] = v
			delete(e.secrets, k)
		}
	}
	checkRekey(t, e, ks)
	for k, v := range hr {
		e.secrets[k] = v
	}
}

// prepareForeignCredential replaces cred-1's value with a copy encrypted by
// the earlier SMK, as if an old file had been put back: the current SMK
// cannot decrypt it, the old key's backup can.
func prepareForeignCredential(t *testing.T, e *crashEnv) {
	t.Helper()
	ks := e.open(t)
	oldKey, _, err := readKeyBackup(e.backupOld, protect.KindSMK, e.password)
	if err != nil {
		t.Fatal(err)
	}
	meta, _ := ks.loadCredentialMeta("cred-1")
	// The file it was, bound to the credential, as keytree wrote it under
	// that key.
	ct, err := protect.SealBound(oldKey, credentialBinding(ks.id, meta), e.values["cred-1"])
	if err != nil {
		t.Fatal(err)
	}
	p := ks.path(credentialsDir, formats.BlobName("cred-1", meta.Revision, e.oldGen))
	if err := os.WriteFile(p, ct, 0o600); err != nil {
		t.Fatal(err)
	}
	e.orphan = "cred-1"
}

// checkBackup: the keystore is untouched; the backup file is either absent
// or whole and restorable; a leftover temporary file may remain beside it.
func checkBackup(t *testing.T, e *crashEnv, ks *Keystore) string {
	checkRekey(t, e, ks)
	p := filepath.Join(e.root, "new-backup.age")
	if !exists(p) {
		return "old"
	}
	key, _, err := readKeyBackup(p, protect.KindSMK, e.password)
	if err != nil {
		t.Fatalf("a backup file exists but does not open: %v", err)
	}
	if key.Thumbprint() != e.oldThumb {
		t.Fatalf("backup holds %s, want %s", key.Thumbprint(), e.oldThumb)
	}
	return "new"
}

func TestCrashInjection(t *testing.T) {
	tmpl := newCrashTemplate(t)
	var mu sync.Mutex
	totalSteps, totalRuns := 0, 0
	// The operations run in parallel, each on keystores of its own with
	// its own fault hook; the group returns when all of them are done.
	t.Run("ops", func(t *testing.T) {
		for _, c := range crashCases() {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				runCrashCase(t, tmpl, c, func(steps, runs int) {
					mu.Lock()
					totalSteps += steps
					totalRuns += runs
					mu.Unlock()
				})
			})
		}
	})
	t.Logf("crash injection: %d operations, %d steps, %d interrupted runs", len(crashCases()), totalSteps, totalRuns)
}

// runCrashCase counts the steps of one operation, then runs it interrupted at
// each of them (see TestCrashInjection), and reports both counts to done.
func runCrashCase(t *testing.T, tmpl *crashEnv, c crashCase, done func(steps, runs int)) {
	base := tmpl.clone(t)
	if c.prepare != nil {
		c.prepare(t, base)
	}
	// Count the steps of an uninterrupted run.
	counter := &crashPoint{n: -1}
	e := base.clone(t)
	ks := e.open(t)
	ks.setFault(serialized(counter.hook))
	err := c.op(e, ks)
	if err != nil {
		t.Fatalf("uninterrupted run: %v", err)
	}
	if got := c.check(t, e, e.open(t)); got != "new" {
		t.Fatalf("uninterrupted run ends in the %s state", got)
	}
	states := map[string]int{}
	runs := 0
	for n := 1; n <= counter.seen; n += crashStride(counter.seen, n) {
		runs++
		e := base.clone(t)
		cp := &crashPoint{n: n}
		ks := e.open(t)
		ks.setFault(serialized(cp.hook))
		_ = c.op(e, ks) // it fails at the crash; what is on disk is checked below
		if !cp.crashed {
			t.Fatalf("step %d was never reached", n)
		}
		t.Run(fmt.Sprintf("step%02d", n), func(t *testing.T) {
			ks := e.open(t)
			state := c.check(t, e, ks)
			states[state]++
			if state == "old" && c.finish != nil {
				if err := c.finish(e, ks); err != nil {
					t.Fatalf("crashed at %s; running the operation again: %v", cp.at, err)
				}
			}
			// The next writer cleans up.
			if _, err := ks.SetCredential("after-crash", "x", []byte("x")); err != nil {
				t.Fatalf("crashed at %s; next command: %v", cp.at, err)
			}
			assertClean(t, ks)
		})
	}
	done(counter.seen, runs)
	t.Logf("%s: %d steps, %d interrupted once each: %d old state, %d new state", c.name, counter.seen, runs, states["old"], states["new"])
}

// The --force cases that go on without the current key, which keep that
// key's own encryptions (P7), and the recoveries that open them. hr's key
// opens by password only, so a mistyped one leaves --force without it.

var hrNewPassword = []byte("Database-Passw0rd-3")

// hrState reports "old" or "new" for hr's forced regenerate: the new state
// has hr's secrets orphaned and its old password encryption kept.
func hrState(t *testing.T, e *crashEnv, ks *Keystore, oldGen int) string {
	t.Helper()
	meta, err := ks.loadDatabaseMeta("hr")
	if err != nil {
		t.Fatal(err)
	}
	if meta.Generation == oldGen {
		return "old"
	}
	r, ok := formats.RetiredGeneration(meta.Retired, oldGen)
	if meta.Generation != oldGen+1 || !ok || len(r.Kept) != 1 || !exists(ks.dbPath("hr", formats.PasswordBlobName(r.Kept[0], oldGen))) {
		t.Fatalf("hr: generation %d, retired %+v: neither the old state nor the new one with its old password encryption kept", meta.Generation, meta.Retired)
	}
	return "new"
}

// checkHR reads every secret back, opening hr's key with open: hr's
// secrets must all be orphaned if orphaned is set, the others always read.
func (e *crashEnv) checkHR(t *testing.T, ks *Keystore, state string, open []byte, orphaned bool) {
	t.Helper()
	for path, want := range e.secrets {
		db, name, _ := formats.SplitSecretPath(path)
		pw := e.openPassword(db)
		if db == "hr" {
			pw = open
		}
		got, err := ks.GetSecret(db, name, pw)
		if db == "hr" && orphaned {
			if !errors.Is(err, ErrDecryption) {
				t.Fatalf("%s in the %s state: %v, want it orphaned", path, state, err)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s (%s state) = %q, %v; want %q", path, state, got, err, want)
		}
	}
}

func keptDMKRegenerate() crashCase {
	var oldGen int
	return crashCase{
		name: "dmk regenerate --force, mistyped open password",
		prepare: func(t *testing.T, e *crashEnv) {
			meta, _ := e.open(t).loadDatabaseMeta("hr")
			oldGen = meta.Generation
		},
		op: func(e *crashEnv, ks *Keystore) error {
			_, err := ks.RegenerateDMK("hr", hrNewPassword, DMKOptions{Force: true, OpenPassword: []byte("Mistyped-Passw0rd-1")})
			return err
		},
		check: func(t *testing.T, e *crashEnv, ks *Keystore) string {
			state := hrState(t, e, ks, oldGen)
			if state == "new" {
				e.checkHR(t, ks, state, hrNewPassword, true)
			} else {
				e.checkHR(t, ks, state, e.pw1, false)
			}
			return state
		},
	}
}

func keptDMKRecover() crashCase {
	var oldGen int
	return crashCase{
		name: "dmk recover, with a kept password encryption",
		prepare: func(t *testing.T, e *crashEnv) {
			ks := e.open(t)
			meta, _ := ks.loadDatabaseMeta("hr")
			if _, err := ks.RegenerateDMK("hr", hrNewPassword, DMKOptions{Force: true, OpenPassword: []byte("Mistyped-Passw0rd-1")}); err != nil {
				t.Fatal(err)
			}
			oldGen = meta.Generation + 1 // the generation recover moves from
		},
		op: func(e *crashEnv, ks *Keystore) error {
			_, err := ks.RecoverDMK("hr", "", e.pw1, DMKOptions{OpenPassword: hrNewPassword})
			return err
		},
		check: func(t *testing.T, e *crashEnv, ks *Keystore) string {
			meta, err := ks.loadDatabaseMeta("hr")
			if err != nil {
				t.Fatal(err)
			}
			state := "old"
			switch {
			case meta.Generation == oldGen+1 && len(meta.Retired) == 0:
				state = "new"
			case meta.Generation != oldGen || len(meta.Retired) != 1:
				t.Fatalf("hr: generation %d, retired %+v: neither state", meta.Generation, meta.Retired)
			}
			e.checkHR(t, ks, state, hrNewPassword, state == "old")
			return state
		},
		finish: func(e *crashEnv, ks *Keystore) error {
			_, err := ks.RecoverDMK("hr", "", e.pw1, DMKOptions{OpenPassword: hrNewPassword})
			return err
		},
	}
}

// smkKeptState reports "old" (15466: the protectors are the wrong ones) or
// "new": the older backup's key in place, every credential orphaned, and the
// encryptions of the key it replaced kept.
func smkKeptState(t *testing.T, e *crashEnv, ks *Keystore) string {
	t.Helper()
	meta, err := ks.loadSMKMeta()
	if err != nil {
		t.Fatal(err)
	}
	if meta.Generation == e.oldGen {
		wantSMKLost(t, ks)
		return "old"
	}
	r, ok := formats.RetiredGeneration(meta.Retired, e.oldGen)
	if meta.Generation != e.oldGen+1 || meta.Thumbprint != e.newThumb || !ok || len(r.Kept) != 2 {
		t.Fatalf("smk.toml: generation %d, %s, retired %+v: neither state", meta.Generation, meta.Thumbprint, meta.Retired)
	}
	for _, kind := range r.Kept {
		if !exists(ks.pathOf(protectorBlob(kind, e.oldGen))) {
			t.Fatalf("kept %s encryption of generation %d is gone", kind, e.oldGen)
		}
	}
	for name := range e.values {
		if _, _, err := ks.GetCredential(name); !errors.Is(err, ErrDecryption) {
			t.Fatalf("credential %s in the new state: %v, want it orphaned", name, err)
		}
	}
	return "new"
}

// useOtherProtectors points a copy at an account and a machine that open
// nothing of it: 15466.
func useOtherProtectors(t *testing.T, e *crashEnv) {
	e.dirs.Account += "-other"
	e.dirs.Machine += "-other"
	key, _, err := readKeyBackup(e.backupOld, protect.KindSMK, e.password)
	if err != nil {
		t.Fatal(err)
	}
	e.newThumb = key.Thumbprint()
}

func keptSMKRestore() crashCase {
	return crashCase{
		name:    "restore --force of an older backup, wrong protector directories",
		prepare: useOtherProtectors,
		op: func(e *crashEnv, ks *Keystore) error {
			_, err := ks.RestoreSMK(e.backupOld, e.password, SMKOptions{Force: true})
			return err
		},
		check: smkKeptState,
		finish: func(e *crashEnv, ks *Keystore) error {
			_, err := ks.RestoreSMK(e.backupOld, e.password, SMKOptions{Force: true})
			return err
		},
	}
}

func keptSMKRecover() crashCase {
	return crashCase{
		name: "recover, with the kept encryptions",
		prepare: func(t *testing.T, e *crashEnv) {
			useOtherProtectors(t, e)
			if _, err := e.open(t).RestoreSMK(e.backupOld, e.password, SMKOptions{Force: true}); err != nil {
				t.Fatal(err)
			}
			// Back to the right directories, taking the restored key
			// over from the wrong account.
			other := e.dirs.Account
			e.dirs.Account = strings.TrimSuffix(e.dirs.Account, "-other")
			e.dirs.Machine = strings.TrimSuffix(e.dirs.Machine, "-other")
			if _, err := e.open(t).AlterSMKOldAccount(other); err != nil {
				t.Fatal(err)
			}
			e.refresh(t)
			e.newThumb = e.oldThumb
		},
		op: func(e *crashEnv, ks *Keystore) error {
			_, err := ks.RecoverSMK("", nil, SMKOptions{})
			return err
		},
		check: func(t *testing.T, e *crashEnv, ks *Keystore) string {
			state := e.smkGeneration(t, ks)
			if state == "old" {
				for name := range e.values {
					if _, _, err := ks.GetCredential(name); !errors.Is(err, ErrDecryption) {
						t.Fatalf("credential %s in the old state: %v, want it still orphaned", name, err)
					}
				}
				return state
			}
			e.checkValues(t, ks, state)
			return state
		},
		finish: func(e *crashEnv, ks *Keystore) error {
			_, err := ks.RecoverSMK("", nil, SMKOptions{})
			return err
		},
	}
}

// wantSMKLost checks the old state of a --force run with the wrong
// protectors: the SMK still does not open (15466).
func wantSMKLost(t *testing.T, ks *Keystore) {
	t.Helper()
	if _, _, err := ks.GetCredential("cred-0"); !isMsg(err, MsgDecryption) {
		t.Fatalf("old state: got %v, want 15466", err)
	}
}

// crashStride is how far the harness moves to the next step to interrupt:
// 1, every step, except in the Windows build, which CI runs under Wine,
// where a keystore copy per step costs twenty times what it does on Linux:
// there every third step and the last, unless KEYTREE_RELIABILITY=full.
// Every step of every operation is interrupted on Linux and macOS.
func crashStride(steps, n int) int {
	if runtime.GOOS != "windows" || os.Getenv("KEYTREE_RELIABILITY") == "full" {
		return 1
	}
	if n+3 > steps && n < steps {
		return steps - n
	}
	return 3
}

// serialized makes a fault hook safe to call from the goroutines a rekey
// runs in parallel: its counters see every step, one at a time.
func serialized(hook func(kind, path string) error) func(kind, path string) error {
	var mu sync.Mutex
	return func(kind, path string) error {
		mu.Lock()
		defer mu.Unlock()
		return hook(kind, path)
	}
}

// TestCrashInjectionUpgrade stops keytree upgrade of a keystore of format 1
// at every step: each database's move and the SMK's are each atomic, so a
// crash leaves every value readable, the keystore of format 1 (some of its
// databases perhaps of format 2 already), and upgrade run again finishes.
func TestCrashInjectionUpgrade(t *testing.T) {
	t.Parallel()
	tmpl := newCrashTemplateOf(t, true)
	if m, err := tmpl.open(t).loadSMKMeta(); err != nil || authenticated(m) {
		t.Fatalf("the template is not of format 1: %+v, %v", m, err)
	}
	upgrade := func(e *crashEnv, ks *Keystore) error {
		_, err := ks.Upgrade(map[string][]byte{"hr": e.pw1})
		return err
	}
	c := crashCase{
		name: "upgrade",
		op:   upgrade,
		check: func(t *testing.T, e *crashEnv, ks *Keystore) string {
			checkCrashValues(t, e, ks)
			m, err := ks.loadSMKMeta()
			if err != nil {
				t.Fatal(err)
			}
			if !authenticated(m) {
				return "old"
			}
			for _, db := range []string{"payroll", "hr"} {
				if dm, err := ks.loadDatabaseMeta(db); err != nil || !dbAuthenticated(dm) {
					t.Fatalf("keystore of format 2 with database %s: %+v, %v", db, dm, err)
				}
			}
			return "new"
		},
		finish: func(e *crashEnv, ks *Keystore) error {
			if err := upgrade(e, ks); err != nil {
				return err
			}
			if m, err := ks.loadSMKMeta(); err != nil || !authenticated(m) {
				return fmt.Errorf("upgrade run again left smk.toml %+v, %v", m, err)
			}
			return nil
		},
	}
	runCrashCase(t, tmpl, c, func(steps, runs int) {})
}

// checkCrashValues reads every credential and secret of the template.
func checkCrashValues(t *testing.T, e *crashEnv, ks *Keystore) {
	t.Helper()
	for name, want := range e.values {
		if _, got, err := ks.GetCredential(name); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("credential %s = %q, %v", name, got, err)
		}
	}
	for path, want := range e.secrets {
		db, name, _ := formats.SplitSecretPath(path)
		if got, err := ks.GetSecret(db, name, e.openPassword(db)); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("secret %s = %q, %v", path, got, err)
		}
	}
}
