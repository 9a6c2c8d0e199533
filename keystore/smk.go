package keystore

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/keystore/internal/fsio"
	"github.com/keytree-dev/keytree/protect"
)

// Thumbprints that name the SMK's two protectors in key-encryptions, as SQL
// Server's sys.key_encryptions names them.
const (
	AccountThumbprint = "0x01"
	MachineThumbprint = "0x03"
)

// EncryptionState is what opening the SMK found about one of its
// encryptions.
type EncryptionState struct {
	Protector  protect.Kind // account or machine
	Thumbprint string       // 0x01 or 0x03
	Enabled    bool         // the machine encryption can be turned off
	Valid      bool         // it opened the SMK
	Reason     string       // why it did not
	Recreated  bool         // keytree re-created it from the other one
	RepairErr  string       // why re-creating it failed
}

// smkState is the open SMK of a session.
type smkState struct {
	meta        *formats.SMK
	key         *protect.Key
	encryptions []EncryptionState
	// disowned is the path of a machine encryption that opens the key
	// although smk.toml says machine protection is off.
	disowned string
}

// refuseDisowned stops an operation that would replace the SMK's
// encryptions (regenerate, restore, recover) while smk.toml disowns a
// machine encryption that opens the key: the new key would get no machine
// encryption and the old one would go with the old key, so an edit of
// smk.toml would have removed machine protection after all.
func (st *smkState) refuseDisowned() error {
	if st.disowned == "" {
		return nil
	}
	return &Error{
		Text:   fmt.Sprintf("smk.toml says machine protection is off, but the machine encryption %s opens the service master key; nothing was changed", st.disowned),
		Remedy: Remedy{Kind: RemedySettleMachineProtection},
		Kind:   ErrRefused,
	}
}

func (ks *Keystore) loadSMKMeta() (*formats.SMK, error) {
	return loadMeta(ks, ks.path(smkFile), formats.DecodeSMK)
}

// commitSMK commits t with the SMK's new metadata.
//
// An authenticated smk.toml is signed by key, the SMK it names, and counts
// this commit; the account and machine directories remember the count.
func (t *txn) commitSMK(meta *formats.SMK, key *protect.Key) error {
	if authenticated(meta) {
		meta.Commit = t.s.nextCommit(meta)
		if err := t.s.ks.signSMK(meta, key); err != nil {
			return err
		}
	}
	t.countsItself = true
	data, err := meta.Encode()
	if err != nil {
		return err
	}
	if err := t.commit(t.s.ks.path(smkFile), data); err != nil {
		return err
	}
	t.s.committed = meta.Commit
	if authenticated(meta) {
		t.s.ks.remember(meta.Commit)
		t.s.ks.markFormat2Key(meta.Thumbprint)
	} else {
		// A key put into a keystore of format 1 by keytree (smk restore
		// of a backup made elsewhere) is that keystore's now.
		t.s.ks.unmarkFormat2Key(meta.Thumbprint)
	}
	return nil
}

var smkProtectors = []struct {
	kind       protect.Kind
	thumbprint string
}{{protect.KindAccount, AccountThumbprint}, {protect.KindMachine, MachineThumbprint}}

// openSMK opens the service master key the way SQL Server does at start-up:
// (On 15466 it returns the state it found, with no key, as well as the
// error.)
// it tries the account encryption, then the machine encryption, and
// re-creates whichever failed from whichever worked. If none works, the
// command fails with 15466 and the error log says so; nothing else changes.
// A keystore that has no SMK yet gets one.
func (s *session) openSMK() (*smkState, error) {
	if s.smk != nil {
		return s.smk, nil
	}
	meta, err := s.ks.loadSMKMeta()
	if errors.Is(err, fs.ErrNotExist) {
		if s.mode != fsio.Exclusive {
			return nil, errNeedsWrite
		}
		return s.createSMK(protect.X25519)
	}
	if err != nil {
		return nil, err
	}
	st, tr, err := s.tryEncryptions(meta)
	if err != nil {
		return nil, err
	}
	if len(tr.mismatched) > 0 {
		// An encryption that opens to a key other than the one smk.toml
		// names was never written by keytree: every encryption of one
		// generation holds the same key. The metadata or the file was
		// edited or replaced, and healing would adopt the editor's key
		// (one protector's encryption can be made by anyone who can ask
		// that protector to seal, DPAPI's machine scope for instance).
		// That is damage, reported even when the other encryption opens,
		// and nothing is repaired from it.
		return nil, corruptf(s.ks.path(smkFile), "names service master key %s (%s), but it holds %s",
			meta.Thumbprint, meta.Algorithm, strings.Join(tr.mismatched, " and "))
	}
	if st.key == nil {
		// The state goes back with the error, for status to show.
		err := s.errNoEncryptionOpens(st, tr)
		s.ks.warnAll(tr.warnings)
		return st, err
	}
	// Nothing is healed, or believed, from metadata that does not verify
	// under the key, or that is older than the protectors remember.
	if err := s.ks.checkSMKMAC(meta, st.key); err != nil {
		return nil, err
	}
	if err := s.checkRollback(meta); err != nil {
		return nil, err
	}
	if tr.machineOpened {
		s.ks.recordMachineCheck(meta)
	}
	if err := s.healEncryptions(st); err != nil {
		return nil, err
	}
	s.ks.warnAll(tr.warnings)
	s.smk = st
	return st, nil
}

