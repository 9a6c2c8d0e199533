package keystore

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/protect"
)

// SMKOptions tune the SMK-wide operations.
type SMKOptions struct {
	// Force continues past what cannot be decrypted, keeping it (P7).
	Force bool
	// Algorithm of a regenerated key; empty keeps the current key's.
	Algorithm protect.Algorithm
	// Progress, if set, is called as values are re-encrypted.
	Progress func(done, total int)
	// SkipPasswordPolicy accepts a backup password that fails the policy.
	SkipPasswordPolicy bool
}

// BackupSMK writes the SMK to path, encrypted with password (P14's policy
// applies unless opts.SkipPasswordPolicy).
func (ks *Keystore) BackupSMK(path string, password []byte, opts SMKOptions) (*SMKInfo, error) {
	if !opts.SkipPasswordPolicy {
		if err := CheckPassword(password); err != nil {
			return nil, err
		}
	}
	var info *SMKInfo
	err := ks.read("smk backup", func(s *session) error {
		st, err := s.openSMK()
		if err != nil {
			return err
		}
		kf := backupKeyFile(st.key, st.meta.Created, ks.now(), "")
		if err := writeKeyBackup(s.ks.outside, path, st.key, kf, password); err != nil {
			return err
		}
		info = st.info()
		return nil
	})
	if err == nil {
		ks.recordBackup("", path, info.Thumbprint)
	}
	return info, err
}

// RestoreSMK makes the key in a backup the SMK: every value the current SMK
// protects is decrypted and re-encrypted under the restored key, then the key
// is protected by the account and machine protectors. If the current SMK
// cannot be opened, or a value cannot be decrypted, nothing changes unless
// opts.Force (15329, 15320); with it, what cannot be decrypted stays on disk,
// orphaned. Restoring the key already in use changes nothing (15588).
func (ks *Keystore) RestoreSMK(path string, password []byte, opts SMKOptions) (*RekeyResult, error) {
	key, kf, err := readKeyBackup(path, protect.KindSMK, password)
	if err != nil {
		return nil, err
	}
	var res *RekeyResult
	err = ks.write("smk restore", func(s *session) error {
		// A restore protects the key for the current account and
		// machine, as the user asked: it may create their directories
		// (docs/cli-abi.md), which a repair never does.
		s.createDirs = true
		st, openErr := s.openSMK()
		if openErr != nil && lostSMK(st, openErr) && st.meta.Thumbprint == key.Thumbprint() && st.meta.Algorithm == string(key.Algorithm()) {
			// The backup holds the key in use, and only its
			// encryptions are lost (other protectors, deleted
			// protector directories): the common recovery. Nothing
			// is re-encrypted and nothing is orphaned; the key is
			// protected again for this account and this machine, in
			// the same generation.
			if err := s.reprotectSMK(st, key); err != nil {
				return err
			}
			res = &RekeyResult{Thumbprint: key.Thumbprint(), Algorithm: key.Algorithm(), Generation: st.meta.Generation, Unchanged: true, Reprotected: true}
			return nil
		}
		if (openErr == nil || lostSMK(st, openErr)) && st.meta.Thumbprint != key.Thumbprint() {
			s.restorePreview("values", s.smkItemRefs, smkGens(st.meta), st.meta.Thumbprint, openErr == nil, key, kf.Created)
		}
		oldKey, err := currentKeyForForce(st, openErr, opts.Force)
		if err != nil {
			return err
		}
		if oldKey != nil && oldKey.Equal(key) {
			res = &RekeyResult{Thumbprint: key.Thumbprint(), Algorithm: key.Algorithm(), Generation: st.meta.Generation, Unchanged: true}
			return nil
		}
		res, err = s.rekeySMK(st, rekeyPlan{
			oldKey:     oldKey,
			newKey:     key,
			newCreated: kf.Created,
			force:      opts.Force,
			keys:       map[string]*protect.Key{key.Thumbprint(): key},
			tryKeys:    []*protect.Key{key},
			progress:   opts.Progress,
		})
		return err
	})
	return res, err
}

// lostSMK reports whether opening the SMK failed only because no
// encryption of it opens here (15466) or none exists: what a restore from
// a backup repairs, as opposed to damage or a refusal.
func lostSMK(st *smkState, openErr error) bool {
	var ke *Error
	lost := errors.As(openErr, &ke) && ke.Number == MsgDecryption || errors.Is(openErr, errSMKEncryptionsMissing)
	return st != nil && lost
}

