package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keytree-dev/keytree/keystore"
)

// TestConcurrentProcesses checks P10 with real processes: writers running
// every kind of write command, readers running every read command, all at
// once on one keystore, some writers killed with SIGKILL at random moments.
//
// Each writer owns its names (three credentials, three secrets in its own
// database, that database's master key, and the databases it creates), so
// the writes to one name happen one after the other and "the last value
// written" is well defined; smk regenerate, which every writer runs now and
// then, changes no name. The test records, for every name, each write that
// took effect with the interval of its process; a killed writer's write took
// effect or not, and the writer finds out which through the Go API before it
// goes on. Every value a reader saw is then checked against those intervals:
// it must be the value of the last write that ended before the read started,
// or of a write that overlapped the read (a linearizability check per name).
// Afterwards one more writer runs, status must be clean, no file may be left
// over, and every name must read back its last written value.
//
// docs/reliability.md reports the figures this test logs. The fast version
// runs for 10 seconds; KEYTREE_RELIABILITY=full runs more processes for
// four minutes.
func TestConcurrentProcesses(t *testing.T) {
	skipInShortMode(t, "runs many processes for seconds")
	writers, readers, duration := 6, 3, 10*time.Second
	if reliabilityFull() {
		writers, readers, duration = 10, 6, 4*time.Minute
	}
	// A quarter of the writers are sent SIGKILL, after a random delay up to
	// the average time a write has taken so far: some die before they start,
	// some while they wait for the lock, some during or after their commit,
	// and some finish first.
	const killRate = 0.25
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)

	k := newProcKeystore(t, "keytree-concurrency-")
	// Writers queue behind each other and behind readers: wait, do not fail.
	k.env = append(k.env, "KEYTREE_LOCK_TIMEOUT=5m")
	ks, err := k.open()
	if err != nil {
		t.Fatal(err)
	}
	st, err := ks.Status()
	if err != nil {
		t.Fatal(err)
	}
	firstGeneration := st.SMK.Generation

	h := &history{regs: map[string]*register{}}
	c := &concRun{t: t, k: k, h: h, stats: map[string]int{}}
	c.avgWrite.Store(int64(200 * time.Millisecond))
	ws := make([]*concWriter, writers)
	for i := range ws {
		w := &concWriter{c: c, id: i, rng: rand.New(rand.NewPCG(seed, uint64(i))),
			creds: map[string]regState{}, secrets: map[string]regState{}, pwFiles: map[string]string{}}
		w.db = &concDB{name: fmt.Sprintf("w%d", i), gen: 1, smk: true, passwords: []string{w.newPassword(t)}}
		if _, err := ks.CreateDMK(w.db.name, []byte(w.db.passwords[0]), keystore.DMKOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := ks.SetSecret(w.db.name, "probe", []byte("probe"), nil); err != nil {
			t.Fatal(err)
		}
		h.define("dmk/"+w.db.name, w.db.state())
		for j := 0; j < concNames; j++ {
			h.define(credReg(w.credName(j)), regState{})
			h.define(secretReg(w.db.name, w.secretName(j)), regState{})
		}
		ws[i] = w
	}

	deadline := time.Now().Add(duration)
	start := time.Now()
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && !c.failed.Load() {
				kill := time.Duration(-1)
				if w.rng.Float64() < killRate {
					kill = time.Duration(w.rng.Int64N(c.avgWrite.Load() + 1))
				}
				w.step(kill)
			}
		}()
	}
	for i := 0; i < readers; i++ {
		wg.Add(1)
		rng := rand.New(rand.NewPCG(seed, uint64(1000+i)))
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && !c.failed.Load() {
				c.read(rng, ws)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if c.failed.Load() {
		t.FailNow()
	}

	// Every value a reader saw was right when it saw it.
	checked, bad := h.check()
	for i, b := range bad {
		if i == 20 {
			t.Errorf("... and %d more", len(bad)-20)
			break
		}
		t.Error(b)
	}

	// One more writer, then status is clean and nothing is left over.
	if r := k.run([]byte("final"), -1, "credential", "set", "final", "--identity", "svc"); r.code != 0 {
		t.Fatalf("the writer after the run: exit %d\n%s", r.code, r.stderr)
	}
	r := k.run(nil, -1, "status")
	if r.code != 0 || len(r.stderr) > 0 {
		t.Fatalf("status after the run: exit %d\n%s", r.code, r.stderr)
	}
	for _, re := range []string{`(?m)^orphaned: +0$`, `(?m)^  account encryption \(0x01\): +valid$`, `(?m)^  machine encryption \(0x03\): +valid$`} {
		if !regexp.MustCompile(re).Match(r.stdout) {
			t.Errorf("status after the run does not match %s:\n%s", re, r.stdout)
		}
	}
	c.checkFiles(ws)

	// Every name reads back the last value written.
	ks, err = k.open()
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		w.checkFinal(ks)
	}
	st, err = ks.Status()
	if err != nil {
		t.Fatal(err)
	}
	regens := st.SMK.Generation - firstGeneration
	if regens < c.stats["smk regenerate"] || regens > c.stats["smk regenerate"]+c.stats["smk regenerate killed"] {
		t.Errorf("smk regenerate: %d generations for %d successful and %d killed runs", regens,
			c.stats["smk regenerate"], c.stats["smk regenerate killed"])
	}

	var kinds []string
	writes, kills, reads := 0, 0, 0
	for kind, n := range c.stats {
		kinds = append(kinds, fmt.Sprintf("%s %d", kind, n))
		switch {
		case strings.HasPrefix(kind, "read "):
			reads += n
		case strings.HasSuffix(kind, " killed"):
			kills += n
		default:
			writes += n
		}
	}
	sort.Strings(kinds)
	t.Logf("operations: %s", strings.Join(kinds, ", "))
	t.Logf("writes took %s on average at the end, %s at most; %d took longer than the default lock timeout (%s)",
		time.Duration(c.avgWrite.Load()).Round(time.Millisecond), time.Duration(c.maxWrite.Load()).Round(time.Millisecond),
		c.slowWrites.Load(), keystore.DefaultLockTimeout)
	t.Logf("%d writers, %d readers for %s: %d processes (%d writes that completed, %d writers killed, %d of them after their write took effect; %d reads), at most %d at once, %d observations checked, %d smk generations",
		writers, readers, elapsed.Round(time.Second), writes+kills+reads, writes, kills, c.killedCommitted.Load(), reads,
		k.maxRunning.Load(), checked, regens)
}

