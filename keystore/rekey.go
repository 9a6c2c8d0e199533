package keystore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/keystore/internal/fsio"
	"github.com/keytree-dev/keytree/protect"
)

// itemKind is a kind of value a master key encrypts.
type itemKind uint8

const (
	itemCredential itemKind = iota + 1 // a credential's value, under the SMK
	itemDMK                            // a database master key's SMK encryption
	itemSecret                         // a secret's value, under its database's master key
)

// String is the kind as messages name it.
func (k itemKind) String() string {
	switch k {
	case itemCredential:
		return "credential"
	case itemDMK:
		return "database master key"
	case itemSecret:
		return "secret"
	}
	return "item"
}

// encItem is a value a master key encrypts, read from its metadata.
type encItem struct {
	kind itemKind
	name string // as messages name it: NAME, or DB/NAME for a secret
	blob handle // its file, under any generation (handle.atGen)
	// binding is what the value's file is bound to in an authenticated
	// keystore; nil for a DMK's SMK encryption, whose key file names its
	// database instead.
	binding []byte
}

// itemRef names an item before its metadata is read: a rekey walks the
// keystore's directories listing names only, and its workers read the
// metadata, in parallel.
type itemRef struct {
	kind itemKind
	db   string
	name string
}

// smkItemRefs lists every value the SMK may encrypt: each credential, and
// each database (whose master key may have an SMK encryption).
func (s *session) smkItemRefs(fn func(itemRef) error) error {
	c := &collector{ks: s.ks}
	err := c.eachEntry(credentialsDir, func(name string, isDir bool) error {
		base, ok := strings.CutSuffix(name, ".toml")
		if isDir || !ok || strings.HasPrefix(name, ".") {
			return nil
		}
		return fn(itemRef{kind: itemCredential, name: base})
	})
	if err != nil {
		return err
	}
	return c.eachEntry(databasesDir, func(name string, isDir bool) error {
		if !isDir || strings.HasPrefix(name, ".") {
			return nil
		}
		return fn(itemRef{kind: itemDMK, db: name})
	})
}

// resolve reads an item's metadata. ok is false for something that turns out
// not to be an item of the walk: a database whose master key has no SMK
// encryption, or an empty directory under databases/.
func (ks *Keystore) resolve(ref itemRef) (it encItem, ok bool, err error) {
	switch ref.kind {
	case itemCredential:
		if err := formats.ValidateName("credential", ref.name); err != nil {
			return it, false, corruptf(ks.credentialMetaPath(ref.name), "is not a credential's file: %v", err)
		}
		m, err := ks.credentialMeta(ref.name)
		if err != nil {
			return it, false, err
		}
		return encItem{kind: itemCredential, name: m.Name, blob: credentialBlob(m.Name, m.Revision, 0), binding: credentialBinding(ks.id, m)}, true, nil
	case itemDMK:
		if err := formats.ValidateName("database", ref.db); err != nil {
			return it, false, corruptf(ks.path(databasesDir, ref.db), "is not a database: %v", err)
		}
		m, err := ks.loadDatabaseMeta(ref.db)
		if notExist(err) {
			// An empty directory is no database. One that lost its
			// database.toml may hold an SMK encryption that this
			// operation would orphan unseen: it stops the operation,
			// as damaged metadata does, --force or not.
			lost, err := ks.lostDatabase(ref.db)
			if err == nil && lost {
				err = ks.errLostDatabase(ref.db)
			}
			return it, false, err
		}
		if err != nil {
			return it, false, err
		}
		if m.Name != ref.db {
			return it, false, corruptf(ks.pathOf(databaseMeta(ref.db)), "names database %q", m.Name)
		}
		if !m.SMKEncryption {
			return it, false, nil
		}
		return encItem{kind: itemDMK, name: m.Name, blob: smkEncryptionBlob(m.Name, m.Generation, 0)}, true, nil
	case itemSecret:
		if err := formats.ValidateName("secret", ref.name); err != nil {
			return it, false, corruptf(ks.secretMetaPath(ref.db, ref.name), "is not a secret's file: %v", err)
		}
		m, err := ks.secretMeta(ref.db, ref.name)
		if err != nil {
			return it, false, err
		}
		return encItem{kind: itemSecret, name: ref.db + "/" + m.Name, blob: secretBlob(ref.db, m.Name, m.Revision, 0), binding: secretBinding(ref.db, m)}, true, nil
	}
	return it, false, fmt.Errorf("unknown item kind %d", ref.kind)
}