// smkTrial is what trying the SMK's encryptions found besides the key.
type smkTrial struct {
	mismatched []string // keys other than the one smk.toml names
	warnings   []string // printed once the SMK is open, or has failed to
	damage     *Error   // a damaged protector secret, for the hint of 15466
	// machineOpened: the machine encryption was decrypted and opened the
	// key (machinecheck.go records it).
	machineOpened    bool
	enabled, missing int // encryptions tried, and those whose file is missing
}

// tryEncryptions tries the account encryption, then the machine one, and
// says what each did.
func (s *session) tryEncryptions(meta *formats.SMK) (*smkState, *smkTrial, error) {
	st := &smkState{meta: meta}
	tr := &smkTrial{}
	for _, pr := range smkProtectors {
		enc := EncryptionState{Protector: pr.kind, Thumbprint: pr.thumbprint,
			Enabled: pr.kind == protect.KindAccount || meta.MachineProtection}
		var err error
		if enc.Enabled {
			err = s.tryEncryption(st, tr, &enc)
		} else {
			// smk.toml says machine protection is off, so the machine
			// encryption's file should not exist. If it does, smk.toml
			// and the files disagree (an edit, or an interrupted smk
			// machine-protection): keytree neither trusts smk.toml
			// enough to delete the file nor ignores it silently. It
			// keeps it, says so, and uses it if it opens the key.
			var w string
			w, err = s.disabledMachineEncryption(meta, st, &enc, &tr.mismatched)
			if w != "" {
				tr.warnings = append(tr.warnings, w)
			}
		}
		if err != nil {
			return nil, nil, err
		}
		st.encryptions = append(st.encryptions, enc)
	}
	return st, tr, nil
}

// tryEncryption tries one enabled encryption of the SMK, and takes the key
// from it if it opens.
func (s *session) tryEncryption(st *smkState, tr *smkTrial, enc *EncryptionState) error {
	meta := st.meta
	// See machinecheck.go: a machine encryption already seen to open,
	// byte for byte the same, is not decrypted again.
	if enc.Protector == protect.KindMachine && st.key != nil && !s.fullCheck {
		known, err := s.ks.machineCheckValid(meta)
		if err != nil {
			return err
		}
		if known {
			enc.Valid = true
			return nil
		}
	}
	tr.enabled++
	key, reason, err := s.ks.trySMKEncryption(enc.Protector, meta, st.key)
	if err != nil {
		return err
	}
	var mf *missingFileError
	if errors.As(reason, &mf) {
		tr.missing++
	}
	var ue *unavailableError
	if errors.As(reason, &ue) && ue.damage != nil && tr.damage == nil {
		tr.damage = ue.damage
	}
	var km *keyMismatchError
	if reason != nil && errors.As(reason, &km) {
		tr.mismatched = append(tr.mismatched, fmt.Sprintf("%s (%s) in its %s encryption",
			km.got.Thumbprint(), km.got.Algorithm(), enc.Protector))
	}
	if key == nil {
		enc.Reason = reason.Error()
		return nil
	}
	enc.Valid = true
	st.key = key
	tr.machineOpened = tr.machineOpened || enc.Protector == protect.KindMachine
	return nil
}