// concNames is how many credentials and secrets each writer owns.
const concNames = 3

func credReg(name string) string       { return "credential/" + name }
func secretReg(db, name string) string { return "secret/" + db + "/" + name }

// regState is the state of one name: absent, or present with a value.
type regState struct {
	present bool
	value   string
}

func (s regState) String() string {
	if !s.present {
		return "absent"
	}
	return fmt.Sprintf("%q", s.value)
}

// regWrite is a write that took effect, with the interval of its process.
type regWrite struct {
	start, end time.Time
	state      regState
}

type register struct {
	initial regState
	writes  []regWrite // in order: one writer owns the name
}

// observation is what a reader saw of one name.
type observation struct {
	reg        string
	start, end time.Time
	what       string
	match      func(regState) bool
}

type history struct {
	mu   sync.Mutex
	regs map[string]*register
	obs  []observation
}

func (h *history) define(reg string, initial regState) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.regs[reg] = &register{initial: initial}
}

func (h *history) commit(reg string, start, end time.Time, s regState) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.regs[reg]
	if r == nil {
		r = &register{}
		h.regs[reg] = r
	}
	r.writes = append(r.writes, regWrite{start, end, s})
}

func (h *history) observe(o observation) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.obs = append(h.obs, o)
}

// check tests every observation: what a read saw must be the state after the
// last write that ended before the read started, or after a write that
// started before the read ended.
func (h *history) check() (checked int, bad []string) {
	for _, o := range h.obs {
		checked++
		r := h.regs[o.reg]
		if r == nil {
			r = &register{} // a database no writer created
		}
		last := -1
		for j, w := range r.writes {
			if w.end.Before(o.start) {
				last = j
			}
		}
		allowed := []regState{r.initial}
		if last >= 0 {
			allowed = []regState{r.writes[last].state}
		}
		for j := last + 1; j < len(r.writes) && r.writes[j].start.Before(o.end); j++ {
			allowed = append(allowed, r.writes[j].state)
		}
		ok := false
		for _, s := range allowed {
			if o.match(s) {
				ok = true
				break
			}
		}
		if !ok {
			bad = append(bad, fmt.Sprintf("%s: %s; possible states then: %v", o.reg, o.what, allowed))
		}
	}
	return checked, bad
}

