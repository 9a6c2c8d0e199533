package keystore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/keystore/internal/fsio"
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

// creation says what keytree may create when a protector's secret is
// missing.
//
// A protector directory is named by an environment variable or derived from
// HOME, and both go wrong quietly: a typo in KEYTREE_ACCOUNT_DIR, or HOME
// pointing at another account, names a directory that holds no secret. Were
// keytree to create one there, a read-only command would make a new secret
// and move the SMK's encryption to it, and the user would find out only when
// the real directory no longer opened the keystore. So a directory is
// created only where the user asked for one: keytree init,
// --create-protector-dirs, and smk alter --new-account-dir. Everywhere else a
// missing directory leaves that protector's encryption invalid (and noted),
// and the other protector opens the key.
//
// A directory that exists is the user's statement that this is where the
// secret goes: the machine directory of a machine that already ran keytree
// init, say. A missing secret file is created in it, so that a keystore
// copied to that machine heals its machine encryption on first use (P1),
// and another account's existing directory heals the account encryption
// (P2).
type creation int

const (
	// createNone: a missing secret is an *unavailableError.
	createNone creation = iota
	// createFile: a missing secret file is created, in a directory that
	// exists and belongs to the account running keytree.
	createFile
	// createDir: the directory (and its parents) too.
	createDir
)

// repairCreation is what a repair or a new SMK encryption may create:
// directories only when the user asked for them.
func (ks *Keystore) repairCreation() creation {
	if ks.createProtectorDirs {
		return createDir
	}
	return createFile
}

// protectorDir returns the directory of kind's secrets and what to call it.
func (ks *Keystore) protectorDir(kind protect.Kind) (dir, what string) {
	if kind == protect.KindMachine {
		return ks.machineDir, "machine directory"
	}
	return ks.accountDir, "account directory"
}

// errNoProtectorDir marks a protector directory that does not exist and
// that keytree was not asked to create.
var errNoProtectorDir = errors.New("protector directory missing")

// missingDirError is the error for a protector directory that does not
// exist when keytree may not create it.
func missingDirError(dir, what string) *Error {
	return &Error{
		Text:   fmt.Sprintf("the %s %s does not exist, and keytree creates one only at init or when given --create-protector-dirs", what, dir),
		Remedy: Remedy{Kind: RemedyCreateProtectorDirs},
		Kind:   ErrNotFound,
		Err:    errNoProtectorDir,
	}
}

// missingProtectorDir returns a missingDirError if kind's directory does
// not exist and repairs may not create it, so that a reader can note an
// encryption it cannot repair without taking the exclusive lock.
func (ks *Keystore) missingProtectorDir(kind protect.Kind, create creation) error {
	if create == createDir {
		return nil
	}
	dir, what := ks.protectorDir(kind)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return missingDirError(dir, what)
	}
	return nil
}

// protector returns the account or machine protector of this keystore. A
// secret that is missing is made anew as create allows (see creation);
// otherwise that is an *unavailableError. A secret that exists but is
// damaged is never replaced: when keytree would create one, it is an error
// (ErrCorrupt) naming the file. Loose permissions are always an error:
// keytree does not use, or silently replace, a secret others may have read.
func (ks *Keystore) protector(kind protect.Kind, create creation) (protect.Protector, error) {
	switch kind {
	case protect.KindAccount:
		return ks.accountProtectorIn(ks.accountDir, create)
	case protect.KindMachine:
		var machineSecret []byte
		if protect.MachineSecretName != "" {
			var err error
			machineSecret, err = ks.protectorSecret(secretFile{
				dir: ks.machineDir, role: machineRole, name: protect.MachineSecretName, what: "machine secret",
				loses:    "the machine encryption of every keystore on this machine",
				generate: protect.GenerateMachineSecret, valid: protect.CheckMachineSecret,
			}, create)
			if err != nil {
				return nil, err
			}
		}
		entropy, err := ks.protectorSecret(secretFile{
			dir: ks.machineDir, role: machineRole, name: ks.id + ".entropy", what: "machine entropy of this keystore",
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
func (ks *Keystore) accountProtectorIn(dir string, create creation) (protect.Protector, error) {
	var p protect.Protector
	_, err := ks.protectorSecret(secretFile{
		dir: dir, role: accountRole, name: protect.AccountSecretName, what: "account secret",
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
	role      dirRole // the directory it is kept in: accountRole or machineRole
	what      string  // "account secret", ...
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
// where creation allows, is made with f.generate and created exclusively
// (another keytree process, for another keystore, may be creating the same
// account secret at this moment; then its secret is used). A file that
// exists but is not valid is never replaced (see damaged).
func (ks *Keystore) protectorSecret(f secretFile, creation creation) ([]byte, error) {
	dir, what := f.dir, f.what
	create := creation != createNone
	path := filepath.Join(dir, f.name)
	for attempt := 0; ; attempt++ {
		if _, err := os.Stat(dir); err == nil {
			if err := checkOwnDir(ks.outside, dir, f.role); err != nil {
				return nil, err
			}
		}
		data, err := ks.outside.ReadFile(path, maxSecretFileSize)
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
		if err := checkSecretDir(dir, f.role.dir.String(), creation); err != nil {
			return nil, err
		}
		if err := ks.outside.MkdirPrivate(dir); err != nil {
			return nil, fmt.Errorf("create %s: %w", dir, err)
		}
		if err := checkOwnDir(ks.outside, dir, f.role); err != nil {
			return nil, err
		}
		fresh, err := f.generate()
		if err != nil {
			return nil, err
		}
		if err := f.valid(fresh); err != nil {
			return nil, err
		}
		err = ks.outside.CreateFileAtomic(path, fresh)
		if err == nil {
			return fresh, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("create the %s: %w", what, err)
		}
		// Someone else created it first: use theirs.
	}
}

// checkSecretDir decides whether a new protector secret may go in dir: it
// must exist unless creation allows a new directory, and an existing one
// must belong to the account running keytree. A secret written into another
// account's directory (root with HOME pointing at a user's home) would
// belong to the wrong account, and the directory's owner could replace it.
func checkSecretDir(dir, what string, creation creation) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if creation == createDir {
			return nil
		}
		return missingDirError(dir, what)
	}
	if err != nil {
		return err
	}
	if uid, ok := fsio.FileOwner(fi); ok && uid != os.Geteuid() {
		return &Error{
			Text:   fmt.Sprintf("the %s %s belongs to %s, not to %s, which runs keytree; keytree does not create a secret there", what, dir, ownerName(uid), ownerName(os.Geteuid())),
			Remedy: Remedy{Kind: RemedyProtectorDirOwner},
			Kind:   ErrRefused,
		}
	}
	return nil
}