// smkItemDirs lists the directories holding blobs the SMK encrypts: the
// credentials' and every database's. It reads no metadata.
func (s *session) smkItemDirs() ([]string, error) {
	dirs := []string{credentialsDir}
	c := &collector{ks: s.ks}
	err := c.eachEntry(databasesDir, func(name string, isDir bool) error {
		if isDir && !strings.HasPrefix(name, ".") {
			dirs = append(dirs, databaseDir(name).rel())
		}
		return nil
	})
	return dirs, err
}

// smkSweep lists the directories an SMK-wide operation writes in.
func smkSweep() []string { return []string{smkDir, credentialsDir, databasesDir + "/*"} }

// rekeyPlan says how an SMK-wide operation re-encrypts the keystore:
// regenerate (a new random key), restore (a key from a backup) and recover
// (the same key, with a backup's key opening orphans) are all this one
// operation with different keys.
type rekeyPlan struct {
	// oldKey is the current SMK, or nil if it cannot be opened (--force).
	oldKey *protect.Key
	// newKey becomes the SMK.
	newKey     *protect.Key
	newCreated time.Time
	// force keeps going past items that cannot be decrypted or read,
	// leaving them on disk, orphaned (P7, P18).
	force bool
	// keys opens items by the thumbprint of the key they need: orphans of
	// earlier generations, and the current generation if oldKey is nil.
	keys map[string]*protect.Key
	// tryKeys are tried on every orphan whose own key is not in keys: a
	// value may be encrypted by an older key than the one it was orphaned
	// under (a file put back from an old copy of the keystore, say).
	tryKeys []*protect.Key
	// mustRecover aborts, changing nothing, if no orphan was recovered.
	mustRecover bool
	progress    func(done, total int)
}

// RekeyResult reports what an SMK-wide operation did.
type RekeyResult struct {
	Thumbprint  string
	Algorithm   protect.Algorithm
	Generation  int
	Items       int      // values examined
	Reencrypted int      // values now under the new key
	Recovered   int      // orphans that are no longer orphans
	Orphaned    []string // values this operation could not decrypt or read (the first 100), as "credential 'NAME'"
	// Unreadable lists those of Orphaned whose files could not be read, as
	// "credential 'NAME': REASON".
	Unreadable []string
	// CurrentKeyLost: the current key could not be opened, and --force
	// went on without it (SQL Server's 15585).
	CurrentKeyLost bool
	OrphanedCount  int
	OrphansLeft    int // orphans still waiting for a backup of their key
	// KeptEncryptions counts the old key's own encryptions kept with its
	// orphans because the key could not be opened, or because values it
	// encrypts could not be read.
	KeptEncryptions int
	Unchanged       bool // the key was already the SMK (15588)
	// Reprotected: the key in use came from a backup while none of its
	// encryptions opened, and was protected again for the current account
	// and machine; nothing was re-encrypted (with Unchanged).
	Reprotected bool
	// Replaced is the thumbprint of the key the operation replaced, ""
	// if the key did not change: backups of it are stale now.
	// ReplacedBackup is the newest recorded backup of it (zero Time: none).
	Replaced       string
	ReplacedBackup LastBackup
	skipped        int // names the walk listed that were no items
}

const maxListedOrphans = 100

func countRemaining(remaining map[int]int) int {
	n := 0
	for _, c := range remaining {
		n += c
	}
	return n
}