// concRun is what the writers and readers share.
type concRun struct {
	t               *testing.T
	k               *procKeystore
	h               *history
	failed          atomic.Bool
	killedCommitted atomic.Int64
	avgWrite        atomic.Int64 // nanoseconds, a moving average of completed writes
	// The longest completed write, and how many took longer than keytree's
	// default lock timeout (they waited for readers and other writers).
	maxWrite, slowWrites atomic.Int64
	mu                   sync.Mutex
	stats                map[string]int
}

func (c *concRun) fail(format string, args ...any) {
	c.t.Errorf(format, args...)
	c.failed.Store(true)
}

func (c *concRun) count(kind string) {
	c.mu.Lock()
	c.stats[kind]++
	c.mu.Unlock()
}

// checkOutput fails on a crash trace in a process's standard error.
func (c *concRun) checkOutput(r procResult) {
	if crashOutput.Match(r.stderr) {
		c.fail("keytree %s: crash output:\n%s", strings.Join(r.args, " "), r.stderr)
	}
}

// concDB is a database as its owner knows it.
type concDB struct {
	name      string
	gen       int
	smk       bool
	passwords []string // the current password encryptions
	dropped   []string // passwords that no longer open the key
}

func (d *concDB) clone() *concDB {
	cp := *d
	cp.passwords = append([]string(nil), d.passwords...)
	cp.dropped = append([]string(nil), d.dropped...)
	return &cp
}

func (d *concDB) state() regState {
	return regState{true, fmt.Sprintf("generation=%d smk=%t passwords=%d", d.gen, d.smk, len(d.passwords))}
}

type concWriter struct {
	c       *concRun
	id      int
	rng     *rand.Rand
	seq     int
	creds   map[string]regState
	secrets map[string]regState
	db      *concDB
	created []*concDB
	pwFiles map[string]string
}

func (w *concWriter) credName(j int) string   { return fmt.Sprintf("w%d-c%d", w.id, j) }
func (w *concWriter) secretName(j int) string { return fmt.Sprintf("s%d", j) }

func (w *concWriter) next() int { w.seq++; return w.seq }

// newPassword makes a password that passes the policy, and its file.
func (w *concWriter) newPassword(t testing.TB) string {
	pw := fmt.Sprintf("Writer%d-Passw0rd-%d", w.id, w.next())
	f := filepath.Join(w.c.k.root, "pw-"+pw)
	if err := os.WriteFile(f, []byte(pw), 0o600); err != nil {
		t.Fatal(err)
	}
	w.pwFiles[pw] = f
	return pw
}

// writeOp is one write command: its arguments, what it changes when it
// takes effect, and how to tell through the Go API whether a killed one did.
type writeOp struct {
	kind      string
	args      []string
	stdin     []byte
	apply     func(start, end time.Time)
	committed func(ks *keystore.Keystore) (bool, error) // nil: cannot tell (smk regenerate)
}

// readState is the state a read through the Go API found.
func readState(got []byte, err error) (regState, error) {
	switch {
	case err == nil:
		return regState{true, string(got)}, nil
	case errors.Is(err, keystore.ErrNotFound):
		return regState{}, nil
	}
	return regState{}, err
}

