package keystore

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keytree-dev/keytree/formats"
)

// TestCorruptionSweep checks P11 file by file: it damages every file of a
// populated keystore and of its account and machine directories in turn
// (truncations and byte flips), runs every read operation against the
// damage, and checks that
//   - nothing panics;
//   - a get that succeeds returns the value stored, byte for byte;
//   - a listing that succeeds shows what it showed before the damage, unless
//     the damaged file is metadata that still parses (see sweepEdit);
//   - a read that fails says which file is damaged, or which item, but for
//     the cases keytree cannot tell (sweepMissing, sweepPassword).
//
// The keystore holds credentials (one empty; one binary, orphaned under an
// earlier SMK generation), a database opened by the SMK with two
// passwords, one opened by password only, and one with an orphaned secret
// and a password encryption kept from an earlier generation. Between cases
// the files are put back as they were (a read may heal an SMK encryption and
// append to the error log).
//
// The fast version damages each file five ways; KEYTREE_RELIABILITY=full
// flips every byte of every file, each one bit of it too, and cuts every
// file at every length. docs/reliability.md reports the figures this test
// logs.
func TestCorruptionSweep(t *testing.T) {
	t.Parallel()
	full := os.Getenv("KEYTREE_RELIABILITY") == "full"
	e := newSweepKeystore(t)
	pristine := readTree(t, e.root)
	reads := sweepReads(e)

	// What every read returns on the undamaged keystore.
	base := map[string]sweepResult{}
	for _, r := range reads {
		res := runSweepRead(e.opts(), r)
		switch {
		case res.panic != "":
			t.Fatalf("%s on the undamaged keystore: %s", r.name, res.panic)
		case r.orphan && res.err == nil:
			t.Fatalf("%s on the undamaged keystore: read an orphan", r.name)
		case r.orphan:
		case res.err != nil || (r.want != nil && res.out != string(r.want)):
			t.Fatalf("%s on the undamaged keystore: %q, %v", r.name, res.out, res.err)
		}
		base[r.name] = res
	}
	if err := restoreTree(e.root, pristine); err != nil {
		t.Fatal(err)
	}

	// Every file of the keystore and of its protector directories, not the
	// backups and the export beside them. KEYTREE_SWEEP_FILES, a regular
	// expression, narrows the sweep to the files whose paths match.
	only := regexp.MustCompile(os.Getenv("KEYTREE_SWEEP_FILES"))
	var files []string
	for p, f := range pristine.files {
		p = filepath.ToSlash(p)
		top, _, _ := strings.Cut(p, "/")
		if len(f.data) > 0 && only.MatchString(p) &&
			(top == filepath.Base(e.dirs.Keystore) || top == filepath.Base(e.dirs.Account) || top == filepath.Base(e.dirs.Machine)) {
			files = append(files, p)
		}
	}
	sort.Strings(files)
	type sweepCase struct {
		file string
		m    sweepMutation
	}
	cases := make(chan sweepCase)
	go func() {
		defer close(cases)
		for _, p := range files {
			for _, m := range sweepMutations(pristine.files[filepath.FromSlash(p)].data, full) {
				cases <- sweepCase{p, m}
			}
		}
	}()

	// The full sweep runs on as many copies of the keystore as there are
	// processors; the fast one on one.
	workers := 1
	if full {
		workers = runtime.GOMAXPROCS(0)
	}
	copies := []*sweepKeystore{e}
	for len(copies) < workers {
		copies = append(copies, &sweepKeystore{crashEnv: e.clone(t), legacyPassword: e.legacyPassword})
	}
	start := time.Now()
	var (
		mu                            sync.Mutex
		nCases, readsRun, failedReads int
		// Outcomes by kind, then by file and read, with one example each.
		outcomes = map[string]map[string]*sweepOutcome{}
	)
	record := func(kind, key, example string) {
		mu.Lock()
		defer mu.Unlock()
		if outcomes[kind] == nil {
			outcomes[kind] = map[string]*sweepOutcome{}
		}
		o := outcomes[kind][key]
		if o == nil {
			o = &sweepOutcome{example: example}
			outcomes[kind][key] = o
		}
		o.n++
	}
	var wg sync.WaitGroup
	var broken atomic.Bool // a copy could not be damaged or put back: drain the cases
	for _, work := range copies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range cases {
				if broken.Load() {
					continue
				}
				native := filepath.FromSlash(c.file)
				if err := os.WriteFile(filepath.Join(work.root, native), c.m.data, pristine.files[native].mode); err != nil {
					t.Error(err)
					broken.Store(true)
					continue
				}
				nReads, nFailed := 0, 0
				for _, r := range reads {
					if r.when != nil && !r.when(c.file) {
						continue
					}
					nReads++
					res := runSweepRead(work.opts(), r)
					key := c.file + ": " + r.name
					b := base[r.name]
					switch {
					case res.panic != "":
						record(sweepPanic, key, c.m.name+": "+res.panic)
					case res.err == nil && r.want != nil && res.out != string(r.want):
						record(sweepWrong, key, fmt.Sprintf("%s: %q, want %q", c.m.name, res.out, r.want))
					case res.err == nil && r.want == nil && (res.out != b.out || res.detail != b.detail):
						// Listings show what metadata says: an edit of a
						// metadata file that still parses shows there;
						// damage to any other file must not.
						kind := sweepWrong
						if strings.HasSuffix(c.file, ".toml") {
							kind = sweepEdit
						}
						record(kind, key, fmt.Sprintf("%s:\n%s\n%s\nwant\n%s\n%s", c.m.name, res.out, res.detail, b.out, b.detail))
					case res.err != nil && b.err == nil:
						nFailed++
						kind := classifyError(res.err, c.file, r.item)
						if kind != sweepNamed {
							record(kind, key+": "+strings.ReplaceAll(messageOf(res.err), work.root, "$ROOT"), c.m.name)
						}
					}
				}
				if err := restoreTree(work.root, pristine); err != nil {
					t.Error(err)
					broken.Store(true)
				}
				mu.Lock()
				nCases++
				readsRun += nReads
				failedReads += nFailed
				mu.Unlock()
			}
		}()
	}
	wg.Wait()

	count := func(kind string) int {
		n := 0
		for _, o := range outcomes[kind] {
			n += o.n
		}
		return n
	}
	for _, kind := range []string{sweepPanic, sweepWrong, sweepUnnamed, sweepEdit, sweepMissing, sweepPassword} {
		var keys []string
		for k := range outcomes[kind] {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			o := outcomes[kind][k]
			msg := fmt.Sprintf("%s (%d times): %s\n    first: %s", kind, o.n, k, o.example)
			if kind == sweepPanic || kind == sweepWrong || kind == sweepUnnamed {
				t.Error(msg)
			} else if testing.Verbose() {
				t.Log(msg)
			}
		}
	}
	t.Logf("corruption sweep: %d files, %d damaged copies, %d reads, %d of them failed where the undamaged keystore reads: "+
		"%d panics, %d wrong answers, %d errors naming neither file nor item; accepted: %d metadata edits believed, "+
		"%d metadata edits that name another file (reported missing), %d damaged password encryptions that read as a wrong password; in %s",
		len(files), nCases, readsRun, failedReads, count(sweepPanic), count(sweepWrong), count(sweepUnnamed),
		count(sweepEdit), count(sweepMissing), count(sweepPassword), time.Since(start).Round(time.Second))
}

