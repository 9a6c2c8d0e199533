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
		return encItem{kind: itemCredential, name: m.Name, blob: credentialBlob(m.Name, m.Revision, 0)}, true, nil
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
		return encItem{kind: itemSecret, name: ref.db + "/" + m.Name, blob: secretBlob(ref.db, m.Name, m.Revision, 0)}, true, nil
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
// it: the SMK with credentials and DMK encryptions, or one DMK with its
// database's secrets.
type rekeyScope struct {
	what       string // "service master key", "database master key of 'payroll'"
	db         string // the database, for a DMK; "" for the SMK
	generation int
	thumbprint string
	algorithm  string
	retired    []formats.Retired
	// refs lists the scope's items by name; workers resolve them.
	refs func(fn func(itemRef) error) error
	// itemDirs lists the directories that hold the items' blobs.
	itemDirs func() ([]string, error)
	sweep    []string
	// writeOwn writes the new key's own encryptions (by the account and
	// machine protectors, or by passwords and the SMK) into the batch.
	writeOwn func(b *fsio.Batch, newKey *protect.Key, newGen int, created time.Time) error
	// commit replaces the scope's metadata: the one rename that moves the
	// scope to the new generation.
	commit func(newKey *protect.Key, newGen int, created time.Time, retired []formats.Retired) error
	// ownFiles lists the old key's own encryptions, removed after the commit.
	ownFiles func(oldGen int) []string
	// keepable names the old key's own encryptions that --force keeps when
	// it goes on without opening the old key, by the names
	// formats.Retired.Kept holds, and keptPath maps a name to its file: they
	// stay with the items they could open (P7: FORCE deletes nothing a
	// mistake could still need).
	keepable []string
	keptPath func(gen int, name string) string
}