// resolve tells from what a read returned whether the state is old's or
// new's, and fails on anything else.
func resolve(old, new regState, got []byte, err error) (bool, error) {
	now, err := readState(got, err)
	if err != nil {
		return false, err
	}
	switch now {
	case new:
		return true, nil
	case old:
		return false, nil
	}
	return false, fmt.Errorf("neither the old state (%v) nor the new one (%v): %v", old, new, now)
}

func dbInfo(ks *keystore.Keystore, name string) (*keystore.DatabaseInfo, error) {
	dbs, err := ks.ListDatabases()
	if err != nil {
		return nil, err
	}
	for _, d := range dbs {
		if d.Name == name {
			return d, nil
		}
	}
	return nil, nil
}

// dbChanged tells whether a database's metadata is old's or new's.
func dbChanged(ks *keystore.Keystore, db string, old, new regState) (bool, error) {
	d, err := dbInfo(ks, db)
	if err != nil || d == nil {
		return false, fmt.Errorf("database %s: %v", db, err)
	}
	now := (&concDB{gen: d.Generation, smk: d.SMKEncryption, passwords: make([]string, d.Passwords)}).state()
	switch now {
	case new:
		return true, nil
	case old:
		return false, nil
	}
	return false, fmt.Errorf("database %s: neither the old state (%v) nor the new one (%v): %v", db, old, new, now)
}

// openFlag is what opens the writer's database master key: nothing while it
// is encrypted by the SMK, else one of its passwords.
func (w *concWriter) openFlag() []string {
	if w.db.smk {
		return nil
	}
	return []string{"--open-password-file", w.pwFiles[w.db.passwords[0]]}
}

