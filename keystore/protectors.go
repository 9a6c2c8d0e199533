package keystore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/protect"
)

// unavailableError says why a protector cannot be used right now: its secret
// is missing, damaged or out of reach. The SMK encryption it protects counts
// as invalid and is re-created once a working protector exists. damage, if
// set, is what to report should keytree need that protector's secret: a file
// that is there but does not parse, which keytree never replaces.
type unavailableError struct {
	reason string
	damage *Error
}

func (e *unavailableError) Error() string { return e.reason }

// protector returns the account or machine protector of this keystore. With
// create, a secret that is missing is made anew; without, that is an
// *unavailableError. A secret that exists but is damaged is never replaced:
// with create it is an error (ErrCorrupt) naming the file. Loose permissions
// are always an error: keytree does not use, or silently replace, a secret
// others may have read.
func (ks *Keystore) protector(kind protect.Kind, create bool) (protect.Protector, error) {
	switch kind {
	case protect.KindAccount:
		return ks.accountProtectorIn(ks.accountDir, create)
	case protect.KindMachine:
		var machineSecret []byte
		if protect.MachineSecretName != "" {
			var err error
			machineSecret, err = ks.protectorSecret(secretFile{
				dir: ks.machineDir, name: protect.MachineSecretName, what: "machine secret",
				loses:    "the machine encryption of every keystore on this machine",
				generate: protect.GenerateMachineSecret, valid: protect.CheckMachineSecret,
			}, create)
			if err != nil {
				return nil, err
			}
		}
		entropy, err := ks.protectorSecret(secretFile{
			dir: ks.machineDir, name: ks.id + ".entropy", what: "machine entropy of this keystore",
			loses:    "this keystore's machine encryption",
			generate: protect.GenerateEntropy, valid: protect.CheckEntropy,
		}, create)
		if err != nil {
			return nil, err
		}
		return protect.Machine(machineSecret, entropy)
	}
	return nil, fmt.Errorf("unknown protector %q", kind)
}

// accountProtectorIn returns the account protector whose secret is in dir:
// the current account's, or another's for smk alter.
func (ks *Keystore) accountProtectorIn(dir string, create bool) (protect.Protector, error) {
	var p protect.Protector
	_, err := ks.protectorSecret(secretFile{
		dir: dir, name: protect.AccountSecretName, what: "account secret",
		loses:    "the account encryption of every keystore that uses it",
		generate: protect.GenerateAccountSecret,
		valid:    func(b []byte) (err error) { p, err = protect.Account(b); return err },
	}, create)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// secretFile is one protector secret kept outside the keystore.
type secretFile struct {
	dir, name string
	what      string // "account secret", ...
	// loses says which encryptions a new secret in its place would
	// invalidate, for the hint of a damaged one.
	loses string
	// generate makes a new secret; valid checks one (and may keep what it
	// parsed: it is called once on the bytes protectorSecret returns).
	generate func() ([]byte, error)
	valid    func([]byte) error
}

// damaged is the error for a secret file that exists but is not a secret.
//
// keytree never replaces such a file. The account and machine secrets are
// shared by every keystore of the account or machine: a new one in their
// place would invalidate that protector's encryption in all of them, and a
// keystore whose only valid encryption it was (machine protection off, or
// its machine encryption lost too) would be lost with it. A damaged file may
// also be a transient state (a restore from backup in progress, a network
// home directory half-mounted) that is better waited out than overwritten.
// So it is damage, reported with what to do; moving the file aside is the
// user's decision, after which keytree creates a new secret as for a missing
// one.
func (f secretFile) damaged(path, why string) *Error {
	return &Error{
		Text: fmt.Sprintf("the %s %s is damaged (%s); keytree does not replace it", f.what, path, why),
		Hint: fmt.Sprintf("restore %s from a backup; or, to give up on it, move it aside (rename it to %s.damaged) and keytree creates a new one, which invalidates %s",
			path, filepath.Base(path), f.loses),
		Kind: ErrCorrupt,
		Err:  errSecretDamaged,
	}
}

// errSecretDamaged marks the report of a damaged protector secret.
var errSecretDamaged = errors.New("protector secret damaged")

// protectorSecret reads f's file and checks it with f.valid. A missing file,
// with create, is made with f.generate and created exclusively (another
// keytree process, for another keystore, may be creating the same account
// secret at this moment; then its secret is used). A file that exists but is
// not valid is never replaced (see damaged).
func (ks *Keystore) protectorSecret(f secretFile, create bool) ([]byte, error) {
	dir, what := f.dir, f.what
	path := filepath.Join(dir, f.name)
	for attempt := 0; ; attempt++ {
		if _, err := os.Stat(dir); err == nil {
			if err := osFiles.checkPrivateDir(dir); err != nil {
				return nil, err
			}
		}
		data, err := osFiles.readFile(path, maxSecretFileSize)
		var ke *Error
		var ce *formats.CorruptError
		switch {
		case errors.As(err, &ke):
			return nil, err // permissions
		case err == nil:
			verr := f.valid(data)
			if verr == nil {
				return data, nil
			}
			damage := f.damaged(path, verr.Error())
			if !create {
				return nil, &unavailableError{fmt.Sprintf("the %s (%s) is damaged: %v", what, path, verr), damage}
			}
			return nil, damage
		case errors.As(err, &ce):
			// Not a regular file, or too large: damaged too.
			damage := f.damaged(path, ce.Reason)
			if !create {
				return nil, &unavailableError{fmt.Sprintf("the %s (%s) cannot be read: %v", what, path, err), damage}
			}
			return nil, damage
		case errors.Is(err, fs.ErrNotExist):
			if !create {
				return nil, &unavailableError{reason: fmt.Sprintf("the %s (%s) does not exist", what, path)}
			}
		default:
			if !create {
				return nil, &unavailableError{reason: fmt.Sprintf("the %s (%s) cannot be read: %v", what, path, err)}
			}
			return nil, fmt.Errorf("read the %s: %w", what, err)
		}
		if attempt > 0 {
			return nil, fmt.Errorf("the %s (%s) keeps changing", what, path)
		}
		if err := osFiles.mkdirPrivate(dir); err != nil {
			return nil, fmt.Errorf("create %s: %w", dir, err)
		}
		if err := osFiles.checkPrivateDir(dir); err != nil {
			return nil, err
		}
		fresh, err := f.generate()
		if err != nil {
			return nil, err
		}
		if err := f.valid(fresh); err != nil {
			return nil, err
		}
		err = osFiles.createFileAtomic(path, fresh)
		if err == nil {
			return fresh, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("create the %s: %w", what, err)
		}
		// Someone else created it first: use theirs.
	}
}
