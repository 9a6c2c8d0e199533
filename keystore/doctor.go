package keystore

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/keystore/internal/fsio"
	"github.com/keytree-dev/keytree/protect"
)

// Diagnosis is what keytree doctor reports about an open keystore.
type Diagnosis struct {
	// SMK describes the service master key and whether each of its
	// encryptions opens it now; nil if the keystore has none, or smk.toml
	// cannot be read (SMKProblem says why).
	SMK        *SMKInfo
	SMKProblem string
	// Credentials, Databases and Secrets count items, as Status does.
	Credentials, Databases, Secrets int
	Orphans                         []OrphanItem
	Damaged                         []DamagedItem
	// NoSMKEncryption lists the databases whose master key has no SMK
	// encryption: every command on them needs its password.
	NoSMKEncryption []string
	// Algorithms lists the algorithms of the SMK and of every DMK, each
	// once, for the tools that must decrypt them to recover by hand.
	Algorithms []protect.Algorithm
	// UnfinishedBatch is the number of items of an import that a keytree
	// stopped while it moved them into place (pending.toml names the
	// batch): the counts may miss some of them, and the next command but
	// doctor finishes it. Zero if there is none.
	UnfinishedBatch int
	// Format is the keystore's format, 1 or 2 (docs/format.md, section
	// 18), as smk.toml says; 0 if smk.toml cannot be read.
	Format int
	// AuthProblem says why a keystore of format 2 is not to be trusted:
	// smk.toml does not verify under the key, or the keystore is older than
	// the account or machine directory remembers. Empty otherwise.
	AuthProblem string
	// ErrorLogSize is the size of the error log, errorlog.1 included.
	ErrorLogSize int64
	// Backups is the newest recorded backup of the SMK in use, then of
	// each database's DMK in use, as Status reports them.
	Backups []LastBackup
}

// Diagnose describes the keystore for keytree doctor. Unlike Status it
// only reads: it takes the shared lock and tries each SMK encryption, but
// never re-creates an invalid one (nor asks for the exclusive lock to do
// so), creates no protector directory or secret, records no machine check,
// writes nothing to the error log, rotates nothing, and does not create an
// SMK for a keystore that has none. What it cannot read it reports in the
// Diagnosis rather than fail on, so that one damaged file does not hide the
// rest (it walks the items as Status does); what stops it is what stops
// every reader: the lock.
func (ks *Keystore) Diagnose() (*Diagnosis, error) {
	l, err := ks.lock(fsio.Shared, ks.lockTimeout)
	if err != nil {
		return nil, err
	}
	defer l.Release()
	d := &Diagnosis{}
	if b := ks.pendingBatch(); b != nil {
		d.UnfinishedBatch = len(b.Items)
	}
	algs := map[protect.Algorithm]bool{}
	addAlg := func(a protect.Algorithm) {
		if !algs[a] {
			algs[a] = true
			d.Algorithms = append(d.Algorithms, a)
		}
	}

	meta, err := ks.loadSMKMeta()
	switch {
	case errors.Is(err, fs.ErrNotExist):
		d.SMKProblem = "the keystore has no service master key yet (the next command that needs one creates it)"
	case err != nil:
		d.SMKProblem = err.Error()
	default:
		var key *protect.Key
		d.SMK, key = ks.checkSMKEncryptions(meta)
		addAlg(protect.Algorithm(meta.Algorithm))
		d.Format = meta.Version
		d.AuthProblem = ks.authProblem(meta, key)
	}

	// The walk status makes, which reads metadata and lists value files
	// only, and records damage rather than stop at it.
	s := &session{ks: ks, mode: fsio.Shared, op: "doctor", work: newScryptWork()}
	st := &Status{Dir: ks.dir, AccountDir: ks.accountDir, MachineDir: ks.machineDir}
	if d.SMK != nil {
		st.Backups = append(st.Backups, ks.lastBackup("smk", "", meta.Thumbprint))
	} else {
		meta = nil
	}
	s.statusCredentials(st, meta)
	s.statusDatabases(st, meta)
	d.Credentials, d.Databases, d.Secrets = st.Credentials, st.Databases, st.Secrets
	d.Orphans, d.Damaged, d.Backups = st.Orphans, st.Damaged, st.Backups
	for _, m := range st.databases {
		if !m.SMKEncryption {
			d.NoSMKEncryption = append(d.NoSMKEncryption, m.Name)
		}
		addAlg(protect.Algorithm(m.Algorithm))
	}

	for _, name := range []string{errorlogFile, errorlogOldFile} {
		if fi, err := ks.files.Lstat(ks.path(name)); err == nil && fi.Mode().IsRegular() {
			d.ErrorLogSize += fi.Size()
		}
	}
	return d, nil
}

// checkSMKEncryptions tries each enabled encryption of the SMK with its
// protector, as openSMK does, and repairs nothing. The machine encryption
// of a keystore whose machine protection is off is reported disabled.
func (ks *Keystore) checkSMKEncryptions(meta *formats.SMK) (*SMKInfo, *protect.Key) {
	info := smkInfoFromMeta(meta)
	var known *protect.Key
	for _, pr := range smkProtectors {
		enc := EncryptionState{Protector: pr.kind, Thumbprint: pr.thumbprint,
			Enabled: pr.kind == protect.KindAccount || meta.MachineProtection}
		if enc.Enabled {
			key, reason, err := ks.trySMKEncryption(pr.kind, meta, known)
			switch {
			case err != nil:
				enc.Reason = err.Error()
			case key != nil:
				enc.Valid, known = true, key
			default:
				enc.Reason = reason.Error()
			}
		}
		info.Encryptions = append(info.Encryptions, enc)
	}
	return info, known
}

// authProblem checks, without writing anything, what openSMK checks of an
// authenticated keystore: smk.toml's MAC under key (if one opened) and the
// commit count against the protector directories.
func (ks *Keystore) authProblem(meta *formats.SMK, key *protect.Key) string {
	if key != nil {
		if err := ks.checkSMKMAC(meta, key); err != nil {
			return err.Error()
		}
	}
	n, from, err := ks.remembered()
	if err != nil {
		return err.Error()
	}
	if meta.Commit < n {
		return fmt.Sprintf("the keystore has been rolled back: smk.toml is at commit %d, but %s remembers commit %d", meta.Commit, from, n)
	}
	return ""
}