// pick chooses the next write at random among those that make sense now.
func (w *concWriter) pick() writeOp {
	type choice struct {
		weight int
		op     func() writeOp
	}
	var present, presentSecrets []int
	for j := 0; j < concNames; j++ {
		if w.creds[w.credName(j)].present {
			present = append(present, j)
		}
		if w.secrets[w.secretName(j)].present {
			presentSecrets = append(presentSecrets, j)
		}
	}
	h, db := w.c.h, w.db
	// dbWrite is a write to the writer's database master key; change makes
	// its effect on a description of the database.
	dbWrite := func(kind string, args []string, change func(d *concDB)) writeOp {
		next := db.clone()
		change(next)
		old, new := db.state(), next.state()
		return writeOp{kind: kind, args: args,
			apply: func(start, end time.Time) { change(db); h.commit("dmk/"+db.name, start, end, db.state()) },
			committed: func(ks *keystore.Keystore) (bool, error) {
				return dbChanged(ks, db.name, old, new)
			}}
	}
	choices := []choice{
		{20, func() writeOp {
			name := w.credName(w.rng.IntN(concNames))
			s := regState{true, fmt.Sprintf("credential %s #%d \x00\xff", name, w.next())}
			old := w.creds[name]
			return writeOp{kind: "credential set", args: []string{"credential", "set", name, "--identity", "svc"}, stdin: []byte(s.value),
				apply: func(start, end time.Time) { w.creds[name] = s; h.commit(credReg(name), start, end, s) },
				committed: func(ks *keystore.Keystore) (bool, error) {
					_, got, err := ks.GetCredential(name)
					return resolve(old, s, got, err)
				}}
		}},
		{16, func() writeOp {
			name := w.secretName(w.rng.IntN(concNames))
			s := regState{true, fmt.Sprintf("secret %s/%s #%d \x00\xff", db.name, name, w.next())}
			old := w.secrets[name]
			return writeOp{kind: "secret set", args: append([]string{"secret", "set", db.name + "/" + name}, w.openFlag()...), stdin: []byte(s.value),
				apply: func(start, end time.Time) { w.secrets[name] = s; h.commit(secretReg(db.name, name), start, end, s) },
				committed: func(ks *keystore.Keystore) (bool, error) {
					got, err := ks.GetSecret(db.name, name, []byte(db.passwords[0]))
					return resolve(old, s, got, err)
				}}
		}},
		{2, func() writeOp {
			name := fmt.Sprintf("w%d-n%d", w.id, len(w.created))
			pw := w.newPassword(w.c.t)
			return writeOp{kind: "dmk create", args: []string{"dmk", "create", "--db", name, "--password-file", w.pwFiles[pw]},
				apply: func(start, end time.Time) {
					d := &concDB{name: name, gen: 1, smk: true, passwords: []string{pw}}
					w.created = append(w.created, d)
					h.commit("dmk/"+name, start, end, d.state())
				},
				committed: func(ks *keystore.Keystore) (bool, error) {
					d, err := dbInfo(ks, name)
					return d != nil, err
				}}
		}},
		{4, func() writeOp {
			pw := w.newPassword(w.c.t)
			return dbWrite("dmk regenerate", append([]string{"dmk", "regenerate", "--db", db.name, "--password-file", w.pwFiles[pw]}, w.openFlag()...), func(d *concDB) {
				d.gen++
				d.dropped = append(d.dropped, d.passwords...)
				d.passwords = []string{pw}
			})
		}},
		{3, func() writeOp {
			return writeOp{kind: "smk regenerate", args: []string{"smk", "regenerate"}, apply: func(time.Time, time.Time) {}}
		}},
	}
	if len(present) > 0 {
		choices = append(choices, choice{6, func() writeOp {
			name := w.credName(present[w.rng.IntN(len(present))])
			old := w.creds[name]
			return writeOp{kind: "credential rm", args: []string{"credential", "rm", name},
				apply: func(start, end time.Time) {
					w.creds[name] = regState{}
					h.commit(credReg(name), start, end, regState{})
				},
				committed: func(ks *keystore.Keystore) (bool, error) {
					_, got, err := ks.GetCredential(name)
					return resolve(old, regState{}, got, err)
				}}
		}})
	}
	if len(presentSecrets) > 0 {
		choices = append(choices, choice{5, func() writeOp {
			name := w.secretName(presentSecrets[w.rng.IntN(len(presentSecrets))])
			old := w.secrets[name]
			return writeOp{kind: "secret rm", args: []string{"secret", "rm", db.name + "/" + name},
				apply: func(start, end time.Time) {
					w.secrets[name] = regState{}
					h.commit(secretReg(db.name, name), start, end, regState{})
				},
				committed: func(ks *keystore.Keystore) (bool, error) {
					got, err := ks.GetSecret(db.name, name, []byte(db.passwords[0]))
					return resolve(old, regState{}, got, err)
				}}
		}})
	}
	if len(db.passwords) < 4 {
		choices = append(choices, choice{5, func() writeOp {
			pw := w.newPassword(w.c.t)
			return dbWrite("dmk add-encryption --by password",
				append([]string{"dmk", "add-encryption", "--db", db.name, "--by", "password", "--password-file", w.pwFiles[pw]}, w.openFlag()...),
				func(d *concDB) { d.passwords = append(d.passwords, pw) })
		}})
	}
	if len(db.passwords) > 1 {
		choices = append(choices, choice{5, func() writeOp {
			i := w.rng.IntN(len(db.passwords))
			pw := db.passwords[i]
			return dbWrite("dmk drop-encryption --by password",
				[]string{"dmk", "drop-encryption", "--db", db.name, "--by", "password", "--password-file", w.pwFiles[pw]},
				func(d *concDB) {
					d.passwords = append(append([]string(nil), d.passwords[:i]...), d.passwords[i+1:]...)
					d.dropped = append(d.dropped, pw)
				})
		}})
	}
	if db.smk {
		choices = append(choices, choice{3, func() writeOp {
			return dbWrite("dmk drop-encryption --by smk", []string{"dmk", "drop-encryption", "--db", db.name, "--by", "smk"},
				func(d *concDB) { d.smk = false })
		}})
	} else {
		choices = append(choices, choice{6, func() writeOp {
			return dbWrite("dmk add-encryption --by smk", append([]string{"dmk", "add-encryption", "--db", db.name, "--by", "smk"}, w.openFlag()...),
				func(d *concDB) { d.smk = true })
		}})
	}
	total := 0
	for _, ch := range choices {
		total += ch.weight
	}
	n := w.rng.IntN(total)
	for _, ch := range choices {
		if n < ch.weight {
			return ch.op()
		}
		n -= ch.weight
	}
	panic("unreachable")
}