// errNoEncryptionOpens is the error of an SMK no encryption opened: damage
// if none of them exists, 15466 otherwise, which the error log records.
func (s *session) errNoEncryptionOpens(st *smkState, tr *smkTrial) error {
	meta := st.meta
	if tr.missing == tr.enabled {
		// No encryption file at all for this generation: smk.toml
		// names files that were never written, or they were deleted.
		// That is damage to the keystore, not a key that no
		// protector can decrypt.
		err := corruptf(s.ks.path(smkFile), "names generation %d, but no encryption of the service master key exists for it in %s",
			meta.Generation, s.ks.path(smkDir)).(*Error)
		err.Err = errSMKEncryptionsMissing
		err.Remedy = Remedy{Kind: RemedyRestoreSMK}
		return err
	}
	var detail []string
	for _, e := range st.encryptions {
		if e.Enabled {
			detail = append(detail, fmt.Sprintf("%s encryption: %s", e.Protector, e.Reason))
		}
	}
	if !s.rehearsal { // the real pass logs it
		s.ks.logEvent(fmt.Sprintf("error %d: %s (service master key %s; %s)", MsgDecryption, textDecryption,
			meta.Thumbprint, strings.Join(detail, "; ")))
	}
	err := errDecryptionSMK(detail)
	if tr.damage != nil {
		// A protector secret that is there but damaged is the
		// likelier cause, and restoring it the gentler repair.
		err.Hint, err.Remedy = tr.damage.Hint, tr.damage.Remedy
	}
	return err
}

// healEncryptions re-creates each enabled encryption that did not open
// from the key the other one gave (SQL Server's self-healing SMK).
func (s *session) healEncryptions(st *smkState) error {
	for i := range st.encryptions {
		e := &st.encryptions[i]
		if !e.Enabled || e.Valid {
			continue
		}
		// A protector directory that does not exist is not created by
		// a repair (see creation): the encryption stays invalid, which
		// a reader can say without the exclusive lock.
		err := s.ks.missingProtectorDir(e.Protector, s.creation())
		if err == nil && s.mode != fsio.Exclusive {
			return errNeedsWrite
		}
		if err == nil {
			err = s.ks.writeSMKEncryption(e.Protector, st.meta, st.key, s.creation())
		}
		if err != nil {
			var ke *Error
			if errors.As(err, &ke) && ke.Kind == ErrPermissions || errors.Is(err, errSecretDamaged) {
				// Loose permissions, or a protector secret that
				// exists but is damaged (which keytree never
				// replaces): the user must act, and the command
				// stops rather than run on with one encryption.
				s.ks.logEvent(fmt.Sprintf("the %s encryption of the service master key is invalid (%s) and was not re-created: %v", e.Protector, e.Reason, err))
				return err
			}
			e.RepairErr = err.Error()
			msg := fmt.Sprintf("the %s encryption of the service master key is invalid (%s) and could not be re-created: %v", e.Protector, e.Reason, err)
			s.ks.logEvent(msg)
			s.ks.notice(msg)
			continue
		}
		e.Recreated = true
		msg := fmt.Sprintf("the %s encryption of the service master key was invalid (%s); re-created it from the %s encryption",
			e.Protector, e.Reason, st.encryptions[1-i].Protector)
		s.ks.logEvent(msg)
		s.ks.notice(msg)
	}
	return nil
}

// disabledMachineEncryption looks at the machine encryption of a keystore
// whose smk.toml says machine protection is off. If its file exists anyway,
// it tries it: enc says whether it opens the key (which st takes if no
// other encryption gave it), mismatched collects a key other than the one
// smk.toml names, and the warning returned says what keytree found and
// what the user can do. Nothing is deleted here or by the clean-up (see
// collector.referenced): only smk machine-protection off removes the file.
func (s *session) disabledMachineEncryption(meta *formats.SMK, st *smkState, enc *EncryptionState, mismatched *[]string) (string, error) {
	blobPath := s.ks.pathOf(protectorBlob(string(protect.KindMachine), meta.Generation))
	if !s.ks.files.Exists(blobPath) {
		return "", nil
	}
	key, reason, err := s.ks.trySMKEncryption(protect.KindMachine, meta, st.key)
	if err != nil {
		return "", err
	}
	var km *keyMismatchError
	if reason != nil && errors.As(reason, &km) {
		*mismatched = append(*mismatched, fmt.Sprintf("%s (%s) in its machine encryption", km.got.Thumbprint(), km.got.Algorithm()))
		return "", nil
	}
	what := "opens the service master key"
	if key != nil {
		enc.Valid = true
		st.disowned = blobPath
		if st.key == nil {
			st.key = key
		}
	} else {
		enc.Reason = reason.Error()
		what = "does not open here (" + enc.Reason + ")"
	}
	return fmt.Sprintf("smk.toml says machine protection is off, but the machine encryption %s exists and %s; keytree keeps it: "+
		"run 'keytree smk machine-protection on' to turn machine protection back on, or 'keytree smk machine-protection off' to remove it", blobPath, what), nil
}