// rekeyScope is a master key and what it encrypts, as the rekey pass sees
// it: the SMK with credentials and DMK encryptions (smkScope), or one DMK
// with its database's secrets (dmkScope, dmkops.go).
type rekeyScope interface {
	// current is the master key the pass replaces.
	current() scopeKey
	// refs lists the scope's items by name; workers resolve them.
	refs(fn func(itemRef) error) error
	// itemDirs lists the directories that hold the items' blobs.
	itemDirs() ([]string, error)
	// sweep lists the directories the pass writes in, for pending.toml.
	sweep() []string
	// writeOwn writes the new key's own encryptions (by the account and
	// machine protectors, or by passwords and the SMK) into the batch.
	writeOwn(b *fsio.Batch, newKey *protect.Key, newGen int, created time.Time) error
	// commit commits t with the scope's new metadata: the one rename that
	// moves the scope to the new generation.
	commit(t *txn, newKey *protect.Key, newGen int, created time.Time, retired []formats.Retired) error
	// ownFiles lists the old key's own encryptions, removed after the commit.
	ownFiles(oldGen int) []string
	// keepable names the old key's own encryptions that --force keeps when
	// it goes on without opening the old key, by the names
	// formats.Retired.Kept holds, and keptPath maps a name to its file: they
	// stay with the items they could open (P7: FORCE deletes nothing a
	// mistake could still need).
	keepable() []string
	keptPath(gen int, name string) string
	// authenticated says whether the scope's values are bound now (was)
	// and after the pass (will): upgrade binds values that were not.
	authenticated() (was, will bool)
}

// scopeKey is what a rekey pass knows of the key it replaces.
type scopeKey struct {
	what       string // "service master key", "database master key of 'payroll'"
	db         string // the database, for a DMK; "" for the SMK
	generation int
	thumbprint string
	algorithm  string
	retired    []formats.Retired
}

// rekey moves every value of a scope to a new generation encrypted by
// plan.newKey, then commits. Until the commit, every new file has a name
// that committed metadata does not know, so a crash leaves the old state
// whole, and the clean-up recorded in pending.toml removes the new files;
// after it, the old files are garbage.
func (s *session) rekey(sc rekeyScope, plan rekeyPlan) (*RekeyResult, error) {
	k := sc.current()
	newGen := k.generation + 1
	if newGen > formats.MaxGeneration {
		return nil, fmt.Errorf("the %s has been replaced too many times", k.what)
	}
	t := s.begin()
	if err := t.sweep(sc.sweep()...); err != nil {
		return nil, err
	}
	// Every age file read or written costs a 64 KiB buffer, so a rekey
	// allocates tens of kilobytes per value over a live heap of a few
	// megabytes, whatever the keystore's size, and the collector would run
	// every few dozen values. Letting the heap grow to five times the live
	// data, under a soft limit of 32 MiB (unless GOMEMLIMIT sets one), saves
	// a sixth of the time and keeps peak memory flat as the keystore grows.
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	if debug.SetMemoryLimit(-1) == math.MaxInt64 {
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(32 << 20))
	}
	p := &rekeyPass{s: s, sc: sc, k: k, plan: plan, newGen: newGen, b: t.batch(), remaining: map[int]int{},
		oldGens: keyGens{current: k.generation, retired: k.retired},
		res: &RekeyResult{Thumbprint: plan.newKey.Thumbprint(), Algorithm: plan.newKey.Algorithm(), Generation: newGen,
			CurrentKeyLost: plan.oldKey == nil}}
	if err := p.reencryptAll(); err != nil {
		return nil, err
	}
	if plan.mustRecover && p.res.Recovered == 0 {
		return nil, &Error{
			Text:   fmt.Sprintf("the key opens none of the %d orphaned values; nothing was changed", countRemaining(p.remaining)),
			Remedy: Remedy{Kind: RemedyListOrphanKeys},
			Kind:   ErrNotFound,
		}
	}
	// The new key's own encryptions; the commit makes them and the
	// values durable with one flush, then replaces the metadata.
	if err := sc.writeOwn(p.b, plan.newKey, newGen, plan.newCreated); err != nil {
		return nil, err
	}
	retired, err := p.retired()
	if err != nil {
		return nil, err
	}
	if err := sc.commit(t, plan.newKey, newGen, plan.newCreated, retired); err != nil {
		return nil, err
	}
	res := p.res
	s.ks.logEvent(fmt.Sprintf("%s: the %s is now %s (generation %d); %d values re-encrypted, %d recovered, %d orphaned",
		s.op, k.what, plan.newKey.Thumbprint(), newGen, res.Reencrypted, res.Recovered, res.OrphanedCount))
	s.cleanupAfterRekey(sc, newGen, retired)
	if plan.newKey.Thumbprint() != k.thumbprint {
		// Backups of the replaced key are stale now; the command says
		// which was the last (a recover keeps the key: nothing to say).
		res.Replaced = k.thumbprint
		res.ReplacedBackup = s.ks.lastBackup("", k.db, k.thumbprint)
	}
	return res, nil
}

