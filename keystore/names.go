package keystore

import (
	"slices"
	"strings"

	"github.com/keytree-dev/keytree/formats"
)

// CredentialNames, DatabaseNames and SecretNames list names for shell
// completion, from directory listings alone: they read no file's content,
// open no key, take no lock, and never heal, clean up or write anything, so
// that pressing Tab cannot change a keystore or wait for one. Without the
// lock a listing taken while a writer renames files may be a name short or
// one too many, which a completion can afford. Only names that pass
// formats.ValidateName are listed: a file planted in the keystore must not
// put control characters on the terminal through the shell.

// CredentialNames lists the names of the keystore's credentials.
func (ks *Keystore) CredentialNames() ([]string, error) {
	return ks.itemNames(credentialsDir, "credential")
}

// SecretNames lists the names of the secrets of database db.
func (ks *Keystore) SecretNames(db string) ([]string, error) {
	if err := validName("database", db); err != nil {
		return nil, err
	}
	return ks.itemNames(secretsDirOf(db).rel(), "secret")
}

// DatabaseNames lists the names of the keystore's databases: directories
// under databases/ that hold a database.toml.
func (ks *Keystore) DatabaseNames() ([]string, error) {
	var names []string
	err := (&collector{ks: ks}).eachEntry(databasesDir, func(name string, isDir bool) error {
		if isDir && formats.ValidateName("database", name) == nil && ks.files.Exists(ks.pathOf(databaseMeta(name))) {
			names = append(names, name)
		}
		return nil
	})
	slices.Sort(names)
	return names, err
}

// itemNames lists the NAME of every NAME.toml in dir.
func (ks *Keystore) itemNames(dir, what string) ([]string, error) {
	var names []string
	err := (&collector{ks: ks}).eachEntry(dir, func(entry string, isDir bool) error {
		name, ok := strings.CutSuffix(entry, ".toml")
		if !isDir && ok && formats.ValidateName(what, name) == nil {
			names = append(names, name)
		}
		return nil
	})
	slices.Sort(names)
	return names, err
}