// errSMKEncryptionsMissing marks the damage of a keystore whose SMK
// encryptions are all missing: like 15466, something smk restore --force
// can repair.
var errSMKEncryptionsMissing = errors.New("no encryption of the service master key exists")

// missingFileError is the reason an SMK encryption is invalid when its file
// does not exist.
type missingFileError struct{ path string }

func (e *missingFileError) Error() string { return "its file " + e.path + " is missing" }

// trySMKEncryption opens the SMK through one protector. A protector or
// encryption that does not work is a reason (the encryption is invalid); an
// error is something that stops the command, such as loose permissions.
func (ks *Keystore) trySMKEncryption(kind protect.Kind, meta *formats.SMK, known *protect.Key) (*protect.Key, error, error) {
	p, err := ks.protector(kind, createNone)
	var ue *unavailableError
	if errors.As(err, &ue) {
		return nil, ue, nil
	}
	if err != nil {
		return nil, nil, err
	}
	blobPath := ks.pathOf(protectorBlob(string(kind), meta.Generation))
	blob, err := ks.files.ReadFile(blobPath, maxKeyBlobSize)
	if err != nil {
		var ke *Error
		if errors.As(err, &ke) {
			return nil, nil, err
		}
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &missingFileError{blobPath}, nil
		}
		return nil, fmt.Errorf("its file %s cannot be read: %v", blobPath, err), nil
	}
	key, _, err := openKeyFileKnown(p, blob, protect.KindSMK, meta.Thumbprint, known)
	if err != nil {
		var km *keyMismatchError
		if errors.As(err, &km) {
			return nil, err, nil
		}
		if errors.Is(err, protect.ErrDamaged) {
			return nil, fmt.Errorf("its file %s is damaged", blobPath), nil
		}
		if errors.Is(err, protect.ErrDecrypt) {
			return nil, fmt.Errorf("this %s cannot decrypt it", kind), nil
		}
		return nil, fmt.Errorf("it is damaged: %v", err), nil
	}
	if string(key.Algorithm()) != meta.Algorithm {
		return nil, &keyMismatchError{got: key, want: meta.Thumbprint + " (" + meta.Algorithm + ")"}, nil
	}
	return key, nil, nil
}

// writeSMKEncryption (re-)creates the SMK's encryption by one protector,
// making the protector's secrets if needed and as create allows, and checks
// that the new file opens before it replaces the old one.
func (ks *Keystore) writeSMKEncryption(kind protect.Kind, meta *formats.SMK, key *protect.Key, create creation) error {
	p, err := ks.protector(kind, create)
	if err != nil {
		return err
	}
	blob, err := sealKey(p, key, meta.Created)
	if err != nil {
		return err
	}
	if _, _, err := openKeyFile(p, blob, protect.KindSMK, key.Thumbprint()); err != nil {
		return fmt.Errorf("the new %s encryption does not open: %w", kind, err)
	}
	if err := ks.writeFileAtomic(ks.pathOf(protectorBlob(string(kind), meta.Generation)), blob); err != nil {
		return err
	}
	if kind == protect.KindMachine {
		ks.recordMachineCheck(meta)
	}
	return nil
}