// rekeyPass is one rekey under way: what it has re-encrypted, orphaned and
// left, and the batch creating its new files.
type rekeyPass struct {
	s       *session
	sc      rekeyScope
	k       scopeKey
	plan    rekeyPlan
	newGen  int
	oldGens keyGens
	b       *fsio.Batch
	total   int // items, for progress; counted only when progress is shown

	mu         sync.Mutex // guards what follows
	res        *RekeyResult
	remaining  map[int]int // retired generation → orphans it still holds
	newOrphans int
	unreadable int // new orphans whose files could not be read
}

// reencryptAll re-encrypts every item of the scope under the new key, in
// parallel: the workers read, decrypt and encrypt, and the batch's writers
// create the new files meanwhile. Whatever happens, every queued file is
// created or dropped before it returns; the files are not yet synced.
func (p *rekeyPass) reencryptAll() error {
	if p.plan.progress != nil {
		if err := p.sc.refs(func(itemRef) error { p.total++; return nil }); err != nil {
			return err
		}
	}
	p.b.StartWriters()
	if err := parallel(p.sc.refs, p.reencrypt); err != nil {
		_ = p.b.Wait()
		return err
	}
	return p.b.Wait()
}

// reencrypt moves one item to the new key, or, where it cannot and the plan
// allows it, leaves it orphaned.
func (p *rekeyPass) reencrypt(ref itemRef) error {
	it, ok, err := p.s.ks.resolve(ref)
	if err != nil {
		return err
	}
	if !ok {
		p.count(func() { p.res.skipped++ })
		return nil
	}
	blob, path, orphan, err := p.s.ks.readItemBlob(it.blob, p.oldGens)
	if err != nil {
		return p.unreadableItem(it, path, orphan, err)
	}
	was, will := p.sc.authenticated()
	// An orphan must be bound if its generation was retired in format 2;
	// one older than the upgrade is not (docs/security.md, section 5.2).
	required := was
	if orphan != nil {
		r, _ := formats.RetiredGeneration(p.k.retired, orphan.Generation)
		required = was && r.Bound
	}
	value, err := p.open(blob, orphan, it.binding, required)
	if err != nil {
		// A file bound to another item is not a value this key cannot
		// open: it was put there. Without --force that is damage to
		// report, not an item to orphan.
		var ce *formats.CorruptError
		if orphan == nil && !p.plan.force && errors.As(err, &ce) {
			return errCorrupt(path, err)
		}
		return p.undecryptable(it, orphan, err)
	}
	ct, err := sealValue(p.plan.newKey, it.binding, will && it.binding != nil, value)
	if err != nil {
		return err
	}
	if err := p.b.CreateLater(p.s.ks.pathOf(it.blob.atGen(p.newGen)), p.s.ks.dirOf(it.blob), ct); err != nil {
		return err
	}
	p.count(func() {
		p.res.Items++
		p.res.Reencrypted++
		if orphan != nil {
			p.res.Recovered++
		}
	})
	return nil
}

// count updates the results under the lock, and reports progress.
func (p *rekeyPass) count(update func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	update()
	if p.plan.progress != nil {
		p.plan.progress(p.res.Items+p.res.skipped, p.total)
	}
}

