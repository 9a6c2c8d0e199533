package formats

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Database is databases/DB/database.toml: a database's master key (DMK)
// metadata and the commit point of every DMK operation. The DMK's encryptions
// are databases/DB/password.ID.G.age, one per password, and
// databases/DB/smk.G.S.age, its encryption by the SMK of generation S, where
// G is the DMK's Generation. Its secrets are databases/DB/secrets/NAME.toml
// and NAME.R.G.age.
type Database struct {
	Version       int                  `toml:"version"`
	Name          string               `toml:"name"`
	Generation    int                  `toml:"generation"`
	Thumbprint    string               `toml:"thumbprint"`
	Algorithm     string               `toml:"algorithm"`
	Created       time.Time            `toml:"created"`
	SMKEncryption bool                 `toml:"smk_encryption"`
	Passwords     []PasswordEncryption `toml:"password"`
	Retired       []Retired            `toml:"retired,omitempty"`
	// FormerNames (format 2) are the names the database had before db
	// import gave it this one, newest last: its orphans, which the import
	// could not bind again, are bound to one of them.
	FormerNames []string `toml:"former_names,omitempty"`
	// Commit (format 2) is the keystore's commit count when this
	// database.toml was written and signed; smk.toml holds the lowest it
	// may be (SMK.Databases).
	Commit int `toml:"commit,omitempty"`
	// PasswordOnly (format 2, signed) says that the key is opened by a
	// password only: database.toml was last signed without an SMK
	// encryption (dropped, never made, or not carried by db import). An
	// SMK encryption put back is then never used, whatever SMKEncryption
	// says; only adding one again, which signs, clears it.
	PasswordOnly bool `toml:"password_only,omitempty"`
	// MAC (format 2) authenticates every other field but SMKEncryption,
	// under a key derived from the DMK (keystore/auth.go). SMKEncryption
	// is left out because db import turns it off without the DMK; an edit
	// of it can only make keytree ask for a password, or look for an SMK
	// encryption that must then open, to this database's key, and that
	// PasswordOnly does not forbid.
	MAC string `toml:"mac,omitempty"`
}

// AuthData is what database.toml's MAC covers: every field but the MAC and
// smk_encryption (authData).
func (d *Database) AuthData() ([]byte, error) {
	b := authData(nil, "database.toml", "version", d.Version, "name", d.Name, "generation", d.Generation,
		"thumbprint", d.Thumbprint, "algorithm", d.Algorithm, "created", d.Created, "commit", d.Commit)
	for _, p := range d.Passwords {
		b = authData(b, "password", "id", p.ID, "created", p.Created, "tag", p.Tag)
	}
	for _, n := range d.FormerNames {
		b = authData(b, "former", "name", n)
	}
	// Covered only when set, so that the MACs made before the field
	// existed still verify.
	if d.PasswordOnly {
		b = authData(b, "password_only", "set", true)
	}
	return authRetired(b, d.Retired), nil
}

// PasswordEncryption is one encryption of a DMK by a password. A password is
// identified by the password itself (keytree tries each encryption); the id
// only names the file. Tag, if set, is "LOGN:TAG": a password tag
// (protect.Password.Tag) at scrypt work factor LOGN, 16 hex digits, that
// says which password opens the encryption. Keytree before tags wrote none,
// and an entry without one is tried like any other.
type PasswordEncryption struct {
	ID      string    `toml:"id"` // 16 hex digits
	Created time.Time `toml:"created"`
	Tag     string    `toml:"tag,omitempty"`
}

// PasswordTag makes a PasswordEncryption's Tag.
func PasswordTag(logN int, tag string) string { return fmt.Sprintf("%d:%s", logN, tag) }

// ParseTag splits the entry's Tag; ok is false if it has none.
func (p PasswordEncryption) ParseTag() (logN int, tag string, ok bool) {
	n, tag, found := strings.Cut(p.Tag, ":")
	if !found || len(n) == 0 || len(n) > 2 || n[0] == '0' || !isHex(tag, 16) {
		return 0, "", false
	}
	logN, err := strconv.Atoi(n)
	if err != nil || logN < 1 || logN > 30 {
		return 0, "", false
	}
	return logN, tag, true
}

// MaxPasswords bounds a DMK's password encryptions.
const MaxPasswords = 64