// rekey moves every value of a scope to a new generation encrypted by
// plan.newKey, then commits. Until the commit, every new file has a name
// that committed metadata does not know, so a crash leaves the old state
// whole, and the clean-up recorded in pending.toml removes the new files;
// after it, the old files are garbage.
func (s *session) rekey(sc rekeyScope, plan rekeyPlan) (*RekeyResult, error) {
	newGen := sc.generation + 1
	if newGen > formats.MaxGeneration {
		return nil, fmt.Errorf("the %s has been replaced too many times", sc.what)
	}
	if err := s.intend(nil, sc.sweep); err != nil {
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
	total := 0
	if plan.progress != nil {
		if err := sc.refs(func(itemRef) error { total++; return nil }); err != nil {
			return nil, err
		}
	}

	res := &RekeyResult{Thumbprint: plan.newKey.Thumbprint(), Algorithm: plan.newKey.Algorithm(), Generation: newGen,
		CurrentKeyLost: plan.oldKey == nil}
	remaining := map[int]int{} // retired generation → orphans it still holds
	newOrphans := 0
	unreadable := 0 // new orphans whose files could not be read
	var mu sync.Mutex
	// The workers read, decrypt and encrypt; the batch's writers create
	// the new files meanwhile. Whatever happens, every queued file is
	// created or dropped before rekey returns.
	b := s.ks.files.NewBatch(s.ks.dir)
	b.StartWriters()
	defer func() { _ = b.Wait() }() // on success, waited for below
	oldGens := keyGens{current: sc.generation, retired: sc.retired}

	work := func(ref itemRef) error {
		it, ok, err := s.ks.resolve(ref)
		if err != nil {
			return err
		}
		if !ok {
			mu.Lock()
			res.skipped++
			if plan.progress != nil {
				plan.progress(res.Items+res.skipped, total)
			}
			mu.Unlock()
			return nil
		}
		blob, path, orphan, err := s.ks.readItemBlob(it.blob, oldGens)
		if err != nil {
			if !plan.force {
				return errItemDecrypt(it, err)
			}
			// --force goes on, but what it does not re-encrypt stays
			// where it is and stays known (P18): left under a generation
			// that is neither current nor retired, a value would read as
			// missing, and the next writer's clean-up would remove it.
			mu.Lock()
			defer mu.Unlock()
			res.Items++
			switch {
			case orphan != nil:
				// Already an orphan: it stays under its retired generation.
				remaining[orphan.Generation]++
			case path != "":
				// The file is there but cannot be read now (its mode, an
				// I/O error, its size): orphaned under the current
				// generation, as a value that does not decrypt would be.
				newOrphans++
				unreadable++
				res.OrphanedCount++
				if len(res.Orphaned) < maxListedOrphans {
					res.Orphaned = append(res.Orphaned, it.kind.String()+" '"+it.name+"'")
					res.Unreadable = append(res.Unreadable, it.kind.String()+" '"+it.name+"': "+err.Error())
				}
			}
			// Otherwise no file of it exists: there is nothing to keep.
			if plan.progress != nil {
				plan.progress(res.Items+res.skipped, total)
			}
			return nil
		}
		open := func(k *protect.Key) ([]byte, error) { return protect.Open(k, blob, MaxValueSize) }
		var key *protect.Key
		if orphan == nil {
			key = plan.oldKey
			if key == nil {
				key = plan.keys[sc.thumbprint]
			}
		} else {
			key = plan.keys[orphan.Thumbprint]
		}
		var value []byte
		if key != nil {
			value, err = open(key)
		}
		if orphan != nil && (key == nil || err != nil) {
			for _, k := range plan.tryKeys {
				if value, err = open(k); err == nil {
					key = k
					break
				}
			}
		}
		if key == nil || err != nil {
			mu.Lock()
			defer mu.Unlock()
			res.Items++
			if orphan != nil {
				remaining[orphan.Generation]++
				return nil
			}
			if !plan.force {
				if err == nil {
					err = errors.New("the current " + sc.what + " cannot be opened")
				}
				return errItemDecrypt(it, err)
			}
			newOrphans++
			res.OrphanedCount++
			if len(res.Orphaned) < maxListedOrphans {
				res.Orphaned = append(res.Orphaned, it.kind.String()+" '"+it.name+"'")
			}
			return nil
		}
		ct, err := protect.Seal(plan.newKey, value)
		if err != nil {
			return err
		}
		if err := b.CreateLater(s.ks.pathOf(it.blob.atGen(newGen)), s.ks.dirOf(it.blob), ct); err != nil {
			return err
		}
		mu.Lock()
		res.Items++
		res.Reencrypted++
		if orphan != nil {
			res.Recovered++
		}
		if plan.progress != nil {
			plan.progress(res.Items+res.skipped, total)
		}
		mu.Unlock()
		return nil
	}
	if err := parallel(sc.refs, work); err != nil {
		return nil, err
	}
	if err := b.Wait(); err != nil {
		return nil, err
	}

	if plan.mustRecover && res.Recovered == 0 {
		return nil, &Error{
			Text: fmt.Sprintf("the key opens none of the %d orphaned values; nothing was changed", countRemaining(remaining)),
			Hint: "keytree status lists orphaned values and the key each was encrypted by",
			Kind: ErrNotFound,
		}
	}

	// The new key's own encryptions, then one flush, then the commit.
	if err := sc.writeOwn(b, plan.newKey, newGen, plan.newCreated); err != nil {
		return nil, err
	}
	if err := b.Sync(); err != nil {
		return nil, err
	}
	var retired []formats.Retired
	for _, r := range sc.retired {
		if remaining[r.Generation] > 0 {
			retired = append(retired, r)
			res.OrphansLeft += remaining[r.Generation]
		}
	}
	if newOrphans > 0 {
		r := formats.Retired{Generation: sc.generation, Thumbprint: sc.thumbprint, Algorithm: sc.algorithm}
		if plan.oldKey == nil || unreadable > 0 {
			// The key was not opened: perhaps its protectors were
			// misconfigured or its password mistyped. Or it was, but
			// some of its values could not be read, and it is the key
			// that opens them once they can be. Either way its
			// encryptions stay, so that recover can open it.
			for _, name := range sc.keepable {
				if s.ks.files.Exists(sc.keptPath(sc.generation, name)) {
					r.Kept = append(r.Kept, name)
				}
			}
			res.KeptEncryptions = len(r.Kept)
		}
		retired = append(retired, r)
		res.OrphansLeft += newOrphans
	}
	if len(retired) > formats.MaxRetired {
		return nil, fmt.Errorf("too many generations of the %s hold orphans; recover or remove them first", sc.what)
	}
	if err := sc.commit(plan.newKey, newGen, plan.newCreated, retired); err != nil {
		return nil, err
	}
	s.ks.logEvent(fmt.Sprintf("%s: the %s is now %s (generation %d); %d values re-encrypted, %d recovered, %d orphaned",
		s.op, sc.what, plan.newKey.Thumbprint(), newGen, res.Reencrypted, res.Recovered, res.OrphanedCount))
	s.cleanupAfterRekey(sc, newGen, retired)
	if plan.newKey.Thumbprint() != sc.thumbprint {
		// Backups of the replaced key are stale now; the command says
		// which was the last (a recover keeps the key: nothing to say).
		res.Replaced = sc.thumbprint
		res.ReplacedBackup = s.ks.lastBackup("", sc.db, sc.thumbprint)
	}
	return res, nil
}

// rekeySMK runs the rekey pass over the SMK's scope.
func (s *session) rekeySMK(st *smkState, plan rekeyPlan) (*RekeyResult, error) {
	if err := st.refuseDisowned(); err != nil {
		return nil, err
	}
	old := st.meta
	sc := rekeyScope{
		what:       "service master key",
		generation: old.Generation,
		thumbprint: old.Thumbprint,
		algorithm:  old.Algorithm,
		retired:    old.Retired,
		refs:       s.smkItemRefs,
		itemDirs:   s.smkItemDirs,
		sweep:      smkSweep(),
		writeOwn: func(b *fsio.Batch, key *protect.Key, gen int, created time.Time) error {
			for _, pr := range smkProtectors {
				if pr.kind == protect.KindMachine && !old.MachineProtection {
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
		},
		commit: func(key *protect.Key, gen int, created time.Time, retired []formats.Retired) error {
			next := &formats.SMK{
				Version:           formats.Version,
				Generation:        gen,
				Thumbprint:        key.Thumbprint(),
				Algorithm:         string(key.Algorithm()),
				Created:           created.UTC(),
				MachineProtection: old.MachineProtection,
				Retired:           retired,
			}
			if err := s.ks.writeSMKMeta(next); err != nil {
				return err
			}
			s.smk = &smkState{meta: next, key: key, encryptions: validEncryptions(next)}
			if next.MachineProtection {
				s.ks.recordMachineCheck(next)
			}
			return nil
		},
		ownFiles: func(oldGen int) []string {
			var out []string
			for _, pr := range smkProtectors {
				out = append(out, s.ks.pathOf(protectorBlob(string(pr.kind), oldGen)))
			}
			return out
		},
		keepable: []string{string(protect.KindAccount), string(protect.KindMachine)},
		keptPath: func(gen int, kind string) string { return s.ks.pathOf(protectorBlob(kind, gen)) },
	}
	return s.rekey(sc, plan)
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
	old := map[int]bool{sc.generation: true}
	for _, r := range sc.retired {
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
	own := sc.ownFiles(sc.generation)
	for _, r := range sc.retired {
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
		Hint:   "nothing was changed; rerun with --force to continue past it",
		Kind:   ErrDecryption,
		Err:    cause,
	}
}

func errCurrentKey() *Error {
	return &Error{
		Number: MsgCurrentKey,
		Text:   "The current master key cannot be decrypted. The FORCE option can be used to ignore this error and continue the operation; the data encrypted by the old master key is kept, orphaned, until a backup of that key recovers it.",
		Hint:   "nothing was changed; rerun with --force to continue",
		Kind:   ErrDecryption,
	}
}