// open decrypts an item's blob: by the old key, or for an orphan by the
// key of its generation, or else by any key the plan offers to try.
func (p *rekeyPass) open(blob []byte, orphan *Orphan, binding []byte, required bool) ([]byte, error) {
	var former []string
	if sc, ok := p.sc.(*dmkScope); ok && orphan != nil {
		former = sc.meta.FormerNames
	}
	open := func(k *protect.Key) ([]byte, error) {
		switch {
		case binding == nil:
			return protect.Open(k, blob, MaxValueSize)
		case len(former) > 0:
			return openBoundOrphan(k, blob, binding, required, formerBinding(binding, former))
		}
		return openBound(k, blob, binding, required)
	}
	var key *protect.Key
	if orphan == nil {
		key = p.plan.oldKey
		if key == nil {
			key = p.plan.keys[p.k.thumbprint]
		}
	} else {
		key = p.plan.keys[orphan.Thumbprint]
	}
	var value []byte
	var err error
	if key != nil {
		value, err = open(key)
	}
	if orphan != nil && (key == nil || err != nil) {
		for _, k := range p.plan.tryKeys {
			if value, err = open(k); err == nil {
				return value, nil
			}
		}
	}
	if key == nil && err == nil {
		err = errNoKey
	}
	return value, err
}

// errNoKey is open's error when no key was there to try.
var errNoKey = errors.New("no key to open it")

// unreadableItem decides about an item whose file could not be read. --force
// goes on, but what it does not re-encrypt stays where it is and stays known
// (P18): left under a generation that is neither current nor retired, a
// value would read as missing, and the next writer's clean-up would remove
// it.
func (p *rekeyPass) unreadableItem(it encItem, path string, orphan *Orphan, err error) error {
	if !p.plan.force {
		return errItemDecrypt(it, err)
	}
	p.count(func() {
		p.res.Items++
		switch {
		case orphan != nil:
			// Already an orphan: it stays under its retired generation.
			p.remaining[orphan.Generation]++
		case path != "":
			// The file is there but cannot be read now (its mode, an I/O
			// error, its size): orphaned under the current generation, as
			// a value that does not decrypt would be.
			p.newOrphans++
			p.unreadable++
			p.res.OrphanedCount++
			if len(p.res.Orphaned) < maxListedOrphans {
				p.res.Orphaned = append(p.res.Orphaned, it.kind.String()+" '"+it.name+"'")
				p.res.Unreadable = append(p.res.Unreadable, it.kind.String()+" '"+it.name+"': "+err.Error())
			}
		}
		// Otherwise no file of it exists: there is nothing to keep.
	})
	return nil
}

// undecryptable decides about an item no key at hand opens: an orphan stays
// one; a current value stops the pass, or with --force becomes an orphan.
func (p *rekeyPass) undecryptable(it encItem, orphan *Orphan, err error) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.res.Items++
	if orphan != nil {
		p.remaining[orphan.Generation]++
		return nil
	}
	if !p.plan.force {
		if errors.Is(err, errNoKey) {
			err = errors.New("the current " + p.k.what + " cannot be opened")
		}
		return errItemDecrypt(it, err)
	}
	p.newOrphans++
	p.res.OrphanedCount++
	if len(p.res.Orphaned) < maxListedOrphans {
		p.res.Orphaned = append(p.res.Orphaned, it.kind.String()+" '"+it.name+"'")
	}
	return nil
}

// retired lists the generations the new metadata keeps as retired: those
// still holding orphans, and the old one if this pass orphaned values, with
// the old key's own encryptions it keeps (P7).
func (p *rekeyPass) retired() ([]formats.Retired, error) {
	var retired []formats.Retired
	for _, r := range p.k.retired {
		if p.remaining[r.Generation] > 0 {
			retired = append(retired, r)
			p.res.OrphansLeft += p.remaining[r.Generation]
		}
	}
	if p.newOrphans > 0 {
		was, _ := p.sc.authenticated()
		r := formats.Retired{Generation: p.k.generation, Thumbprint: p.k.thumbprint, Algorithm: p.k.algorithm, Bound: was}
		if p.plan.oldKey == nil || p.unreadable > 0 {
			// The key was not opened: perhaps its protectors were
			// misconfigured or its password mistyped. Or it was, but
			// some of its values could not be read, and it is the key
			// that opens them once they can be. Either way its
			// encryptions stay, so that recover can open it.
			for _, name := range p.sc.keepable() {
				if p.s.ks.files.Exists(p.sc.keptPath(p.k.generation, name)) {
					r.Kept = append(r.Kept, name)
				}
			}
			p.res.KeptEncryptions = len(r.Kept)
		}
		retired = append(retired, r)
		p.res.OrphansLeft += p.newOrphans
	}
	if len(retired) > formats.MaxRetired {
		return nil, fmt.Errorf("too many generations of the %s hold orphans; recover or remove them first", p.k.what)
	}
	return retired, nil
}