// step runs one write, killed after kill if kill >= 0.
func (w *concWriter) step(kill time.Duration) {
	c := w.c
	op := w.pick()
	r := c.k.run(op.stdin, kill, op.args...)
	c.checkOutput(r)
	switch {
	case r.code == 0:
		op.apply(r.start, r.end)
		c.count(op.kind)
		d := int64(r.end.Sub(r.start))
		c.avgWrite.Store((c.avgWrite.Load()*7 + d) / 8)
		for m := c.maxWrite.Load(); d > m && !c.maxWrite.CompareAndSwap(m, d); m = c.maxWrite.Load() {
		}
		if d > int64(keystore.DefaultLockTimeout) {
			c.slowWrites.Add(1)
		}
	case r.killed:
		c.count(op.kind + " killed")
		if op.committed == nil {
			return
		}
		ks, err := c.k.open()
		if err != nil {
			c.fail("after a killed %s: open: %v", op.kind, err)
			return
		}
		done, err := op.committed(ks)
		if err != nil {
			c.fail("after a killed %s: %v", op.kind, err)
			return
		}
		if done {
			c.killedCommitted.Add(1)
			op.apply(r.start, r.end)
		}
	default:
		c.fail("keytree %s: exit %d\n%s", strings.Join(r.args, " "), r.code, r.stderr)
	}
}

