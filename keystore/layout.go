package keystore

import (
	"path/filepath"
	"strconv"
	"strings"

	"github.com/keytree-dev/keytree/formats"
)

// The keystore's layout: every file keytree keeps, as a typed handle, and
// the one mapping between handles and paths (docs/format.md, section 2).
// Code that needs a file of the keystore builds its handle and asks for its
// path; code that finds a file (the clean-up, the keystore backup) parses
// its path back into a handle and decides by kind. No other file builds a
// file name.

// Names of the files and directories in a keystore.
const (
	keystoreFile     = "keystore.toml"
	smkFile          = "smk.toml"
	lockFile         = "lock"
	errorlogFile     = "errorlog"
	errorlogOldFile  = errorlogFile + ".1" // the error log's previous part, after a rotation
	pendingFile      = "pending.toml"
	tmpDir           = "tmp"
	smkDir           = "smk"
	credentialsDir   = "credentials"
	databasesDir     = "databases"
	machineCheckFile = "machine.check"

	// Under databases/DB/.
	databaseFile = "database.toml"
	secretsDir   = "secrets"
)

// fileKind is what a file of the keystore is.
type fileKind uint8

const (
	kindUnknown fileKind = iota // nothing keytree writes

	// At the top of the keystore.
	kindKeystore   // keystore.toml
	kindSMK        // smk.toml
	kindSMKBackups // backups.toml: the SMK's backup records
	kindPending    // pending.toml
	kindLock       // lock
	kindErrorlog   // errorlog and errorlog.1 (name)
	kindTopDir     // tmp/, smk/, credentials/, databases/ (name)

	// Beside what they will replace, or in tmp/.
	kindStaged // tmp/NAME: a directory being built, or one dropped
	kindTemp   // a file of the temporary prefix, in directory dir

	// Under smk/.
	kindMachineCheck // smk/machine.check
	kindProtector    // smk/KIND.G.age: the SMK under protector name, generation gen

	// Under credentials/.
	kindCredential     // credentials/NAME.toml
	kindCredentialBlob // credentials/NAME.R.G.age

	// Under databases/.
	kindDatabaseDir     // databases/DB/
	kindDatabase        // databases/DB/database.toml
	kindDatabaseBackups // databases/DB/backups.toml
	kindPassword        // databases/DB/password.ID.G.age: name is the id
	kindSMKEncryption   // databases/DB/smk.R.G.age: R the DMK's generation, G the SMK's
	kindSecretsDir      // databases/DB/secrets/
	kindSecret          // databases/DB/secrets/NAME.toml
	kindSecretBlob      // databases/DB/secrets/NAME.R.G.age
)

// handle names one file or directory of the keystore. Which fields mean
// something depends on kind: db for everything under databases/DB/ (and
// kindUnknown there, so that the clean-up can tell whose files it is
// looking at), name for items, passwords, protectors and the top-level
// names, rev and gen for blobs, dir for a temporary file.
type handle struct {
	kind fileKind
	db   string
	name string
	rev  int
	gen  int
	dir  string // kindTemp: the slash-separated directory holding it
}

// Handles of the files keytree names.
func credentialMeta(name string) handle { return handle{kind: kindCredential, name: name} }
func credentialBlob(name string, rev, gen int) handle {
	return handle{kind: kindCredentialBlob, name: name, rev: rev, gen: gen}
}
func databaseDir(db string) handle  { return handle{kind: kindDatabaseDir, db: db} }
func databaseMeta(db string) handle { return handle{kind: kindDatabase, db: db} }
func secretsDirOf(db string) handle { return handle{kind: kindSecretsDir, db: db} }
func secretMeta(db, name string) handle {
	return handle{kind: kindSecret, db: db, name: name}
}
func secretBlob(db, name string, rev, gen int) handle {
	return handle{kind: kindSecretBlob, db: db, name: name, rev: rev, gen: gen}
}
func passwordBlob(db, id string, gen int) handle {
	return handle{kind: kindPassword, db: db, name: id, gen: gen}
}

// smkEncryptionBlob is database db's master key of generation dmkGen
// encrypted by the SMK of generation smkGen.
func smkEncryptionBlob(db string, dmkGen, smkGen int) handle {
	return handle{kind: kindSMKEncryption, db: db, name: formats.SMKEncryptionBase, rev: dmkGen, gen: smkGen}
}

// protectorBlob is the SMK of generation gen encrypted by one protector.
func protectorBlob(kind string, gen int) handle {
	return handle{kind: kindProtector, name: kind, gen: gen}
}

// backupsMeta is the backup records of the SMK (db "") or of db's DMK.
func backupsMeta(db string) handle {
	if db == "" {
		return handle{kind: kindSMKBackups}
	}
	return handle{kind: kindDatabaseBackups, db: db}
}

// atGen is the same blob under key generation gen.
func (h handle) atGen(gen int) handle {
	h.gen = gen
	return h
}