// rekeySMK runs the rekey pass over the SMK's scope.
func (s *session) rekeySMK(st *smkState, plan rekeyPlan) (*RekeyResult, error) {
	if err := st.refuseDisowned(); err != nil {
		return nil, err
	}
	return s.rekey(&smkScope{s: s, old: st.meta}, plan)
}

// smkScope is the SMK and what it encrypts: credentials, and the DMKs that
// have an SMK encryption.
type smkScope struct {
	s   *session
	old *formats.SMK
	// upgrade moves the keystore to format 2 (Upgrade).
	upgrade bool
}

func (sc *smkScope) authenticated() (was, will bool) {
	return authenticated(sc.old), authenticated(sc.old) || sc.upgrade
}

func (sc *smkScope) current() scopeKey {
	return scopeKey{what: "service master key", generation: sc.old.Generation, thumbprint: sc.old.Thumbprint,
		algorithm: sc.old.Algorithm, retired: sc.old.Retired}
}

func (sc *smkScope) refs(fn func(itemRef) error) error { return sc.s.smkItemRefs(fn) }
func (sc *smkScope) itemDirs() ([]string, error)       { return sc.s.smkItemDirs() }
func (sc *smkScope) sweep() []string                   { return smkSweep() }

func (sc *smkScope) writeOwn(b *fsio.Batch, key *protect.Key, gen int, created time.Time) error {
	s := sc.s
	for _, pr := range smkProtectors {
		if pr.kind == protect.KindMachine && !sc.old.MachineProtection {
			continue
		}
		p, err := s.ks.protector(pr.kind, s.creation())
		if err != nil {
			return fmt.Errorf("the %s protector: %w", pr.kind, err)
		}
		blob, err := sealKey(p, key, created)
		if err != nil {
			return err
		}
		if _, _, err := openKeyFile(p, blob, protect.KindSMK, key.Thumbprint()); err != nil {
			return fmt.Errorf("the new %s encryption does not open: %w", pr.kind, err)
		}
		if err := b.Create(s.ks.pathOf(protectorBlob(string(pr.kind), gen)), s.ks.path(smkDir), blob); err != nil {
			return err
		}
	}
	return nil
}

func (sc *smkScope) commit(t *txn, key *protect.Key, gen int, created time.Time, retired []formats.Retired) error {
	s := sc.s
	version := formats.Version
	if _, will := sc.authenticated(); will {
		version = formats.Authenticated
	}
	next := &formats.SMK{
		Version:           version,
		Commit:            sc.old.Commit,
		Generation:        gen,
		Thumbprint:        key.Thumbprint(),
		Algorithm:         string(key.Algorithm()),
		Created:           created.UTC(),
		MachineProtection: sc.old.MachineProtection,
		Retired:           retired,
	}
	if err := t.commitSMK(next, key); err != nil {
		return err
	}
	s.smk = &smkState{meta: next, key: key, encryptions: validEncryptions(next)}
	if next.MachineProtection {
		s.ks.recordMachineCheck(next)
	}
	return nil
}

func (sc *smkScope) ownFiles(oldGen int) []string {
	var out []string
	for _, pr := range smkProtectors {
		out = append(out, sc.keptPath(oldGen, string(pr.kind)))
	}
	return out
}

func (sc *smkScope) keepable() []string {
	return []string{string(protect.KindAccount), string(protect.KindMachine)}
}

func (sc *smkScope) keptPath(gen int, kind string) string {
	return sc.s.ks.pathOf(protectorBlob(kind, gen))
}

func validEncryptions(m *formats.SMK) []EncryptionState {
	var out []EncryptionState
	for _, pr := range smkProtectors {
		on := pr.kind == protect.KindAccount || m.MachineProtection
		out = append(out, EncryptionState{Protector: pr.kind, Thumbprint: pr.thumbprint, Enabled: on, Valid: on})
	}
	return out
}