// read runs one read command and records what it saw.
func (c *concRun) read(rng *rand.Rand, ws []*concWriter) {
	w := ws[rng.IntN(len(ws))]
	j := rng.IntN(concNames)
	var r procResult
	observe := func(reg, what string, match func(regState) bool) {
		c.h.observe(observation{reg: reg, start: r.start, end: r.end, what: what, match: match})
	}
	unexpected := func() { c.fail("keytree %s: exit %d\n%s", strings.Join(r.args, " "), r.code, r.stderr) }
	isAbsent := func(s regState) bool { return !s.present }
	isPresent := func(s regState) bool { return s.present }
	hasValue := func(v []byte) func(regState) bool {
		return func(s regState) bool { return s.present && s.value == string(v) }
	}
	var kind string
	switch n := rng.IntN(100); {
	case n < 25:
		kind = "credential get"
		name := w.credName(j)
		r = c.k.run(nil, -1, "credential", "get", name)
		switch {
		case r.code == 0:
			observe(credReg(name), fmt.Sprintf("credential get returned %q", r.stdout), hasValue(r.stdout))
		case r.code == 4 && bytes.Contains(r.stderr, []byte("error 15151")):
			observe(credReg(name), "credential get found no credential", isAbsent)
		default:
			unexpected()
		}
	case n < 45:
		kind = "secret get"
		db, name := w.db.name, w.secretName(j)
		r = c.k.run(nil, -1, "secret", "get", db+"/"+name)
		switch {
		case r.code == 0:
			observe(secretReg(db, name), fmt.Sprintf("secret get returned %q", r.stdout), hasValue(r.stdout))
			observe("dmk/"+db, "secret get opened the key by the SMK", func(s regState) bool { return strings.Contains(s.value, "smk=true") })
		case r.code == 4 && bytes.Contains(r.stderr, []byte("error 15151")):
			observe(secretReg(db, name), "secret get found no secret", isAbsent)
		case r.code == 3 && bytes.Contains(r.stderr, []byte("error 15581")):
			observe("dmk/"+db, "secret get: no SMK encryption (15581)", func(s regState) bool { return strings.Contains(s.value, "smk=false") })
		default:
			unexpected()
		}
	case n < 55:
		kind = "credential list"
		r = c.k.run(nil, -1, "credential", "list", "--json")
		var list []struct{ Name string }
		if r.code != 0 || json.Unmarshal(r.stdout, &list) != nil {
			unexpected()
			break
		}
		listed := map[string]bool{}
		for _, e := range list {
			listed[e.Name] = true
		}
		for _, w := range ws {
			for j := 0; j < concNames; j++ {
				name := w.credName(j)
				if listed[name] {
					observe(credReg(name), "credential list listed it", isPresent)
				} else {
					observe(credReg(name), "credential list did not list it", isAbsent)
				}
			}
		}
	case n < 65:
		kind = "secret list"
		r = c.k.run(nil, -1, "secret", "list", "--json")
		var list []struct{ Database, Name string }
		if r.code != 0 || json.Unmarshal(r.stdout, &list) != nil {
			unexpected()
			break
		}
		listed := map[string]bool{}
		for _, e := range list {
			listed[e.Database+"/"+e.Name] = true
		}
		for _, w := range ws {
			for j := 0; j < concNames; j++ {
				reg := secretReg(w.db.name, w.secretName(j))
				if listed[w.db.name+"/"+w.secretName(j)] {
					observe(reg, "secret list listed it", isPresent)
				} else {
					observe(reg, "secret list did not list it", isAbsent)
				}
			}
		}
	case n < 75:
		kind = "db list"
		r = c.k.run(nil, -1, "db", "list", "--json")
		var list []struct {
			Name          string
			Generation    int
			SMKEncryption bool
			Passwords     int `json:"passwordEncryptions"`
		}
		if r.code != 0 || json.Unmarshal(r.stdout, &list) != nil {
			unexpected()
			break
		}
		for _, e := range list {
			s := (&concDB{gen: e.Generation, smk: e.SMKEncryption, passwords: make([]string, e.Passwords)}).state()
			observe("dmk/"+e.Name, "db list showed "+s.value, func(x regState) bool { return x == s })
		}
	case n < 85:
		kind = "status"
		r = c.k.run(nil, -1, "status")
		if r.code != 0 || !regexp.MustCompile(`(?m)^orphaned: +0$`).Match(r.stdout) || bytes.Contains(r.stdout, []byte("invalid")) {
			c.fail("status: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
	case n < 93:
		kind = "key-encryptions"
		r = c.k.run(nil, -1, "key-encryptions")
		if r.code != 0 {
			unexpected()
		}
	default:
		kind = "smk verify"
		r = c.k.run(nil, -1, "smk", "verify")
		if r.code != 0 || bytes.Contains(r.stdout, []byte("invalid")) {
			c.fail("smk verify: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
	}
	c.checkOutput(r)
	c.count("read " + kind)
}

// checkFiles checks that the last writer left nothing over: tmp/ empty, no
// pending.toml, one value file per credential and per secret, and exactly
// the encryption files each master key's metadata lists.
func (c *concRun) checkFiles(ws []*concWriter) {
	t, dir := c.t, c.k.opts.Keystore
	t.Helper()
	if entries, err := os.ReadDir(filepath.Join(dir, "tmp")); err != nil || len(entries) > 0 {
		t.Errorf("tmp/: %d entries, %v", len(entries), err)
	}
	if _, err := os.Stat(filepath.Join(dir, "pending.toml")); err == nil {
		t.Error("pending.toml survived the last writer")
	}
	assertFileCount(t, filepath.Join(dir, "smk"), ".age", 2)
	checkOneValueEach(t, filepath.Join(dir, "credentials"))
	dbs := map[string]*concDB{}
	for _, w := range ws {
		dbs[w.db.name] = w.db
		for _, d := range w.created {
			dbs[d.name] = d
		}
	}
	entries, err := os.ReadDir(filepath.Join(dir, "databases"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(dbs) {
		t.Errorf("databases/ holds %d entries, want %d", len(entries), len(dbs))
	}
	for name, d := range dbs {
		p := filepath.Join(dir, "databases", name)
		checkOneValueEach(t, filepath.Join(p, "secrets"))
		pw, _ := filepath.Glob(filepath.Join(p, "password.*.age"))
		smk, _ := filepath.Glob(filepath.Join(p, "smk.*.age"))
		wantSMK := 0
		if d.smk {
			wantSMK = 1
		}
		if len(pw) != len(d.passwords) || len(smk) != wantSMK {
			t.Errorf("databases/%s: %d password and %d SMK encryption files, want %d and %d", name, len(pw), len(smk), len(d.passwords), wantSMK)
		}
	}
}

// checkOneValueEach checks that a directory of items holds exactly one
// value file NAME.REVISION.GENERATION.age per metadata file NAME.toml.
func checkOneValueEach(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]int{}
	var metas []string
	for _, e := range entries {
		n := e.Name()
		switch {
		case strings.HasSuffix(n, ".toml"):
			metas = append(metas, strings.TrimSuffix(n, ".toml"))
		case strings.HasSuffix(n, ".age"):
			parts := strings.Split(strings.TrimSuffix(n, ".age"), ".")
			values[strings.Join(parts[:len(parts)-2], ".")]++
		default:
			t.Errorf("%s: unexpected file %s", dir, n)
		}
	}
	for _, m := range metas {
		if values[m] != 1 {
			t.Errorf("%s: %d value files for %s, want 1", dir, values[m], m)
		}
		delete(values, m)
	}
	for name := range values {
		t.Errorf("%s: value files of %s, which has no metadata", dir, name)
	}
}

// checkFinal reads back, through the Go API, everything the writer owns.
func (w *concWriter) checkFinal(ks *keystore.Keystore) {
	t := w.c.t
	t.Helper()
	for j := 0; j < concNames; j++ {
		name := w.credName(j)
		want := w.creds[name]
		_, got, err := ks.GetCredential(name)
		if now, err := readState(got, err); err != nil || now != want {
			t.Errorf("credential %s: %v, %v; want %v", name, now, err, want)
		}
		name = w.secretName(j)
		want = w.secrets[name]
		got, err = ks.GetSecret(w.db.name, name, []byte(w.db.passwords[0]))
		if now, err := readState(got, err); err != nil || now != want {
			t.Errorf("secret %s/%s: %v, %v; want %v", w.db.name, name, now, err, want)
		}
	}
	for _, d := range append([]*concDB{w.db}, w.created...) {
		info, err := dbInfo(ks, d.name)
		if err != nil || info == nil {
			t.Errorf("database %s: %v, %v", d.name, info, err)
			continue
		}
		got := (&concDB{gen: info.Generation, smk: info.SMKEncryption, passwords: make([]string, info.Passwords)}).state()
		if got != d.state() {
			t.Errorf("database %s: %v, want %v", d.name, got, d.state())
		}
	}
	// Every current password opens the key, none of the dropped ones does;
	// the key opens without one exactly when it is encrypted by the SMK.
	for _, pw := range w.db.passwords {
		if _, err := ks.GetSecret(w.db.name, "probe", []byte(pw)); err != nil {
			t.Errorf("database %s: current password %s: %v", w.db.name, pw, err)
		}
	}
	for _, pw := range w.db.dropped {
		if _, err := ks.GetSecret(w.db.name, "probe", []byte(pw)); !errors.Is(err, keystore.ErrDecryption) {
			t.Errorf("database %s: dropped password %s: %v, want a decryption error", w.db.name, pw, err)
		}
	}
	if _, err := ks.GetSecret(w.db.name, "probe", nil); (err == nil) != w.db.smk {
		t.Errorf("database %s (SMK encryption %t): opening it by the SMK: %v", w.db.name, w.db.smk, err)
	}
	for _, d := range w.created {
		backup := filepath.Join(w.c.k.root, "backup-"+d.name)
		if _, err := ks.BackupDMK(d.name, backup, []byte("Backup-Passw0rd-1"), keystore.DMKOptions{OpenPassword: []byte(d.passwords[0])}); err != nil {
			t.Errorf("database %s: its password does not open it: %v", d.name, err)
		}
	}
}