// createSMK makes the keystore's first service master key. It refuses if the
// keystore already holds anything an SMK would have protected: then smk.toml
// was lost, and a new key would orphan everything silently.
func (s *session) createSMK(alg protect.Algorithm) (*smkState, error) {
	for _, d := range []string{credentialsDir, databasesDir} {
		entries, err := s.ks.files.ReadDir(s.ks.path(d))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), ".") {
				return nil, corruptf(s.ks.path(smkFile), "is missing, but the keystore holds %s", d)
			}
		}
	}
	key, err := protect.GenerateKey(protect.KindSMK, alg)
	if err != nil {
		return nil, err
	}
	meta := &formats.SMK{
		Version:           s.newFormat(),
		Generation:        1,
		Thumbprint:        key.Thumbprint(),
		Algorithm:         string(alg),
		Created:           s.ks.nowUTC(),
		MachineProtection: true,
	}
	if err := s.ks.files.MkdirPrivate(s.ks.path(smkDir)); err != nil {
		return nil, err
	}
	st := &smkState{meta: meta, key: key}
	for _, pr := range smkProtectors {
		if err := s.ks.writeSMKEncryption(pr.kind, meta, key, s.creation()); err != nil {
			return nil, fmt.Errorf("create the %s encryption of the service master key: %w", pr.kind, err)
		}
		st.encryptions = append(st.encryptions, EncryptionState{Protector: pr.kind, Thumbprint: pr.thumbprint, Enabled: true, Valid: true})
	}
	if err := s.begin().commitSMK(meta, key); err != nil {
		return nil, err
	}
	s.smk = st
	return st, nil
}

// SMKInfo describes the service master key and its encryptions.
type SMKInfo struct {
	Thumbprint        string
	Algorithm         protect.Algorithm
	Generation        int
	Created           string
	MachineProtection bool
	Encryptions       []EncryptionState
}

func (st *smkState) info() *SMKInfo {
	return &SMKInfo{
		Thumbprint:        st.meta.Thumbprint,
		Algorithm:         st.key.Algorithm(),
		Generation:        st.meta.Generation,
		Created:           st.meta.Created.Format("2006-01-02T15:04:05Z07:00"),
		MachineProtection: st.meta.MachineProtection,
		Encryptions:       append([]EncryptionState(nil), st.encryptions...),
	}
}

// VerifySMK opens the SMK, repairing an invalid encryption from the valid
// one, and reports what it found.
func (ks *Keystore) VerifySMK() (*SMKInfo, error) {
	var info *SMKInfo
	err := ks.read("smk verify", func(s *session) error {
		s.fullCheck = true
		st, err := s.openSMK()
		if err != nil {
			return err
		}
		info = st.info()
		return nil
	})
	return info, err
}

// SetMachineProtection turns the SMK's machine encryption off or on (P5).
// Turning it off leaves the account encryption as the only way to open the
// SMK, so keytree refuses unless that encryption works. It reports whether
// anything changed.
//
// Off commits smk.toml first and removes the machine encryption's file
// afterwards, itself: the clean-up never deletes an encryption of the
// current generation because smk.toml says so (collector.referenced). A
// crash in between leaves the file, which the next command reports, and
// running off again removes it, as it removes one that an edit of smk.toml
// left behind.
func (ks *Keystore) SetMachineProtection(on bool) (changed bool, err error) {
	err = ks.write("smk machine-protection", func(s *session) error {
		st, err := s.openSMK()
		if err != nil {
			return err
		}
		blob := s.ks.pathOf(protectorBlob(string(protect.KindMachine), st.meta.Generation))
		// A machine encryption that smk.toml already disowns: off
		// removes it, on replaces it.
		disowned := !st.meta.MachineProtection && s.ks.files.Exists(blob)
		if st.meta.MachineProtection == on && !disowned {
			return nil
		}
		next := *st.meta
		next.MachineProtection = on
		if on {
			// Written (through tmp/) before smk.toml commits: a crash
			// in between leaves a disowned encryption, reported, and
			// used or removed by the next on or off.
			if err := s.ks.writeSMKEncryption(protect.KindMachine, st.meta, st.key, s.creation()); err != nil {
				return err
			}
		} else {
			acct := st.encryptions[0]
			if !acct.Valid && !acct.Recreated {
				return &Error{
					Text:   "the account encryption of the service master key is invalid; turning the machine encryption off would leave no way to open it",
					Remedy: Remedy{Kind: RemedyFixAccountProtector},
					Kind:   ErrRefused,
				}
			}
		}
		if st.meta.MachineProtection != on {
			if err := s.begin().commitSMK(&next, st.key); err != nil {
				return err
			}
			st.meta = &next
		}
		changed = true
		if on {
			return nil
		}
		if err := s.ks.files.RemoveFile(blob); err != nil {
			return err
		}
		return s.ks.files.SyncDir(s.ks.path(smkDir))
	})
	return changed, err
}