// reprotectSMK writes the encryptions of the SMK in use, opened from a
// backup, for the current account and machine, in its own generation.
// Every other file stays as it is: the key is the one smk.toml names, so
// everything under it opens again.
func (s *session) reprotectSMK(st *smkState, key *protect.Key) error {
	for _, e := range st.encryptions {
		if !e.Enabled {
			continue
		}
		if err := s.ks.writeSMKEncryption(e.Protector, st.meta, key, s.creation()); err != nil {
			return err
		}
	}
	s.ks.logEvent(fmt.Sprintf("smk restore: the backup holds the service master key in use (%s); protected it again for the current account and machine", key.Thumbprint()))
	return nil
}

// currentKeyForForce decides whether an SMK-wide operation may go on when
// opening the current SMK failed: only with --force, and only when no
// encryption opens it (15466) or none exists, not for other damage or a
// refusal.
func currentKeyForForce(st *smkState, openErr error, force bool) (*protect.Key, error) {
	if openErr == nil {
		return st.key, nil
	}
	if !lostSMK(st, openErr) {
		return nil, openErr
	}
	if !force {
		return nil, errCurrentKey()
	}
	return nil, nil
}

// newKeyAlgorithm is the algorithm of a regenerated key: the one asked
// for, or else the old key's, read from its metadata (recorded) where a
// --force regenerate could not open it.
func newKeyAlgorithm(requested protect.Algorithm, oldKey *protect.Key, recorded string) (protect.Algorithm, error) {
	switch {
	case requested != "":
		return requested, nil
	case oldKey != nil:
		return oldKey.Algorithm(), nil
	}
	return protect.ParseAlgorithm(recorded)
}

// RegenerateSMK replaces the SMK with a new random key, re-encrypting every
// value it protects; all of it happens or none (P6).
func (ks *Keystore) RegenerateSMK(opts SMKOptions) (*RekeyResult, error) {
	var res *RekeyResult
	err := ks.write("smk regenerate", func(s *session) error {
		st, openErr := s.openSMK()
		oldKey, err := currentKeyForForce(st, openErr, opts.Force)
		if err != nil {
			return err
		}
		alg, err := newKeyAlgorithm(opts.Algorithm, oldKey, st.meta.Algorithm)
		if err != nil {
			return err
		}
		newKey, err := protect.GenerateKey(protect.KindSMK, alg)
		if err != nil {
			return err
		}
		res, err = s.rekeySMK(st, rekeyPlan{
			oldKey:     oldKey,
			newKey:     newKey,
			newCreated: ks.nowUTC(),
			force:      opts.Force,
			progress:   opts.Progress,
		})
		return err
	})
	return res, err
}

// RecoverSMK opens an old SMK backup and re-encrypts, under the current SMK,
// every orphan that key opens. Like regenerate, it commits everything at
// once: the current key moves to a new generation along with the recovered
// values.
func (ks *Keystore) RecoverSMK(path string, password []byte, opts SMKOptions) (*RekeyResult, error) {
	backup, err := readBackupIfNamed(path, protect.KindSMK, password)
	if err != nil {
		return nil, err
	}
	var res *RekeyResult
	err = ks.write("smk recover", func(s *session) error {
		st, err := s.openSMK()
		if err != nil {
			return err
		}
		if len(st.meta.Retired) == 0 {
			return &Error{Text: "the keystore has no orphaned values", Kind: ErrNotFound,
				Remedy: Remedy{Kind: RemedyListOrphans}}
		}
		keys := []*protect.Key{backup}
		if backup == nil {
			if keys, err = s.keptSMKKeys(st.meta); err != nil {
				return err
			}
		}
		res, err = s.rekeySMK(st, rekeyPlan{
			oldKey:      st.key,
			newKey:      st.key,
			newCreated:  st.meta.Created,
			keys:        keysByThumbprint(keys),
			tryKeys:     keys,
			mustRecover: true,
			progress:    opts.Progress,
		})
		return err
	})
	return res, err
}

// keptSMKKeys opens the encryptions that --force kept of retired SMKs
// (formats.Retired.Kept) with this account's and this machine's protectors,
// as openSMK opens the current ones: the recovery after a --force that ran
// with the wrong protector directories.
func (s *session) keptSMKKeys(meta *formats.SMK) ([]*protect.Key, error) {
	var keys []*protect.Key
	var reasons []string
	for _, r := range meta.Retired {
		old := &formats.SMK{Generation: r.Generation, Thumbprint: r.Thumbprint, Algorithm: r.Algorithm}
		for _, kind := range r.Kept {
			key, reason, err := s.ks.trySMKEncryption(protect.Kind(kind), old, nil)
			if err != nil {
				return nil, err
			}
			if key != nil {
				keys = append(keys, key)
				break
			}
			reasons = append(reasons, fmt.Sprintf("generation %d, %s encryption: %v", r.Generation, kind, reason))
		}
	}
	if len(keys) == 0 {
		return nil, &Error{
			Text:   fmt.Sprintf("none of the %d kept encryptions of earlier service master keys opens with this account's and this machine's protectors", len(reasons)),
			Detail: reasons,
			Remedy: Remedy{Kind: RemedyOldProtectorsOrRecoverSMK},
			Kind:   ErrDecryption,
		}
	}
	return keys, nil
}