// cleanupAfterRekey removes, once the new generation is committed, the files
// of the old one: every blob of the old (or a retired) generation whose item
// now has a blob of the new generation, and the old key's own encryptions.
// It works from directory listings and file names alone, reading no
// metadata. A failure leaves pending.toml in place, and the next writer
// sweeps.
//
// A retired generation's kept encryptions stay while the generation is
// still retired (it holds orphans), and go with it.
func (s *session) cleanupAfterRekey(sc rekeyScope, newGen int, retired []formats.Retired) {
	k := sc.current()
	old := map[int]bool{k.generation: true}
	for _, r := range k.retired {
		old[r.Generation] = true
	}
	c := &collector{ks: s.ks}
	type file struct{ dir, name string }
	err := parallelN(removers, func(emit func(file) error) error {
		dirs, err := sc.itemDirs()
		if err != nil {
			return err
		}
		for _, dir := range dirs {
			err := c.eachEntry(dir, func(name string, isDir bool) error {
				if isDir {
					return nil
				}
				return emit(file{dir, name})
			})
			if err != nil {
				return err
			}
		}
		return nil
	}, func(f file) error {
		h := parseHandle(f.dir + "/" + f.name)
		switch h.kind {
		case kindCredentialBlob, kindSMKEncryption, kindSecretBlob:
		default:
			return nil
		}
		if !old[h.gen] {
			return nil
		}
		if !s.ks.files.Exists(s.ks.pathOf(h.atGen(newGen))) {
			return nil // an orphan, kept
		}
		return s.ks.files.RemoveFile(s.ks.pathOf(h))
	})
	kept := map[string]bool{}
	for _, r := range retired {
		for _, k := range r.Kept {
			kept[sc.keptPath(r.Generation, k)] = true
		}
	}
	own := sc.ownFiles(k.generation)
	for _, r := range k.retired {
		for _, k := range r.Kept {
			own = append(own, sc.keptPath(r.Generation, k))
		}
	}
	for _, f := range own {
		if err == nil && !kept[f] {
			err = s.ks.files.RemoveFile(f)
		}
	}
	if err == nil {
		s.pending.Sweep = nil
	}
}

// removers is how many goroutines remove the old generation's files after
// a rekey. A removal uses little CPU but may wait for the disk: on a
// filesystem without a journal that discards freed blocks (ext4 mounted
// with -o discard), unlink(2) waits for the discard of the file's block,
// about a millisecond on a virtual disk. Removals in different goroutines
// overlap those waits; the directory's lock is not held during them.
const removers = 32

// parallel runs fn on everything walk emits, with one worker per CPU. The
// walk feeds the workers as it goes, so memory does not grow with the
// keystore. The first error stops everything.
func parallel[T any](walk func(func(T) error) error, fn func(T) error) error {
	return parallelN(runtime.GOMAXPROCS(0), walk, fn)
}

// parallelN is parallel with n workers.
func parallelN[T any](n int, walk func(func(T) error) error, fn func(T) error) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	items := make(chan T, 256)
	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
	)
	fail := func(err error) {
		once.Do(func() { firstErr = err; cancel() })
	}
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range items {
				if ctx.Err() != nil {
					continue
				}
				if err := fn(it); err != nil {
					fail(err)
				}
			}
		}()
	}
	walkErr := walk(func(it T) error {
		select {
		case items <- it:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	close(items)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return walkErr
}

func errItemDecrypt(it encItem, cause error) error {
	return &Error{
		Number: MsgItemDecrypt,
		Text: fmt.Sprintf("An error occurred while decrypting %s '%s' that was encrypted by the old master key. The FORCE option can be used to ignore this error and continue the operation; what cannot be decrypted is kept, orphaned, until a backup of its key recovers it.",
			it.kind, it.name),
		Detail: []string{cause.Error()},
		Remedy: Remedy{Kind: RemedyForcePastItem},
		Kind:   ErrDecryption,
		Err:    cause,
	}
}

func errCurrentKey() *Error {
	return &Error{
		Number: MsgCurrentKey,
		Text:   "The current master key cannot be decrypted. The FORCE option can be used to ignore this error and continue the operation; the data encrypted by the old master key is kept, orphaned, until a backup of that key recovers it.",
		Remedy: Remedy{Kind: RemedyForce},
		Kind:   ErrDecryption,
	}
}