// What a read of a damaged copy did, besides what the undamaged keystore
// does or a failure that names the damage.
const (
	sweepPanic   = "panic"
	sweepWrong   = "wrong answer"
	sweepUnnamed = "error naming neither the damaged file nor the item"
	sweepNamed   = "named"
	// Accepted: format 1 does not authenticate metadata (P17 will), so a
	// metadata file that still parses after the damage is believed: a
	// listing shows the edit (another thumbprint, generation, identity, a
	// password encryption cut off the end), a password whose entry was cut
	// off no longer opens (15313), or the value or encryption file the edit
	// now names is reported missing, under that file's name.
	sweepEdit    = "metadata edit believed"
	sweepMissing = "metadata edit that names another file, reported missing"
	// Accepted: a flip in a password encryption's salt or wrapped key is,
	// to age, a wrong password (15313).
	sweepPassword = "damaged password encryption read as a wrong password"
)

type sweepOutcome struct {
	n       int
	example string
}

// classifyError says whether an error names the damage, or is one of the
// accepted cases where keytree cannot know it.
func classifyError(err error, file, item string) string {
	msg := messageOf(err)
	base := filepath.Base(file)
	switch {
	case strings.Contains(msg, base), item != "" && strings.Contains(msg, "'"+item+"'"):
		return sweepNamed
	case strings.HasSuffix(base, ".toml") && (strings.Contains(msg, "is missing") || strings.Contains(msg, "does not exist")):
		return sweepMissing
	case strings.HasPrefix(base, "password.") && isMsg(err, MsgNotEncryptedBy):
		return sweepPassword
	case base == "database.toml" && isMsg(err, MsgNotEncryptedBy):
		return sweepEdit
	}
	return sweepUnnamed
}

