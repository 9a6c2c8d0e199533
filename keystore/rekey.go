package keystore

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/protect"
)

// smkItem is a value the SMK encrypts: a credential's value, or a database
// master key's SMK encryption.
type smkItem struct {
	what string // "credential", "database master key"
	name string
	dir  string // keystore-relative directory, slash-separated
	base string // the blob's base name
	rev  int
}

func (it smkItem) dirElems() []string { return strings.Split(it.dir, "/") }

// eachSMKItem calls fn for every value the SMK encrypts, reading metadata as
// it goes rather than loading the keystore into memory.
func (s *session) eachSMKItem(fn func(smkItem) error) error {
	err := s.ks.eachCredential(func(m *formats.Credential) error {
		return fn(smkItem{what: "credential", name: m.Name, dir: credentialsDir, base: m.Name, rev: m.Revision})
	})
	if err != nil {
		return err
	}
	return s.eachDMKSMKItem(fn)
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
	// force keeps going past items that cannot be decrypted, leaving them
	// on disk, orphaned (P7).
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
	Thumbprint    string
	Algorithm     protect.Algorithm
	Generation    int
	Items         int      // values examined
	Reencrypted   int      // values now under the new key
	Recovered     int      // orphans that are no longer orphans
	Orphaned      []string // values this operation could not decrypt (the first 100)
	OrphanedCount int
	OrphansLeft   int  // orphans still waiting for a backup of their key
	Unchanged     bool // the key was already the SMK (15588)
}

const maxListedOrphans = 100

func countRemaining(remaining map[int]int) int {
	n := 0
	for _, c := range remaining {
		n += c
	}
	return n
}

