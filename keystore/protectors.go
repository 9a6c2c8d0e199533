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
// as invalid and is re-created once a working protector exists.
type unavailableError struct{ reason string }

func (e *unavailableError) Error() string { return e.reason }

// protector returns the account or machine protector of this keystore. With
// create, a secret that is missing or damaged is made anew; without, that is
// an *unavailableError. Loose permissions are always an error: keytree does
// not use, or silently replace, a secret others may have read.
func (ks *Keystore) protector(kind protect.Kind, create bool) (protect.Protector, error) {
	switch kind {
	case protect.KindAccount:
		return ks.accountProtectorIn(ks.accountDir, create)
	case protect.KindMachine:
		var machineSecret []byte
		if protect.MachineSecretName != "" {
			var err error
			machineSecret, err = ks.protectorSecret(ks.machineDir, protect.MachineSecretName, "machine secret",
				protect.GenerateMachineSecret, protect.CheckMachineSecret, create)
			if err != nil {
				return nil, err
			}
		}
		entropy, err := ks.protectorSecret(ks.machineDir, ks.id+".entropy", "machine entropy of this keystore",
			protect.GenerateEntropy, protect.CheckEntropy, create)
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
	_, err := ks.protectorSecret(dir, protect.AccountSecretName, "account secret",
		protect.GenerateAccountSecret, func(b []byte) (err error) { p, err = protect.Account(b); return err }, create)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// protectorSecret reads dir/name, checking it with valid (which may also
// keep what it parsed: it is called once on the bytes returned). If it is missing
// or invalid and create is set, it makes a new one with generate: a missing
// file is created exclusively (another keytree process, for another keystore,
// may be creating the same account secret at this moment; then its secret is
// used), a damaged one is replaced.
func (ks *Keystore) protectorSecret(dir, name, what string, generate func() ([]byte, error), valid func([]byte) error, create bool) ([]byte, error) {
	path := filepath.Join(dir, name)
	for attempt := 0; ; attempt++ {
		if _, err := os.Stat(dir); err == nil {
			if err := osFiles.checkPrivateDir(dir); err != nil {
				return nil, err
			}
		}
		data, err := osFiles.readFile(path, maxSecretFileSize)
		var ke *Error
		switch {
		case errors.As(err, &ke):
			return nil, err // permissions
		case err == nil:
			if verr := valid(data); verr == nil {
				return data, nil
			} else if !create {
				return nil, &unavailableError{fmt.Sprintf("the %s (%s) is damaged: %v", what, path, verr)}
			}
			// Damaged: replace it.
			fresh, err := generate()
			if err != nil {
				return nil, err
			}
			if err := valid(fresh); err != nil {
				return nil, err
			}
			if err := replaceFileInDir(path, fresh); err != nil {
				return nil, fmt.Errorf("replace the damaged %s: %w", what, err)
			}
			return fresh, nil
		case errors.Is(err, fs.ErrNotExist):
			if !create {
				return nil, &unavailableError{fmt.Sprintf("the %s (%s) does not exist", what, path)}
			}
		default:
			var ce *formats.CorruptError
			if errors.As(err, &ce) && create {
				return nil, fmt.Errorf("the %s (%s) is not a regular file", what, path)
			}
			if !create {
				return nil, &unavailableError{fmt.Sprintf("the %s (%s) cannot be read: %v", what, path, err)}
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
		fresh, err := generate()
		if err != nil {
			return nil, err
		}
		if err := valid(fresh); err != nil {
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

// replaceFileInDir atomically replaces a file outside the keystore, through
// a temporary file in the same directory.
func replaceFileInDir(path string, data []byte) error {
	return osFiles.replaceFile(filepath.Dir(path), path, data)
}
