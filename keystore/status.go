package keystore

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
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
	// SMK is what smk.toml says of the service master key, with what
	// opening it found of each encryption (see SMKState). It is nil when
	// smk.toml cannot be read (then Damaged lists it).
	SMK      *SMKInfo
	SMKState SMKState
	// Credentials, Databases and Secrets count the items found, damaged
	// ones included (Damaged says which): a damaged item is still there,
	// and a count that left it out would say it is not.
	Credentials int
	Databases   int
	Secrets     int
	Orphans     []OrphanItem
	// Damaged lists every item status found damaged or could not read,
	// in the order it came upon them.
	Damaged []DamagedItem
	// Backups: the newest recorded backup of the SMK in use, then of each
	// database's DMK in use (backups.go).
	Backups []LastBackup
	// databases holds the metadata of every database read whole, for
	// Diagnose.
	databases []*formats.Database
}

// SMKState is what status could learn of the service master key.
type SMKState string

const (
	// SMKOpen: an encryption opened the key (an invalid one was
	// re-created, or could not be; SMK.Encryptions says which).
	SMKOpen SMKState = "open"
	// SMKInvalid: no encryption opens the key (15466).
	SMKInvalid SMKState = "invalid"
	// SMKUnchecked: smk.toml was read, but the encryptions could not be
	// tried (a damaged or exposed file stopped it; Damaged names it), so
	// SMK.Encryptions is empty.
	SMKUnchecked SMKState = "unchecked"
	// SMKUnreadable: smk.toml is damaged, missing while the keystore
	// holds what an SMK protects, or cannot be read; SMK is nil. (A
	// keystore with no SMK at all gets one when status opens it.)
	SMKUnreadable SMKState = "unreadable"
)

// DamagedItem is an item status found damaged, or could not read.
type DamagedItem struct {
	// Item names it: "smk" (the service master key: smk.toml, its
	// encryptions or a protector secret), "credential/NAME", "dmk/DB",
	// "secret/DB/NAME", or a directory ("credentials", "databases/DB").
	Item string
	// Path is the file or directory found damaged, when known.
	Path string
	// Problem is the error, without the leading path.
	Problem string
	// Err is the error itself, with its kind.
	Err error
}

// OrphanItem is an item that a --force operation could not re-encrypt: it
// stays on disk, encrypted by the key named here, until a backup of that key
// recovers it.
type OrphanItem struct {
	Item       string // "credential/NAME", ...
	Generation int
	Thumbprint string
}

// Status opens the SMK (repairing an invalid encryption, as every command
// does) and describes the keystore. It goes through every item: one that is
// damaged, or cannot be read, is listed in Damaged and the walk goes on, so
// that one bad file hides nothing else. It returns the status whenever it
// could gather one, with an error: 15466 if no SMK encryption opens, else
// the error of the first damaged item. It writes nothing but what opening
// the SMK repairs.
func (ks *Keystore) Status() (*Status, error) {
	var st *Status
	err := ks.read("status", func(s *session) error {
		st = nil
		out := &Status{Dir: ks.dir, ID: ks.id, Created: ks.created, AccountDir: ks.accountDir, MachineDir: ks.machineDir}
		smk, openErr := s.statusSMK(out)
		if errors.Is(openErr, errNeedsWrite) {
			return openErr
		}
		if out.SMK != nil {
			out.Backups = append(out.Backups, s.ks.lastBackup("smk", "", out.SMK.Thumbprint))
		}
		s.statusCredentials(out, smk)
		s.statusDatabases(out, smk)
		st = out
		// Damage first, as status always reported it; then 15466.
		if len(out.Damaged) > 0 {
			return out.Damaged[0].Err
		}
		return openErr
	})
	return st, err
}

// damaged records what status found wrong with an item.
func (out *Status) damaged(item, path string, err error) {
	problem := err.Error()
	var ke *Error
	if errors.As(err, &ke) {
		problem = ke.Text
	}
	if path == "" {
		path = leadingPath(problem, out.Dir, out.AccountDir, out.MachineDir)
	}
	if path != "" {
		if rest, ok := strings.CutPrefix(problem, path); ok && (rest == "" || rest[0] == ':' || rest[0] == ' ') {
			problem = strings.TrimLeft(rest, ": ")
		}
	}
	out.Damaged = append(out.Damaged, DamagedItem{Item: item, Path: path, Problem: problem, Err: err})
}

