package keystore

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"path/filepath"
	"strconv"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/protect"
)

// The machine encryption's check, memoized.
//
// Every command that opens the SMK checks both of its encryptions. The
// account encryption yields the key; checking the machine encryption as well
// costs two X25519 operations (deriving the machine's identity, unwrapping),
// more than a third of a `secret get`. On Unix the machine encryption's
// validity is a pure function of three files: the machine secret, this
// keystore's entropy and the encrypted SMK. So once keytree has seen the
// machine encryption open, it records a SHA-256 fingerprint of exactly those
// bytes (and of the generation and thumbprint) in smk/machine.check; while
// every byte is the same, the encryption is still valid and is not
// decrypted again. Any change (another machine directory, a new secret, a
// damaged or replaced file) changes the fingerprint, and keytree decrypts
// for real, and repairs if needed. smk verify always decrypts.
//
// The fingerprint reveals nothing about the secrets (it is a hash of 288
// random bytes and more). Someone who can write the keystore can make keytree
// believe a damaged machine encryption is valid, which only delays its
// repair: they could as well delete both encryptions.
//
// On Windows the machine's secret is DPAPI's, not a file, so there is no
// fingerprint to take and the encryption is always decrypted (DPAPI costs no
// scalar multiplication anyway).

// maxMachineCheckSize bounds a read of machine.check: a hex digest and a
// newline.
const maxMachineCheckSize = 1024

// machineFingerprint hashes what the machine encryption's validity depends
// on. ok is false where no fingerprint can be taken. Permissions are checked
// as they are when the machine protector is used: a machine directory or
// secret that others can read is an error either way.
func (ks *Keystore) machineFingerprint(meta *formats.SMK) (sum string, ok bool, err error) {
	if protect.MachineSecretName == "" {
		return "", false, nil
	}
	if err := checkOwnDir(ks.outside, ks.machineDir, machineRole); err != nil {
		var ke *Error
		if errors.As(err, &ke) {
			return "", false, err
		}
		return "", false, nil
	}
	h := sha256.New()
	h.Write([]byte("keytree machine check v1\n" + strconv.Itoa(meta.Generation) + "\n" + meta.Thumbprint + "\n"))
	for _, p := range []string{
		filepath.Join(ks.machineDir, protect.MachineSecretName),
		filepath.Join(ks.machineDir, ks.id+".entropy"),
		ks.pathOf(protectorBlob(string(protect.KindMachine), meta.Generation)),
	} {
		data, err := ks.filesFor(p).ReadFile(p, maxKeyBlobSize)
		var ke *Error
		if errors.As(err, &ke) {
			return "", false, err
		}
		if err != nil {
			return "", false, nil
		}
		_ = binary.Write(h, binary.BigEndian, uint64(len(data))) // a hash takes every write
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil)), true, nil
}

// machineCheckValid reports whether the machine encryption is known valid:
// its fingerprint is the one recorded when it was last seen to open.
func (ks *Keystore) machineCheckValid(meta *formats.SMK) (bool, error) {
	sum, ok, err := ks.machineFingerprint(meta)
	if !ok {
		return false, err
	}
	recorded, err := ks.files.ReadFile(ks.path(smkDir, machineCheckFile), maxMachineCheckSize)
	return err == nil && bytes.Equal(bytes.TrimSpace(recorded), []byte(sum)), nil
}

// recordMachineCheck records the fingerprint of a machine encryption that
// keytree has just seen open, or just written. Readers record it too: the
// file's content is a function of the files it describes, so concurrent
// writes of it write the same bytes, each atomically. Failing to record it
// only costs the next command a decryption.
func (ks *Keystore) recordMachineCheck(meta *formats.SMK) {
	sum, ok, _ := ks.machineFingerprint(meta)
	if !ok {
		return
	}
	if recorded, err := ks.files.ReadFile(ks.path(smkDir, machineCheckFile), maxMachineCheckSize); err == nil && bytes.Equal(bytes.TrimSpace(recorded), []byte(sum)) {
		return
	}
	_ = ks.writeFileAtomic(ks.path(smkDir, machineCheckFile), []byte(sum+"\n"))
}
