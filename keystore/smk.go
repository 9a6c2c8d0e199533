package keystore

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/keytree-dev/keytree/formats"
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
}

func (ks *Keystore) loadSMKMeta() (*formats.SMK, error) {
	p := ks.path(smkFile)
	data, err := ks.files.readFile(p, formats.MaxMetadataSize)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, ks.fileError(p, err)
	}
	meta, err := formats.DecodeSMK(data)
	if err != nil {
		return nil, errCorrupt(p, err)
	}
	return meta, nil
}

func (ks *Keystore) writeSMKMeta(meta *formats.SMK) error {
	data, err := meta.Encode()
	if err != nil {
		return err
	}
	return ks.writeFileAtomic(ks.path(smkFile), data)
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
		if s.mode != lockExclusive {
			return nil, errNeedsWrite
		}
		return s.createSMK(protect.X25519)
	}
	if err != nil {
		return nil, err
	}
	st := &smkState{meta: meta}
	var mismatched []string
	machineOpened := false
	enabled, missing := 0, 0
	for _, pr := range smkProtectors {
		enc := EncryptionState{Protector: pr.kind, Thumbprint: pr.thumbprint,
			Enabled: pr.kind == protect.KindAccount || meta.MachineProtection}
		// See machinecheck.go: a machine encryption already seen to open,
		// byte for byte the same, is not decrypted again.
		if enc.Enabled && pr.kind == protect.KindMachine && st.key != nil && !s.fullCheck {
			known, err := s.ks.machineCheckValid(meta)
			if err != nil {
				return nil, err
			}
			if known {
				enc.Valid = true
				st.encryptions = append(st.encryptions, enc)
				continue
			}
		}
		if enc.Enabled {
			enabled++
			key, reason, err := s.ks.trySMKEncryption(pr.kind, meta, st.key)
			if err != nil {
				return nil, err
			}
			var mf *missingFileError
			if errors.As(reason, &mf) {
				missing++
			}
			var km *keyMismatchError
			if reason != nil && errors.As(reason, &km) {
				mismatched = append(mismatched, fmt.Sprintf("%s (%s) in its %s encryption",
					km.got.Thumbprint(), km.got.Algorithm(), pr.kind))
			}
			if key != nil {
				enc.Valid = true
				st.key = key
				machineOpened = machineOpened || pr.kind == protect.KindMachine
			} else {
				enc.Reason = reason.Error()
			}
		}
		st.encryptions = append(st.encryptions, enc)
	}
	if len(mismatched) > 0 {
		// An encryption that opens to a key other than the one smk.toml
		// names was never written by keytree: every encryption of one
		// generation holds the same key. The metadata or the file was
		// edited or replaced, and healing would adopt the editor's key
		// (one protector's encryption can be made by anyone who can ask
		// that protector to seal, DPAPI's machine scope for instance).
		// That is damage, reported even when the other encryption opens,
		// and nothing is repaired from it.
		return nil, corruptf(s.ks.path(smkFile), "names service master key %s (%s), but it holds %s",
			meta.Thumbprint, meta.Algorithm, strings.Join(mismatched, " and "))
	}
	if st.key == nil {
		if missing == enabled {
			// No encryption file at all for this generation: smk.toml
			// names files that were never written, or they were deleted.
			// That is damage to the keystore, not a key that no
			// protector can decrypt.
			err := corruptf(s.ks.path(smkFile), "names generation %d, but no encryption of the service master key exists for it in %s",
				meta.Generation, s.ks.path(smkDir)).(*Error)
			err.Err = errSMKEncryptionsMissing
			err.Hint = "restore the service master key from a backup: keytree smk restore --file BACKUP --force"
			return st, err
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
		// The state goes back with the error, for status to show.
		return st, errDecryptionSMK(detail)
	}
	if machineOpened {
		s.ks.recordMachineCheck(meta)
	}
	for i := range st.encryptions {
		e := &st.encryptions[i]
		if !e.Enabled || e.Valid {
			continue
		}
		if s.mode != lockExclusive {
			return nil, errNeedsWrite
		}
		if err := s.ks.writeSMKEncryption(e.Protector, st.meta, st.key); err != nil {
			var ke *Error
			if errors.As(err, &ke) && ke.Kind == ErrPermissions {
				return nil, err
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
	s.smk = st
	return st, nil
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
	p, err := ks.protector(kind, false)
	var ue *unavailableError
	if errors.As(err, &ue) {
		return nil, ue, nil
	}
	if err != nil {
		return nil, nil, err
	}
	blobPath := ks.path(smkDir, protectorBlobName(string(kind), meta.Generation))
	blob, err := ks.files.readFile(blobPath, maxKeyBlobSize)
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
// making the protector's secrets if needed, and checks that the new file
// opens before it replaces the old one.
func (ks *Keystore) writeSMKEncryption(kind protect.Kind, meta *formats.SMK, key *protect.Key) error {
	p, err := ks.protector(kind, true)
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
	if err := ks.writeFileAtomic(ks.path(smkDir, protectorBlobName(string(kind), meta.Generation)), blob); err != nil {
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
		entries, err := s.ks.files.readDir(s.ks.path(d))
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
		Version:           formats.Version,
		Generation:        1,
		Thumbprint:        key.Thumbprint(),
		Algorithm:         string(alg),
		Created:           s.ks.nowUTC(),
		MachineProtection: true,
	}
	if err := s.ks.files.mkdirPrivate(s.ks.path(smkDir)); err != nil {
		return nil, err
	}
	st := &smkState{meta: meta, key: key}
	for _, pr := range smkProtectors {
		if err := s.ks.writeSMKEncryption(pr.kind, meta, key); err != nil {
			return nil, fmt.Errorf("create the %s encryption of the service master key: %w", pr.kind, err)
		}
		st.encryptions = append(st.encryptions, EncryptionState{Protector: pr.kind, Thumbprint: pr.thumbprint, Enabled: true, Valid: true})
	}
	if err := s.ks.writeSMKMeta(meta); err != nil {
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
func (ks *Keystore) SetMachineProtection(on bool) (changed bool, err error) {
	err = ks.write("smk machine-protection", func(s *session) error {
		st, err := s.openSMK()
		if err != nil {
			return err
		}
		if st.meta.MachineProtection == on {
			return nil
		}
		blob := rel(smkDir, protectorBlobName(string(protect.KindMachine), st.meta.Generation))
		if err := s.intend([]string{blob}, nil); err != nil {
			return err
		}
		next := *st.meta
		next.MachineProtection = on
		if on {
			if err := s.ks.writeSMKEncryption(protect.KindMachine, st.meta, st.key); err != nil {
				return err
			}
		} else {
			acct := st.encryptions[0]
			if !acct.Valid && !acct.Recreated {
				return &Error{
					Text: "the account encryption of the service master key is invalid; turning the machine encryption off would leave no way to open it",
					Hint: "fix the account protector first (see keytree status)",
					Kind: ErrRefused,
				}
			}
		}
		if err := s.ks.writeSMKMeta(&next); err != nil {
			return err
		}
		st.meta = &next
		changed = true
		return nil
	})
	return changed, err
}