// leadingPath returns the path an error text starts with, if it starts
// with one of keytree's directories: the damaged file of an error that
// comes from deeper down.
func leadingPath(text string, dirs ...string) string {
	for _, d := range dirs {
		if d == "" || !strings.HasPrefix(text, d) {
			continue
		}
		rest := text[len(d):]
		if rest != "" && rest[0] != filepath.Separator && rest[0] != '/' && rest[0] != ':' && rest[0] != ' ' {
			continue
		}
		if i := strings.IndexAny(rest, ": "); i >= 0 {
			rest = rest[:i]
		}
		return d + rest
	}
	return ""
}

// statusSMK describes the SMK in out and returns smk.toml's contents for
// the walk over the items (nil if it cannot be read), and 15466 if no
// encryption opens the key. Any other failure is damage, recorded in out.
func (s *session) statusSMK(out *Status) (*formats.SMK, error) {
	smk, openErr := s.openSMK()
	switch {
	case openErr == nil:
		out.SMK, out.SMKState = smk.infoFromMeta(), SMKOpen
		return smk.meta, nil
	case errors.Is(openErr, errNeedsWrite):
		return nil, openErr
	}
	// What stopped the opening: smk.toml itself, or what it names.
	meta, err := s.ks.loadSMKMeta()
	if err != nil && !notExist(err) {
		out.SMKState = SMKUnreadable
		out.damaged("smk", s.ks.path(smkFile), err)
		return nil, nil
	}
	switch {
	case meta == nil:
		// No smk.toml, and openSMK could not create one: the keystore
		// holds what an SMK protected (createSMK says so).
		out.SMKState = SMKUnreadable
		out.damaged("smk", s.ks.path(smkFile), openErr)
		return nil, nil
	case smk != nil && isMsg(openErr, MsgDecryption):
		// 15466: the state says why each encryption failed.
		out.SMK, out.SMKState = smk.infoFromMeta(), SMKInvalid
		return meta, openErr
	case smk != nil:
		// Every encryption file is missing: what opening found is
		// still true.
		out.SMK, out.SMKState = smk.infoFromMeta(), SMKInvalid
		out.damaged("smk", "", openErr)
		return meta, nil
	default:
		// A protector secret or encryption that stopped the opening
		// (loose permissions, a damaged secret): smk.toml is still true.
		out.SMK, out.SMKState = smkInfoFromMeta(meta), SMKUnchecked
		out.damaged("smk", "", openErr)
		return meta, nil
	}
}

// statusCredentials counts the credentials and finds their orphans and
// damage. Without smk.toml (smk nil) a credential's value file cannot be
// named, so only its metadata is checked.
func (s *session) statusCredentials(out *Status, smk *formats.SMK) {
	c := &collector{ks: s.ks}
	err := c.eachEntry(credentialsDir, func(name string, isDir bool) error {
		base, ok := strings.CutSuffix(name, ".toml")
		if isDir || !ok || strings.HasPrefix(name, ".") {
			return nil
		}
		p := s.ks.path(credentialsDir, name)
		if err := formats.ValidateName("credential", base); err != nil {
			out.damaged(rel(credentialsDir, name), p, corruptf(p, "is not a credential's file: %v", err))
			return nil
		}
		out.Credentials++
		m, err := s.ks.credentialMeta(base)
		if err != nil {
			out.damaged("credential/"+base, p, err)
			return nil
		}
		if smk == nil {
			return nil
		}
		blob, orphan, err := s.ks.itemBlob(credentialBlob(m.Name, m.Revision, 0), smkGens(smk))
		if err != nil {
			out.damaged("credential/"+m.Name, blob, err)
			return nil
		}
		if orphan != nil {
			out.Orphans = append(out.Orphans, OrphanItem{Item: "credential/" + m.Name, Generation: orphan.Generation, Thumbprint: orphan.Thumbprint})
		}
		if _, err := s.ks.checkItemRollback(authenticated(smk), "", m.Name, m.Commit); err != nil {
			out.damaged("credential/"+m.Name, p, err)
		}
		return nil
	})
	if err != nil {
		out.damaged(credentialsDir, s.ks.path(credentialsDir), err)
	}
}