func (d *Database) Validate() error {
	if err := checkAuthVersion(d.Version, d.MAC); err != nil {
		return err
	}
	if err := ValidateName("database", d.Name); err != nil {
		return corrupt("%s", err.Error())
	}
	if d.Commit < 0 || d.Commit > MaxRevision || d.Version != Authenticated && d.Commit != 0 {
		return corrupt("commit %d is out of range for format version %d", d.Commit, d.Version)
	}
	if d.PasswordOnly && (d.Version != Authenticated || d.SMKEncryption) {
		return corrupt("password_only is set, yet smk_encryption is true or the format is not 2")
	}
	if err := checkKeyFields(d.Generation, d.Thumbprint, d.Algorithm); err != nil {
		return err
	}
	// P9: a DMK always keeps a password encryption.
	if len(d.Passwords) == 0 {
		return corrupt("the database master key has no password encryption")
	}
	if len(d.Passwords) > MaxPasswords {
		return corrupt("more than %d password encryptions", MaxPasswords)
	}
	seen := map[string]bool{}
	for _, p := range d.Passwords {
		if !isHex(p.ID, 16) || seen[p.ID] {
			return corrupt("password encryption id %q is not 16 hex digits, or repeats", p.ID)
		}
		if _, _, ok := p.ParseTag(); p.Tag != "" && !ok {
			return corrupt("password encryption %s has tag %q, not a work factor and 16 hex digits", p.ID, p.Tag)
		}
		seen[p.ID] = true
	}
	if len(d.FormerNames) > MaxFormerNames {
		return corrupt("more than %d former names", MaxFormerNames)
	}
	for _, n := range d.FormerNames {
		if err := ValidateName("database", n); err != nil {
			return corrupt("former name: %s", err.Error())
		}
	}
	return checkRetired(d.Retired, d.Generation, func(id string) bool { return isHex(id, 16) })
}

// MaxFormerNames bounds a database's former names.
const MaxFormerNames = 64

func DecodeDatabase(data []byte) (*Database, error) {
	var d Database
	return &d, decode(data, &d, "version", "name", "generation", "thumbprint", "algorithm", "created", "smk_encryption", "password")
}

func (d *Database) Encode() ([]byte, error) { return encode(d) }

// PasswordBlobName is the file of one password encryption of a DMK.
func PasswordBlobName(id string, gen int) string {
	return fmt.Sprintf("password.%s.%d.age", id, gen)
}

// ParsePasswordBlobName splits a name made by PasswordBlobName.
func ParsePasswordBlobName(name string) (id string, gen int, ok bool) {
	rest, found := cutPrefixSuffix(name, "password.", ".age")
	if !found || len(rest) < 18 || rest[16] != '.' || !isHex(rest[:16], 16) {
		return "", 0, false
	}
	n, err := parseCounter(rest[17:])
	if err != nil {
		return "", 0, false
	}
	return rest[:16], n, true
}

func cutPrefixSuffix(s, prefix, suffix string) (string, bool) {
	if len(s) < len(prefix)+len(suffix) || s[:len(prefix)] != prefix || s[len(s)-len(suffix):] != suffix {
		return "", false
	}
	return s[len(prefix) : len(s)-len(suffix)], true
}

// SMKEncryptionBase is the base name of a DMK's encryption by the SMK:
// smk.G.S.age, where G (the "revision") is the DMK's generation and S the
// SMK's.
const SMKEncryptionBase = "smk"

// Secret is databases/DB/secrets/NAME.toml. The value is NAME.R.G.age:
// revision R, encrypted by the DMK of generation G.
type Secret struct {
	Version  int       `toml:"version"`
	Name     string    `toml:"name"`
	Revision int       `toml:"revision"`
	Created  time.Time `toml:"created"`
	Updated  time.Time `toml:"updated"`
	// Commit (format 2) is as a credential's: the keystore's commit count
	// when this value was written, bound to the value.
	Commit int `toml:"commit,omitempty"`
}

func (s *Secret) Validate() error {
	if err := checkVersion(s.Version); err != nil {
		return err
	}
	if err := ValidateName("secret", s.Name); err != nil {
		return corrupt("%s", err.Error())
	}
	return checkRevision(s.Revision, s.Commit)
}

func DecodeSecret(data []byte) (*Secret, error) {
	var s Secret
	return &s, decode(data, &s, "version", "name", "revision", "created", "updated")
}

func (s *Secret) Encode() ([]byte, error) { return encode(s) }

// ExportKind is the kind of a database export.
const ExportKind = "keytree-database-export"

// ExportManifest is keytree-export.toml, the first entry of a database
// export: a tar archive holding the database's database.toml, its password
// encryptions and its secrets, as they are in the keystore. The DMK's SMK
// encryption stays behind: another keystore's SMK could not open it.
type ExportManifest struct {
	Version    int       `toml:"version"`
	Kind       string    `toml:"kind"`
	Database   string    `toml:"database"`
	Thumbprint string    `toml:"thumbprint"`
	Algorithm  string    `toml:"algorithm"`
	Exported   time.Time `toml:"exported"`
	Secrets    int       `toml:"secrets"`
}

// ExportManifestName is the first entry of an export archive.
const ExportManifestName = "keytree-export.toml"

func (m *ExportManifest) Validate() error {
	if err := checkVersion(m.Version); err != nil {
		return err
	}
	if m.Kind != ExportKind {
		return corrupt("not a keytree database export (kind %q)", m.Kind)
	}
	if err := ValidateName("database", m.Database); err != nil {
		return corrupt("%s", err.Error())
	}
	if m.Secrets < 0 {
		return corrupt("negative secret count")
	}
	return checkKeyFields(1, m.Thumbprint, m.Algorithm)
}

func DecodeExportManifest(data []byte) (*ExportManifest, error) {
	var m ExportManifest
	return &m, decode(data, &m, "version", "kind", "database", "thumbprint", "algorithm", "exported", "secrets")
}

func (m *ExportManifest) Encode() ([]byte, error) { return encode(m) }