// rekeySMK moves every value the SMK protects to a new generation encrypted
// by plan.newKey, then commits by replacing smk.toml. Until that rename,
// every new file has a name that committed metadata does not know, so a
// crash leaves the old state whole, and the clean-up recorded in
// pending.toml removes the new files; after it, the old files are garbage.
func (s *session) rekeySMK(st *smkState, plan rekeyPlan) (*RekeyResult, error) {
	old := st.meta
	newGen := old.Generation + 1
	if newGen > formats.MaxGeneration {
		return nil, fmt.Errorf("the service master key has been replaced too many times")
	}
	if err := s.intend(nil, smkSweep()); err != nil {
		return nil, err
	}
	total := 0
	if plan.progress != nil {
		if err := s.eachSMKItem(func(smkItem) error { total++; return nil }); err != nil {
			return nil, err
		}
	}

	res := &RekeyResult{Thumbprint: plan.newKey.Thumbprint(), Algorithm: plan.newKey.Algorithm(), Generation: newGen}
	remaining := map[int]int{} // retired generation → orphans it still holds
	newOrphans := 0
	var mu sync.Mutex
	b := s.ks.newBatch()
	oldGens := keyGens{current: old.Generation, retired: old.Retired}

	work := func(it smkItem) error {
		path, orphan, err := s.ks.itemBlob(it.dirElems(), it.base, it.rev, oldGens)
		if err != nil {
			if !plan.force {
				return errItemDecrypt(it, err)
			}
			mu.Lock()
			res.Items++
			mu.Unlock()
			return nil
		}
		var key *protect.Key
		if orphan == nil {
			key = plan.oldKey
			if key == nil {
				key = plan.keys[old.Thumbprint]
			}
		} else {
			key = plan.keys[orphan.Thumbprint]
		}
		var value []byte
		if key != nil {
			value, err = openValue(key, path)
		}
		if orphan != nil && (key == nil || err != nil) {
			for _, k := range plan.tryKeys {
				if value, err = openValue(k, path); err == nil {
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
					err = errors.New("the current service master key cannot be opened")
				}
				return errItemDecrypt(it, err)
			}
			newOrphans++
			res.OrphanedCount++
			if len(res.Orphaned) < maxListedOrphans {
				res.Orphaned = append(res.Orphaned, it.what+" "+it.name)
			}
			return nil
		}
		ct, err := protect.Seal(plan.newKey, value)
		if err != nil {
			return err
		}
		dir := s.ks.path(it.dirElems()...)
		if err := b.create(filepath.Join(dir, formats.BlobName(it.base, it.rev, newGen)), dir, ct); err != nil {
			return err
		}
		mu.Lock()
		res.Items++
		res.Reencrypted++
		if orphan != nil {
			res.Recovered++
		}
		if plan.progress != nil {
			plan.progress(res.Items, total)
		}
		mu.Unlock()
		return nil
	}
	if err := s.forEachParallel(work); err != nil {
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
	for _, pr := range smkProtectors {
		if pr.kind == protect.KindMachine && !old.MachineProtection {
			continue
		}
		p, err := s.ks.protector(pr.kind, true)
		if err != nil {
			return nil, fmt.Errorf("the %s protector: %w", pr.kind, err)
		}
		blob, err := sealKey(p, plan.newKey, plan.newCreated)
		if err != nil {
			return nil, err
		}
		if _, _, err := openKeyFile(p, blob, protect.KindSMK, plan.newKey.Thumbprint()); err != nil {
			return nil, fmt.Errorf("the new %s encryption does not open: %w", pr.kind, err)
		}
		if err := b.create(s.ks.path(smkDir, protectorBlobName(string(pr.kind), newGen)), s.ks.path(smkDir), blob); err != nil {
			return nil, err
		}
	}
	if err := b.sync(); err != nil {
		return nil, err
	}

	next := &formats.SMK{
		Version:           formats.Version,
		Generation:        newGen,
		Thumbprint:        plan.newKey.Thumbprint(),
		Algorithm:         string(plan.newKey.Algorithm()),
		Created:           plan.newCreated.UTC(),
		MachineProtection: old.MachineProtection,
	}
	for _, r := range old.Retired {
		if remaining[r.Generation] > 0 {
			next.Retired = append(next.Retired, r)
			res.OrphansLeft += remaining[r.Generation]
		}
	}
	if newOrphans > 0 {
		next.Retired = append(next.Retired, formats.Retired{Generation: old.Generation, Thumbprint: old.Thumbprint, Algorithm: old.Algorithm})
		res.OrphansLeft += newOrphans
	}
	if len(next.Retired) > formats.MaxRetired {
		return nil, fmt.Errorf("too many generations of the service master key hold orphans; recover or remove them first")
	}
	if err := s.ks.writeSMKMeta(next); err != nil {
		return nil, err
	}
	s.smk = &smkState{meta: next, key: plan.newKey, encryptions: validEncryptions(next)}
	s.ks.logEvent(fmt.Sprintf("%s: the service master key is now %s (generation %d); %d values re-encrypted, %d recovered, %d orphaned",
		s.op, next.Thumbprint, newGen, res.Reencrypted, res.Recovered, res.OrphanedCount))
	s.cleanupAfterRekey(old, next)
	return res, nil
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
// of the old one: each value's old blob if it has a new one, and the old
// protector encryptions. A failure leaves pending.toml in place, and the
// next writer sweeps.
func (s *session) cleanupAfterRekey(old, next *formats.SMK) {
	gens := []int{old.Generation}
	for _, r := range old.Retired {
		gens = append(gens, r.Generation)
	}
	err := s.eachSMKItem(func(it smkItem) error {
		dir := s.ks.path(it.dirElems()...)
		if !exists(filepath.Join(dir, formats.BlobName(it.base, it.rev, next.Generation))) {
			return nil
		}
		for _, g := range gens {
			if err := removeFile(filepath.Join(dir, formats.BlobName(it.base, it.rev, g))); err != nil {
				return err
			}
		}
		return nil
	})
	for _, pr := range smkProtectors {
		if err == nil {
			err = removeFile(s.ks.path(smkDir, protectorBlobName(string(pr.kind), old.Generation)))
		}
	}
	if err == nil {
		s.pending.Sweep = nil
	}
}

// forEachParallel runs fn on every SMK item with one worker per CPU. The walk
// over the keystore feeds the workers as it goes, so memory does not grow
// with the keystore. The first error stops everything.
func (s *session) forEachParallel(fn func(smkItem) error) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	items := make(chan smkItem, 64)
	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
	)
	fail := func(err error) {
		once.Do(func() { firstErr = err; cancel() })
	}
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
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
	walkErr := s.eachSMKItem(func(it smkItem) error {
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

func errItemDecrypt(it smkItem, cause error) error {
	return &Error{
		Number: MsgItemDecrypt,
		Text: fmt.Sprintf("An error occurred while decrypting %s '%s' that was encrypted by the old master key. The FORCE option can be used to ignore this error and continue the operation; what cannot be decrypted is kept, orphaned, until a backup of its key recovers it.",
			it.what, it.name),
		Detail: []string{cause.Error()},
		Hint:   "nothing was changed; rerun with --force to continue past it",
		Kind:   ErrDecryption,
		Err:    cause,
	}
}

func errCurrentKey() error {
	return &Error{
		Number: MsgCurrentKey,
		Text:   "The current master key cannot be decrypted. The FORCE option can be used to ignore this error and continue the operation; the data encrypted by the old master key is kept, orphaned, until a backup of that key recovers it.",
		Hint:   "nothing was changed; rerun with --force to continue",
		Kind:   ErrDecryption,
	}
}