func keysByThumbprint(keys []*protect.Key) map[string]*protect.Key {
	m := map[string]*protect.Key{}
	for _, k := range keys {
		m[k.Thumbprint()] = k
	}
	return m
}

// AlterResult reports what smk alter did.
type AlterResult struct {
	AlreadyValid bool // the current protectors already opened the SMK
	Thumbprint   string
}

// AlterSMKOldAccount opens the SMK with an earlier account's secret (the
// account protector secret in dir) when neither current encryption opens,
// then protects it for the current account and machine: SQL Server's ALTER
// SERVICE MASTER KEY WITH OLD_ACCOUNT.
func (ks *Keystore) AlterSMKOldAccount(dir string) (*AlterResult, error) {
	var res *AlterResult
	err := ks.write("smk alter", func(s *session) error {
		st, openErr := s.openSMK()
		if openErr == nil {
			res = &AlterResult{AlreadyValid: true, Thumbprint: st.meta.Thumbprint}
			return nil
		}
		var ke *Error
		if st == nil || !errors.As(openErr, &ke) || ke.Number != MsgDecryption {
			return openErr
		}
		old, err := ks.accountProtectorIn(dir, createNone)
		var ue *unavailableError
		if errors.As(err, &ue) {
			return &Error{Text: "cannot use the old account: " + ue.reason, Kind: ErrNotFound}
		}
		if err != nil {
			return err
		}
		blobPath := ks.pathOf(protectorBlob(string(protect.KindAccount), st.meta.Generation))
		blob, err := ks.files.ReadFile(blobPath, maxKeyBlobSize)
		if err != nil {
			return ks.fileError(blobPath, err)
		}
		key, _, err := openKeyFile(old, blob, protect.KindSMK, st.meta.Thumbprint)
		if err != nil {
			return &Error{
				Number: MsgDecryption,
				Text:   textDecryption,
				Detail: []string{fmt.Sprintf("the account secret in %s does not open the service master key either: %v", dir, err)},
				Remedy: Remedy{Kind: RemedyRestoreSMK},
				Kind:   ErrDecryption,
			}
		}
		for _, e := range st.encryptions {
			if !e.Enabled {
				continue
			}
			// Documented to create the current account's and
			// machine's directories: protecting the key for them is
			// what the user asked for.
			if err := ks.writeSMKEncryption(e.Protector, st.meta, key, createDir); err != nil {
				return err
			}
		}
		ks.logEvent(fmt.Sprintf("smk alter: opened the service master key with the old account in %s and protected it for the current account and machine", dir))
		res = &AlterResult{Thumbprint: st.meta.Thumbprint}
		return nil
	})
	return res, err
}

// AlterSMKNewAccount protects the SMK for the account whose protector secret
// is in dir, before keytree runs as that account: SQL Server's ALTER SERVICE
// MASTER KEY WITH NEW_ACCOUNT. The account encryption then belongs to the
// new account; until the switch, the current account opens the SMK through
// the machine encryption (and re-creates the account encryption for itself,
// so run this just before switching).
func (ks *Keystore) AlterSMKNewAccount(dir string) (*AlterResult, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if within(abs, ks.dir) || within(ks.dir, abs) || within(abs, ks.machineDir) || within(ks.machineDir, abs) {
		return nil, &Error{Text: fmt.Sprintf("the new account directory %s overlaps the keystore or the machine directory", abs), Kind: ErrInvalid}
	}
	var res *AlterResult
	err = ks.write("smk alter", func(s *session) error {
		st, err := s.openSMK()
		if err != nil {
			return err
		}
		// Documented to create the new account's directory: the
		// user named it for this purpose.
		p, err := ks.accountProtectorIn(abs, createDir)
		if err != nil {
			return err
		}
		blob, err := sealKey(p, st.key, st.meta.Created)
		if err != nil {
			return err
		}
		if _, _, err := openKeyFile(p, blob, protect.KindSMK, st.key.Thumbprint()); err != nil {
			return fmt.Errorf("the new account encryption does not open: %w", err)
		}
		if err := ks.writeFileAtomic(ks.pathOf(protectorBlob(string(protect.KindAccount), st.meta.Generation)), blob); err != nil {
			return err
		}
		ks.logEvent(fmt.Sprintf("smk alter: the account encryption of the service master key now belongs to the account in %s", abs))
		res = &AlterResult{Thumbprint: st.meta.Thumbprint}
		return nil
	})
	return res, err
}