// elems is the handle's path in the keystore, element by element.
func (h handle) elems() []string {
	db := func(elem ...string) []string { return append([]string{databasesDir, h.db}, elem...) }
	switch h.kind {
	case kindKeystore:
		return []string{keystoreFile}
	case kindSMK:
		return []string{smkFile}
	case kindSMKBackups:
		return []string{formats.BackupsFile}
	case kindPending:
		return []string{pendingFile}
	case kindLock:
		return []string{lockFile}
	case kindErrorlog, kindTopDir:
		return []string{h.name}
	case kindStaged:
		return []string{tmpDir, h.name}
	case kindTemp:
		return append(strings.Split(h.dir, "/"), h.name)
	case kindMachineCheck:
		return []string{smkDir, machineCheckFile}
	case kindProtector:
		return []string{smkDir, h.name + "." + strconv.Itoa(h.gen) + ".age"}
	case kindCredential:
		return []string{credentialsDir, formats.MetaName(h.name)}
	case kindCredentialBlob:
		return []string{credentialsDir, formats.BlobName(h.name, h.rev, h.gen)}
	case kindDatabaseDir:
		return db()
	case kindDatabase:
		return db(databaseFile)
	case kindDatabaseBackups:
		return db(formats.BackupsFile)
	case kindPassword:
		return db(formats.PasswordBlobName(h.name, h.gen))
	case kindSMKEncryption:
		return db(formats.BlobName(formats.SMKEncryptionBase, h.rev, h.gen))
	case kindSecretsDir:
		return db(secretsDir)
	case kindSecret:
		return db(secretsDir, formats.MetaName(h.name))
	case kindSecretBlob:
		return db(secretsDir, formats.BlobName(h.name, h.rev, h.gen))
	}
	panic("keystore: no path for a handle of kind " + strconv.Itoa(int(h.kind)))
}

// base is the handle's file name, the last element of its path: the name a
// file has in a directory being built elsewhere (tmp/) before it is renamed
// into place.
func (h handle) base() string {
	e := h.elems()
	return e[len(e)-1]
}

// rel is the handle's path relative to the keystore, slash-separated: the
// form pending.toml records.
func (h handle) rel() string { return strings.Join(h.elems(), "/") }

// pathOf is the handle's path on disk.
func (ks *Keystore) pathOf(h handle) string { return ks.path(h.elems()...) }

// dirOf is the directory holding the handle's file, on disk.
func (ks *Keystore) dirOf(h handle) string { return filepath.Dir(ks.pathOf(h)) }

// parseHandle is pathOf's inverse: it says what keytree keeps at rel, a
// slash-separated path relative to the keystore. A name keytree would not
// create is kindUnknown; one under databases/DB/, for a valid DB, keeps db.
func parseHandle(rel string) handle {
	parts := strings.Split(rel, "/")
	name := parts[len(parts)-1]
	if len(parts) > 1 && strings.HasPrefix(name, formats.TempPrefix) {
		h := handle{kind: kindTemp, dir: strings.Join(parts[:len(parts)-1], "/"), name: name}
		if len(parts) >= 3 && parts[0] == databasesDir && formats.ValidateName("database", parts[1]) == nil {
			h.db = parts[1]
		}
		return h
	}
	switch len(parts) {
	case 1:
		switch name {
		case keystoreFile:
			return handle{kind: kindKeystore}
		case smkFile:
			return handle{kind: kindSMK}
		case formats.BackupsFile:
			return handle{kind: kindSMKBackups}
		case pendingFile:
			return handle{kind: kindPending}
		case lockFile:
			return handle{kind: kindLock}
		case errorlogFile, errorlogOldFile:
			return handle{kind: kindErrorlog, name: name}
		case tmpDir, smkDir, credentialsDir, databasesDir:
			return handle{kind: kindTopDir, name: name}
		}
	case 2:
		switch parts[0] {
		case tmpDir:
			return handle{kind: kindStaged, name: name}
		case smkDir:
			if name == machineCheckFile {
				return handle{kind: kindMachineCheck}
			}
			if kind, gen, ok := parseProtectorBlob(name); ok {
				return protectorBlob(kind, gen)
			}
		case credentialsDir:
			if base, ok := strings.CutSuffix(name, ".toml"); ok && formats.ValidateName("credential", base) == nil {
				return credentialMeta(base)
			}
			if base, rev, gen, ok := formats.ParseBlobName(name); ok && formats.ValidateName("credential", base) == nil {
				return credentialBlob(base, rev, gen)
			}
		case databasesDir:
			if formats.ValidateName("database", name) == nil {
				return databaseDir(name)
			}
		}
		return handle{}
	}
	if parts[0] != databasesDir || formats.ValidateName("database", parts[1]) != nil {
		return handle{}
	}
	db := parts[1]
	switch {
	case len(parts) == 3 && name == databaseFile:
		return databaseMeta(db)
	case len(parts) == 3 && name == formats.BackupsFile:
		return backupsMeta(db)
	case len(parts) == 3 && name == secretsDir:
		return secretsDirOf(db)
	case len(parts) == 3:
		if id, gen, ok := formats.ParsePasswordBlobName(name); ok {
			return passwordBlob(db, id, gen)
		}
		if base, rev, gen, ok := formats.ParseBlobName(name); ok && base == formats.SMKEncryptionBase {
			return smkEncryptionBlob(db, rev, gen)
		}
	case len(parts) == 4 && parts[2] == secretsDir:
		if base, ok := strings.CutSuffix(name, ".toml"); ok && formats.ValidateName("secret", base) == nil {
			return secretMeta(db, base)
		}
		if base, rev, gen, ok := formats.ParseBlobName(name); ok && formats.ValidateName("secret", base) == nil {
			return secretBlob(db, base, rev, gen)
		}
	}
	return handle{db: db}
}

// parseProtectorBlob splits the name of an SMK's encryption by a protector:
// KIND.G.age.
func parseProtectorBlob(name string) (kind string, gen int, ok bool) {
	rest, found := strings.CutSuffix(name, ".age")
	if !found {
		return "", 0, false
	}
	kind, g, found := strings.Cut(rest, ".")
	if !found || (kind != "account" && kind != "machine") {
		return "", 0, false
	}
	n, err := strconv.Atoi(g)
	if err != nil || n < 1 || strconv.Itoa(n) != g {
		return "", 0, false
	}
	return kind, n, true
}