// sweepKeystore is the keystore the sweep damages, and what it holds.
type sweepKeystore struct {
	*crashEnv
	legacyPassword []byte
}

// newSweepKeystore builds the crash tests' template (credentials, databases
// payroll and hr) and adds what a keystore accumulates over time: a
// credential orphaned under an earlier SMK generation, and a database whose
// only secret is orphaned, with the password encryption of its earlier key
// kept by a --force regenerate.
func newSweepKeystore(t *testing.T) *sweepKeystore {
	t.Helper()
	e := &sweepKeystore{crashEnv: newCrashTemplate(t), legacyPassword: []byte("Legacy-Passw0rd-4")}
	prepareForeignCredential(t, e.crashEnv)
	ks := e.open(t)
	if _, err := ks.RegenerateSMK(SMKOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.CreateDMK("legacy", e.pw1, DMKOptions{NoSMKEncryption: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.SetSecret("legacy", "old", []byte("legacy value"), e.pw1); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.RegenerateDMK("legacy", e.legacyPassword, DMKOptions{Force: true, OpenPassword: []byte("Mistyped-Passw0rd-1")}); err != nil {
		t.Fatal(err)
	}
	meta, err := ks.loadDatabaseMeta("legacy")
	if err != nil || len(meta.Retired) != 1 {
		t.Fatalf("legacy: retired %+v, %v; want one kept generation", meta.Retired, err)
	}
	wantOrphans(t, ks, "credential/cred-1", "secret/legacy/old")
	return e
}

// sweepRead is one read operation; want is the value a get must return.
type sweepRead struct {
	name string
	// when tells whether to run it on a copy with this file damaged
	// (slash-separated); nil: always.
	when   func(file string) bool
	item   string // the credential, secret or database it reads, if one
	want   []byte
	orphan bool // a get of an orphan: it fails on the undamaged keystore
	// run returns a get's value, or a listing's items and their detail.
	run func(ks *Keystore) (out, detail string, err error)
}

// sweepListing is a listing's result as a sweepRead's: each item's line
// (from line) in out and in detail, and the listing's error.
func sweepListing[T any](items []T, err error, line func(T) (out, detail string)) (string, string, error) {
	var out, detail []string
	for _, it := range items {
		o, d := line(it)
		out = append(out, o)
		detail = append(detail, d)
	}
	return strings.Join(out, "\n"), strings.Join(detail, "\n"), err
}

func sweepReads(e *sweepKeystore) []sweepRead {
	var reads []sweepRead
	// A listing returns what must not change (the items, orphaned or not)
	// and, as detail, what metadata says of them: format 1 authenticates no
	// metadata, so an edit that stays valid shows there.
	reads = append(reads,
		sweepRead{name: "status", run: func(ks *Keystore) (string, string, error) {
			st, err := ks.Status()
			if err != nil {
				return "", "", err
			}
			var orphans, detail []string
			for _, o := range st.Orphans {
				orphans = append(orphans, o.Item)
				detail = append(detail, fmt.Sprintf("%s %d %s", o.Item, o.Generation, o.Thumbprint))
			}
			return fmt.Sprintf("%d credentials, %d databases, %d secrets, orphans %v", st.Credentials, st.Databases, st.Secrets, orphans),
				fmt.Sprintf("smk %s gen %d, orphans %v", st.SMK.Thumbprint, st.SMK.Generation, detail), nil
		}},
		sweepRead{name: "credential list", run: func(ks *Keystore) (string, string, error) {
			list, err := ks.ListCredentials()
			return sweepListing(list, err, func(c *Credential) (string, string) {
				return fmt.Sprintf("%s orphaned=%t", c.Name, c.Orphan != nil), fmt.Sprintf("%s %s %v", c.Name, c.Identity, c.Orphan)
			})
		}},
		sweepRead{name: "db list", run: func(ks *Keystore) (string, string, error) {
			list, err := ks.ListDatabases()
			return sweepListing(list, err, func(d *DatabaseInfo) (string, string) {
				return fmt.Sprintf("%s secrets=%d", d.Name, d.Secrets),
					fmt.Sprintf("%s %s %s gen %d smk=%t passwords=%d", d.Name, d.Thumbprint, d.Algorithm, d.Generation, d.SMKEncryption, d.Passwords)
			})
		}},
		sweepRead{name: "secret list", run: func(ks *Keystore) (string, string, error) {
			list, err := ks.ListSecrets("")
			return sweepListing(list, err, func(s *Secret) (string, string) {
				return fmt.Sprintf("%s/%s orphaned=%t", s.Database, s.Name, s.Orphan != nil), fmt.Sprintf("%s/%s %v", s.Database, s.Name, s.Orphan)
			})
		}},
		sweepRead{name: "key-encryptions", run: func(ks *Keystore) (string, string, error) {
			rows, err := ks.KeyEncryptions()
			return sweepListing(rows, err, func(r KeyEncryption) (string, string) {
				state := r.State
				if r.Protector == "account" || r.Protector == "machine" {
					state = "" // valid, or invalid until the next command re-creates it
				}
				return fmt.Sprintf("%s %s %s %s", r.Key, r.CryptType, r.Protector, state), fmt.Sprintf("%s %s", r.Key, r.Thumbprint)
			})
		}},
		sweepRead{name: "smk verify", run: func(ks *Keystore) (string, string, error) {
			info, err := ks.VerifySMK()
			if err != nil {
				return "", "", err
			}
			return "", fmt.Sprintf("%s %s gen %d", info.Thumbprint, info.Algorithm, info.Generation), nil
		}},
		sweepRead{name: "errorlog", run: func(ks *Keystore) (string, string, error) {
			_, err := ks.ErrorLog()
			return "", "", err
		}},
	)
	var creds []string
	for name := range e.values {
		creds = append(creds, name)
	}
	sort.Strings(creds)
	for _, name := range creds {
		want := e.values[name]
		if want == nil {
			want = []byte{}
		}
		reads = append(reads, sweepRead{name: "credential get " + name, item: name, want: want, orphan: name == e.orphan,
			when: sweepWhen(name == "cred-0" || name == e.orphan, "/credentials/"+name+"."),
			run: func(ks *Keystore) (string, string, error) {
				_, v, err := ks.GetCredential(name)
				return string(v), "", err
			}})
	}
	secrets := map[string][]byte{"legacy/old": []byte("legacy value")}
	for p, v := range e.secrets {
		secrets[p] = v
	}
	var paths []string
	for p := range secrets {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		db, name, _ := formats.SplitSecretPath(p)
		pw := e.openPassword(db)
		if db == "legacy" {
			pw = e.legacyPassword
		}
		want := secrets[p]
		if want == nil {
			want = []byte{}
		}
		// Every case reads one secret of each database by the SMK, and the
		// orphan; the other secrets only when their own files are damaged.
		// A read by password (a scrypt) runs when a file of its database or
		// keystore.toml is damaged.
		own := sweepWhen(false, "/databases/"+db+"/secrets/"+name+".")
		byPassword := own
		if name == "sec-0" {
			byPassword = sweepWhen(false, "/databases/"+db+"/", "/keystore.toml")
		}
		when := sweepWhen(name == "sec-0" || db == "legacy", "/databases/"+db+"/secrets/"+name+".")
		if db == "hr" {
			when = byPassword
		}
		reads = append(reads, sweepRead{name: "secret get " + p, item: p, want: want, orphan: p == "legacy/old", when: when,
			run: func(ks *Keystore) (string, string, error) {
				v, err := ks.GetSecret(db, name, pw)
				return string(v), "", err
			}})
		if db == "payroll" {
			// payroll's key also opens by its second password.
			reads = append(reads, sweepRead{name: "secret get " + p + " by password", item: p, want: want, when: byPassword,
				run: func(ks *Keystore) (string, string, error) {
					v, err := ks.GetSecret(db, name, e.pw2)
					return string(v), "", err
				}})
		}
	}
	return reads
}

// sweepWhen runs a read always, or when the damaged file's path contains one
// of parts.
func sweepWhen(always bool, parts ...string) func(string) bool {
	if always {
		return nil
	}
	return func(file string) bool {
		for _, p := range parts {
			if strings.Contains(file, p) {
				return true
			}
		}
		return false
	}
}

type sweepResult struct {
	out, detail string
	err         error
	panic       string
}

// runSweepRead opens the keystore and runs one read, catching a panic.
func runSweepRead(opts Options, r sweepRead) (res sweepResult) {
	defer func() {
		if p := recover(); p != nil {
			res.panic = fmt.Sprintf("%v\n%s", p, debug.Stack())
		}
	}()
	ks, err := Open(opts)
	if err != nil {
		return sweepResult{err: err}
	}
	res.out, res.detail, res.err = r.run(ks)
	return res
}

// messageOf is everything the CLI prints of an error, with the remedy as
// keystore gives it (the CLI words it).
func messageOf(err error) string {
	var ke *Error
	if !errors.As(err, &ke) {
		return err.Error()
	}
	parts := append([]string{err.Error()}, ke.Detail...)
	if ke.Hint != "" {
		parts = append(parts, "hint: "+ke.Hint)
	}
	if ke.Remedy != (Remedy{}) {
		parts = append(parts, fmt.Sprintf("remedy: %+v", ke.Remedy))
	}
	return strings.Join(parts, " / ")
}

type sweepMutation struct {
	name string
	data []byte
}

// sweepMutations are the damaged versions of a file: the fast set (cut to
// nothing and to half, the first, middle and last byte flipped), or with
// full every byte flipped (all bits, then the lowest one) and every
// truncation. Files over 4 KiB get 512 random offsets instead of all.
func sweepMutations(data []byte, full bool) []sweepMutation {
	n := len(data)
	flip := func(off int, mask byte) sweepMutation {
		d := bytes.Clone(data)
		d[off] ^= mask
		return sweepMutation{fmt.Sprintf("byte %d ^ %#02x", off, mask), d}
	}
	cut := func(size int) sweepMutation {
		return sweepMutation{fmt.Sprintf("truncated to %d of %d bytes", size, n), bytes.Clone(data[:size])}
	}
	switch {
	case !full && runtime.GOOS == "windows":
		// Two of the five: file operations under Wine, where the Windows
		// build's tests run, are slow, and the other three are the same
		// code on every platform.
		return []sweepMutation{cut(n / 2), flip(n/2, 0xff)}
	case !full:
		return []sweepMutation{cut(0), cut(n / 2), flip(0, 0xff), flip(n/2, 0xff), flip(n-1, 0xff)}
	}
	offsets := make([]int, n)
	for i := range offsets {
		offsets[i] = i
	}
	if n > 4096 {
		r := rand.New(rand.NewPCG(uint64(n), 1))
		offsets = offsets[:0]
		for i := 0; i < 512; i++ {
			offsets = append(offsets, r.IntN(n))
		}
	}
	var ms []sweepMutation
	for _, off := range offsets {
		ms = append(ms, flip(off, 0xff), flip(off, 0x01), cut(off))
	}
	return ms
}

// A tree of files, to put a working copy back as it was.
type treeFile struct {
	data []byte // nil for a directory
	mode fs.FileMode
}

type tree struct{ files map[string]treeFile }

func readTree(t *testing.T, root string) *tree {
	t.Helper()
	tr := &tree{files: map[string]treeFile{}}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		r, _ := filepath.Rel(root, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		f := treeFile{mode: info.Mode().Perm()}
		if !d.IsDir() {
			if f.data, err = os.ReadFile(p); err != nil {
				return err
			}
			if f.data == nil {
				f.data = []byte{}
			}
		}
		tr.files[r] = f
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// restoreTree makes root hold exactly the files of tr again, writing only
// what differs.
func restoreTree(root string, tr *tree) error {
	var extra []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		r, _ := filepath.Rel(root, p)
		want, ok := tr.files[r]
		if !ok {
			extra = append(extra, p)
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(data, want.data) {
			return os.WriteFile(p, want.data, want.mode)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, p := range extra {
		if err := os.RemoveAll(p); err != nil && runtime.GOOS != "windows" {
			return err
		}
	}
	var names []string
	for r := range tr.files {
		names = append(names, r)
	}
	sort.Strings(names) // directories before what they hold
	for _, r := range names {
		f := tr.files[r]
		p := filepath.Join(root, r)
		if _, err := os.Lstat(p); err == nil {
			continue
		}
		if f.data == nil {
			err = os.MkdirAll(p, f.mode)
		} else {
			err = os.WriteFile(p, f.data, f.mode)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
