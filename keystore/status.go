package keystore

import (
	"fmt"
	"sort"
	"time"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/protect"
)

// Status describes a keystore.
type Status struct {
	Dir        string
	ID         string
	Created    time.Time
	AccountDir string
	MachineDir string
	SMK        *SMKInfo // nil if the keystore has no SMK yet
	// Credentials, Databases and Secrets count items.
	Credentials int
	Databases   int
	Secrets     int
	Orphans     []OrphanItem
	// Damaged lists the databases whose metadata is lost or damaged; the
	// counts leave them out.
	Damaged []DamagedItem
	// Backups: the newest recorded backup of the SMK in use, then of each
	// database's DMK in use (backups.go).
	Backups []LastBackup
}

// DamagedItem is an item status could not describe.
type DamagedItem struct {
	Item    string // "dmk/DB"
	Problem string
}

// OrphanItem is an item that a --force operation could not re-encrypt: it
// stays on disk, encrypted by the key named here, until a backup of that key
// recovers it.
type OrphanItem struct {
	Item       string // "credential/NAME", ...
	Generation int
	Thumbprint string
}

// Status opens the SMK (repairing an invalid encryption) and describes the
// keystore. If the SMK cannot be opened it returns the status it could
// gather together with the error (15466). A database whose metadata is lost
// or damaged is listed in Damaged, the rest is described, and the error of
// the first such database is returned with the status.
func (ks *Keystore) Status() (*Status, error) {
	var st *Status
	err := ks.read("status", func(s *session) error {
		st = nil
		out := &Status{Dir: ks.dir, ID: ks.id, Created: ks.created, AccountDir: ks.accountDir, MachineDir: ks.machineDir}
		smk, openErr := s.openSMK()
		if openErr != nil && (smk == nil || !isMsg(openErr, MsgDecryption)) {
			// Damage or a refusal: nothing to show that would be true.
			return openErr
		}
		out.SMK = smk.infoFromMeta()
		var damage error
		err := s.eachItem(func(it item) error {
			switch it.kind {
			case "credential":
				out.Credentials++
			case "database":
				out.Databases++
			case "secret":
				out.Secrets++
			}
			if it.orphan != nil && !it.kept {
				out.Orphans = append(out.Orphans, OrphanItem{Item: it.name, Generation: it.orphan.Generation, Thumbprint: it.orphan.Thumbprint})
			}
			return nil
		}, func(db string, err error) error {
			out.Damaged = append(out.Damaged, DamagedItem{Item: "dmk/" + db, Problem: err.Error()})
			if damage == nil {
				damage = err
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := s.ks.backupStatus(out); err != nil {
			return err
		}
		// On 15466 the status is still true, and says which encryption
		// failed; damage is reported after what could be described.
		st = out
		if openErr != nil {
			return openErr
		}
		return damage
	})
	return st, err
}

// backupStatus adds the last backup of each key in use to a status.
func (ks *Keystore) backupStatus(out *Status) error {
	if out.SMK != nil {
		out.Backups = append(out.Backups, ks.lastBackup("smk", "", out.SMK.Thumbprint))
	}
	first := len(out.Backups)
	err := ks.eachDatabase(func(m *formats.Database) error {
		out.Backups = append(out.Backups, ks.lastBackup("dmk/"+m.Name, m.Name, m.Thumbprint))
		return nil
	}, func(string, error) error { return nil }) // listed in Damaged already
	dbs := out.Backups[first:]
	sort.Slice(dbs, func(i, j int) bool { return dbs[i].Key < dbs[j].Key })
	return err
}

func (st *smkState) infoFromMeta() *SMKInfo {
	info := &SMKInfo{
		Thumbprint:        st.meta.Thumbprint,
		Algorithm:         protect.Algorithm(st.meta.Algorithm),
		Generation:        st.meta.Generation,
		Created:           st.meta.Created.Format(time.RFC3339),
		MachineProtection: st.meta.MachineProtection,
		Encryptions:       append([]EncryptionState(nil), st.encryptions...),
	}
	return info
}

// item is one thing a listing walks over: a credential now; databases and
// secrets too once they exist.
type item struct {
	kind   string // "credential", "database", "secret"
	name   string // "credential/NAME"
	orphan *Orphan
	// kept: an encryption of a retired key, kept by --force (orphan names
	// the key); not itself an orphaned value.
	kept bool
	// encrypting key for key-encryptions
	protector  string
	thumbprint string
}

// eachItem walks over every item of the keystore, with its orphan status;
// damaged is as for eachDatabase.
func (s *session) eachItem(fn func(item) error, damaged func(db string, err error) error) error {
	smk, err := s.ks.loadSMKMeta()
	if err != nil && !notExist(err) {
		return err
	}
	if smk != nil {
		g := smkGens(smk)
		err := s.ks.eachCredential(func(m *formats.Credential) error {
			_, orphan, err := s.ks.itemBlob([]string{credentialsDir}, m.Name, m.Revision, g)
			if err != nil {
				return err
			}
			it := item{kind: "credential", name: "credential/" + m.Name, orphan: orphan, protector: "smk", thumbprint: smk.Thumbprint}
			if orphan != nil {
				it.thumbprint = orphan.Thumbprint
			}
			return fn(it)
		})
		if err != nil {
			return err
		}
	}
	return s.eachDatabaseItem(smk, fn, damaged)
}

// KeyEncryption is one row of key-encryptions: one encryption of one key or
// value, as SQL Server's sys.key_encryptions lists them.
type KeyEncryption struct {
	Key           string // "service master key", "credential/NAME", ...
	Thumbprint    string // of what encrypts it: 0x01, 0x03, a master key's thumbprint, or "" for a password
	CryptType     string // ESKM or ESKP
	CryptTypeDesc string
	Protector     string // account, machine, smk, dmk, password
	// State: "valid" (opened just now), "invalid" (did not open), "off"
	// (the machine encryption, turned off), "current" (encrypted under the
	// current master key; not decrypted for this listing), "orphaned", or
	// "kept" (an encryption of a retired key that --force could not open,
	// kept for recover).
	State string
}

const (
	cryptTypeMasterKey = "ESKM"
	cryptTypePassword  = "ESKP"
	descMasterKey      = "ENCRYPTION BY MASTER KEY"
	descPassword       = "ENCRYPTION BY PASSWORD"
)

// KeyEncryptions lists every encryption of every key and value. Opening the
// SMK repairs it as every command does; if it cannot be opened the rows
// still come back, with the error (15466).
func (ks *Keystore) KeyEncryptions() ([]KeyEncryption, error) {
	var rows []KeyEncryption
	err := ks.read("key-encryptions", func(s *session) error {
		rows = nil
		smk, openErr := s.openSMK()
		if smk == nil {
			return openErr
		}
		for _, e := range smk.encryptions {
			state := "valid"
			switch {
			case !e.Enabled:
				state = "off"
			case e.Recreated:
				state = "valid"
			case !e.Valid:
				state = "invalid"
			}
			rows = append(rows, KeyEncryption{Key: "service master key", Thumbprint: e.Thumbprint,
				CryptType: cryptTypeMasterKey, CryptTypeDesc: descMasterKey, Protector: string(e.Protector), State: state})
		}
		// The encryptions --force kept of retired keys, for smk recover.
		for _, r := range smk.meta.Retired {
			for _, kind := range r.Kept {
				tp := AccountThumbprint
				if kind == string(protect.KindMachine) {
					tp = MachineThumbprint
				}
				rows = append(rows, KeyEncryption{Key: fmt.Sprintf("service master key (generation %d)", r.Generation), Thumbprint: tp,
					CryptType: cryptTypeMasterKey, CryptTypeDesc: descMasterKey, Protector: kind, State: "kept"})
			}
		}
		err := s.eachItem(func(it item) error {
			if it.protector == "" {
				return nil
			}
			state := "current"
			if it.orphan != nil {
				state = "orphaned"
			}
			ct, desc := cryptTypeMasterKey, descMasterKey
			if it.protector == string(protect.KindPassword) {
				ct, desc, state = cryptTypePassword, descPassword, "current"
				if it.kept {
					state = "kept"
				}
			}
			rows = append(rows, KeyEncryption{Key: it.name, Thumbprint: it.thumbprint, CryptType: ct, CryptTypeDesc: desc,
				Protector: it.protector, State: state})
			return nil
		}, nil)
		if err != nil {
			return err
		}
		return openErr
	})
	return rows, err
}