// statusDatabases counts the databases and their secrets and finds their
// orphans and damage. A database whose database.toml is lost or damaged is
// counted, and listed; its secrets are counted and their metadata checked,
// but their value files cannot be named without the database's metadata.
func (s *session) statusDatabases(out *Status, smk *formats.SMK) {
	c := &collector{ks: s.ks}
	firstBackup := len(out.Backups)
	err := c.eachEntry(databasesDir, func(db string, isDir bool) error {
		if !isDir || strings.HasPrefix(db, ".") {
			return nil
		}
		p := s.ks.path(databasesDir, db)
		if err := formats.ValidateName("database", db); err != nil {
			out.damaged(databaseDir(db).rel(), p, corruptf(p, "is not a database: %v", err))
			return nil
		}
		metaPath := s.ks.pathOf(databaseMeta(db))
		m, err := s.ks.loadDatabaseMeta(db)
		if notExist(err) {
			lost, lerr := s.ks.lostDatabase(db)
			switch {
			case lerr != nil:
				err = lerr
			case !lost:
				return nil // an empty directory is no database
			default:
				err, metaPath = s.ks.errLostDatabase(db), p
			}
		}
		if err == nil && m.Name != db {
			err = corruptf(metaPath, "names database %q", m.Name)
		}
		out.Databases++
		if err != nil {
			out.damaged("dmk/"+db, metaPath, err)
			s.statusSecrets(out, db, nil)
			return nil
		}
		if m.SMKEncryption && smk != nil {
			blob, orphan, err := s.ks.itemBlob(smkEncryptionBlob(db, m.Generation, 0), smkGens(smk))
			if err != nil {
				out.damaged("dmk/"+db, blob, err)
			} else if orphan != nil {
				out.Orphans = append(out.Orphans, OrphanItem{Item: "dmk/" + db, Generation: orphan.Generation, Thumbprint: orphan.Thumbprint})
			}
		}
		if _, err := s.ks.databaseRollback(m); err != nil {
			out.damaged("dmk/"+db, metaPath, err)
		}
		out.databases = append(out.databases, m)
		out.Backups = append(out.Backups, s.ks.lastBackup("dmk/"+db, db, m.Thumbprint))
		s.statusSecrets(out, db, m)
		return nil
	})
	if err != nil {
		out.damaged(databasesDir, s.ks.path(databasesDir), err)
	}
	dbs := out.Backups[firstBackup:]
	sort.Slice(dbs, func(i, j int) bool { return dbs[i].Key < dbs[j].Key })
}

// statusSecrets counts a database's secrets and finds their orphans and
// damage; m is nil when the database's metadata cannot be read.
func (s *session) statusSecrets(out *Status, db string, m *formats.Database) {
	c := &collector{ks: s.ks}
	err := c.eachEntry(secretsDirOf(db).rel(), func(name string, isDir bool) error {
		base, ok := strings.CutSuffix(name, ".toml")
		if isDir || !ok || strings.HasPrefix(name, ".") {
			return nil
		}
		p := s.ks.dbPath(db, secretsDir, name)
		if err := formats.ValidateName("secret", base); err != nil {
			out.damaged(rel(databasesDir, db, secretsDir, name), p, corruptf(p, "is not a secret's file: %v", err))
			return nil
		}
		out.Secrets++
		item := "secret/" + db + "/" + base
		sm, err := s.ks.secretMeta(db, base)
		if err != nil {
			out.damaged(item, p, err)
			return nil
		}
		if m == nil {
			return nil
		}
		blob, orphan, err := s.ks.itemBlob(secretBlob(db, sm.Name, sm.Revision, 0), dmkGens(m))
		if err != nil {
			out.damaged(item, blob, err)
		} else if orphan != nil {
			out.Orphans = append(out.Orphans, OrphanItem{Item: item, Generation: orphan.Generation, Thumbprint: orphan.Thumbprint})
		}
		if _, err := s.ks.checkItemRollback(dbAuthenticated(m), db, sm.Name, sm.Commit); err != nil {
			out.damaged(item, p, err)
		}
		return nil
	})
	if err != nil {
		out.damaged(secretsDirOf(db).rel(), s.ks.pathOf(secretsDirOf(db)), err)
	}
}

func (st *smkState) infoFromMeta() *SMKInfo {
	info := smkInfoFromMeta(st.meta)
	info.Encryptions = append([]EncryptionState(nil), st.encryptions...)
	return info
}

// smkInfoFromMeta is what smk.toml says of the SMK, with no encryption
// checked.
func smkInfoFromMeta(meta *formats.SMK) *SMKInfo {
	return &SMKInfo{
		Thumbprint:        meta.Thumbprint,
		Algorithm:         protect.Algorithm(meta.Algorithm),
		Generation:        meta.Generation,
		Created:           meta.Created.Format(time.RFC3339),
		MachineProtection: meta.MachineProtection,
	}
}

// item is one thing keytree key-encryptions walks over: a credential's
// value, a database master key and its encryptions, a secret's value.
type item struct {
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
			_, orphan, err := s.ks.itemBlob(credentialBlob(m.Name, m.Revision, 0), g)
			if err != nil {
				return err
			}
			it := item{name: "credential/" + m.Name, orphan: orphan, protector: "smk", thumbprint: smk.Thumbprint}
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
