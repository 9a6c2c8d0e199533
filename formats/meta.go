package formats

import (
	"fmt"
	"strings"
	"time"
)

// Keystore is keystore.toml, written once by keytree init.
type Keystore struct {
	Version int       `toml:"version"`
	ID      string    `toml:"id"` // 32 hex digits; names this keystore's machine entropy
	Created time.Time `toml:"created"`
}

func (k *Keystore) Validate() error {
	// Version 2 marks a keystore of format 2, or one an upgrade to it
	// has begun on: keytree before format 2 refuses it here, at its
	// first file, with a message that says why.
	if k.Version != Version && k.Version != Authenticated {
		return newerVersion(k.Version, corrupt("format version %d is not supported (this keytree reads versions %d and %d; a newer keytree wrote this keystore)", k.Version, Version, Authenticated))
	}
	if !isHex(k.ID, 32) {
		return corrupt("id %q is not 32 hex digits", k.ID)
	}
	return nil
}

func DecodeKeystore(data []byte) (*Keystore, error) {
	var k Keystore
	return &k, decode(data, &k, "version", "id", "created")
}

func (k *Keystore) Encode() ([]byte, error) { return encode(k) }

// Retired records an earlier generation of a master key that still has
// items on disk encrypted under it: items that a --force operation could not
// decrypt, kept unchanged until a backup of that key recovers them.
//
// Kept names the retired key's own encryptions that are kept on disk with
// its items: a --force operation that could not open the key keeps them, so
// that the protector or password that should have opened it (a wrong
// directory, a mistyped password) can still recover the items later. For
// the SMK they are protector kinds ("account", "machine": the files
// smk/KIND.G.age); for a DMK, password encryption ids (password.ID.G.age).
type Retired struct {
	Generation int      `toml:"generation"`
	Thumbprint string   `toml:"thumbprint"`
	Algorithm  string   `toml:"algorithm"`
	Kept       []string `toml:"kept_encryptions,omitempty"`
	// Bound (format 2): the values this generation encrypts are bound to
	// their items, as every value written in format 2 is; a generation
	// retired before the upgrade holds unbound ones.
	Bound bool `toml:"bound,omitempty"`
}

// SMK is smk.toml: the service master key's metadata and the commit point of
// every operation on it. The account and machine encryptions of the key are
// smk/account.G.age and smk/machine.G.age, where G is Generation; every item
// the SMK protects is stored under a name ending in .G.age as well, so one
// atomic replace of this file moves the whole keystore from one key to the
// next.
type SMK struct {
	Version           int       `toml:"version"`
	Generation        int       `toml:"generation"`
	Thumbprint        string    `toml:"thumbprint"`
	Algorithm         string    `toml:"algorithm"`
	Created           time.Time `toml:"created"`
	MachineProtection bool      `toml:"machine_protection"`
	Retired           []Retired `toml:"retired,omitempty"`
	// Commit counts the keystore's commits (format 2): every write
	// advances it, and the account and machine directories remember the
	// highest they saw, so a keystore rolled back to an older copy shows.
	Commit int `toml:"commit,omitempty"`
	// MAC (format 2) authenticates every other field, under a key derived
	// from the SMK and bound to the keystore's id (keystore/auth.go).
	MAC string `toml:"mac,omitempty"`
}

// AuthData is what smk.toml's MAC covers: every field but the MAC, one per
// line, strings quoted (authData).
func (s *SMK) AuthData() ([]byte, error) {
	b := authData(nil, "smk.toml", "version", s.Version, "generation", s.Generation, "thumbprint", s.Thumbprint,
		"algorithm", s.Algorithm, "created", s.Created, "machine_protection", s.MachineProtection, "commit", s.Commit)
	return authRetired(b, s.Retired), nil
}

func (s *SMK) Validate() error {
	if err := checkAuthVersion(s.Version, s.MAC); err != nil {
		return err
	}
	if s.Version == Authenticated && (s.Commit < 1 || s.Commit > MaxRevision) || s.Version != Authenticated && s.Commit != 0 {
		return corrupt("commit %d is out of range for format version %d", s.Commit, s.Version)
	}
	if err := checkKeyFields(s.Generation, s.Thumbprint, s.Algorithm); err != nil {
		return err
	}
	return checkRetired(s.Retired, s.Generation, func(k string) bool { return k == "account" || k == "machine" })
}

func DecodeSMK(data []byte) (*SMK, error) {
	var s SMK
	return &s, decode(data, &s, "version", "generation", "thumbprint", "algorithm", "created", "machine_protection")
}

func (s *SMK) Encode() ([]byte, error) { return encode(s) }

// RetiredGeneration returns the retired entry for generation g, if any.
func RetiredGeneration(list []Retired, g int) (Retired, bool) {
	for _, r := range list {
		if r.Generation == g {
			return r, true
		}
	}
	return Retired{}, false
}

// ValidThumbprint reports whether s is a thumbprint: 40 lowercase hex
// digits.
func ValidThumbprint(s string) bool { return isHex(s, 40) }

func checkKeyFields(gen int, thumbprint, alg string) error {
	if gen < 1 || gen > MaxGeneration {
		return corrupt("generation %d is out of range", gen)
	}
	if !isHex(thumbprint, 40) {
		return corrupt("thumbprint %q is not 40 hex digits", thumbprint)
	}
	if alg != "x25519" && alg != "mlkem768x25519" {
		return corrupt("unknown algorithm %q", alg)
	}
	return nil
}

// checkRetired validates retired entries; validKept says which names a
// kept encryption may have in this kind of metadata.
func checkRetired(list []Retired, current int, validKept func(string) bool) error {
	seen := map[int]bool{}
	for _, r := range list {
		if err := checkKeyFields(r.Generation, r.Thumbprint, r.Algorithm); err != nil {
			return corrupt("retired key: %s", err.Error())
		}
		if r.Generation >= current || seen[r.Generation] {
			return corrupt("retired generation %d is not an earlier, distinct generation", r.Generation)
		}
		seen[r.Generation] = true
		if len(r.Kept) > MaxPasswords {
			return corrupt("retired generation %d keeps more than %d encryptions", r.Generation, MaxPasswords)
		}
		kept := map[string]bool{}
		for _, k := range r.Kept {
			if !validKept(k) || kept[k] {
				return corrupt("retired generation %d: kept encryption %q is not valid here, or repeats", r.Generation, k)
			}
			kept[k] = true
		}
	}
	if len(list) > MaxRetired {
		return corrupt("more than %d retired generations", MaxRetired)
	}
	return nil
}

// MaxGeneration and MaxRevision bound the counters in file names.
const (
	MaxGeneration = 1 << 40
	MaxRevision   = 1 << 40
	MaxRetired    = 1000
)

// Credential is credentials/NAME.toml. The value is
// credentials/NAME.R.G.age: revision R of the value, encrypted by the SMK of
// generation G.
type Credential struct {
	Version  int       `toml:"version"`
	Name     string    `toml:"name"`
	Identity string    `toml:"identity"`
	Revision int       `toml:"revision"`
	Created  time.Time `toml:"created"`
	Updated  time.Time `toml:"updated"`
	// Commit (format 2) is the keystore's commit count when this value
	// was written; the value's file is bound to it, and the account and
	// machine directories remember it, so that an older copy of the
	// credential put back shows. 0 for a value written before its
	// keystore moved to format 2.
	Commit int `toml:"commit,omitempty"`
}

// MaxIdentityLength bounds a credential's identity (a user name, say).
const MaxIdentityLength = 1024

func (c *Credential) Validate() error {
	if err := checkVersion(c.Version); err != nil {
		return err
	}
	if err := ValidateName("credential", c.Name); err != nil {
		return corrupt("%s", err.Error())
	}
	if err := checkStoredIdentity(c.Identity); err != nil {
		return corrupt("%s", err.Error())
	}
	return checkRevision(c.Revision, c.Commit)
}

// checkRevision checks an item's revision and commit.
func checkRevision(revision, commit int) error {
	if revision < 1 || revision > MaxRevision {
		return corrupt("revision %d is out of range", revision)
	}
	if commit < 0 || commit > MaxRevision {
		return corrupt("commit %d is out of range", commit)
	}
	return nil
}

// ValidateIdentity checks a new credential's identity: one line of
// printable text, without C1 control characters or bidirectional formatting
// characters (IsControlOrBidi), which would let an identity drive or
// disguise what `credential list` shows.
func ValidateIdentity(id string) error {
	if err := checkStoredIdentity(id); err != nil {
		return err
	}
	for _, r := range id {
		if IsControlOrBidi(r) {
			return fmt.Errorf("the identity contains %U, a control or bidirectional formatting character", r)
		}
	}
	return nil
}

// checkStoredIdentity checks an identity read from disk: printable, one
// line. It is weaker than ValidateIdentity because keytree once stored
// identities with C1 and bidirectional formatting characters, and a keystore
// that holds one must keep opening; the CLI escapes them when it prints one.
func checkStoredIdentity(id string) error {
	if id == "" {
		return fmt.Errorf("the identity is empty")
	}
	if len(id) > MaxIdentityLength {
		return fmt.Errorf("the identity is longer than %d bytes", MaxIdentityLength)
	}
	for _, r := range id {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			return fmt.Errorf("the identity contains a control character or invalid UTF-8")
		}
	}
	return nil
}

func DecodeCredential(data []byte) (*Credential, error) {
	var c Credential
	return &c, decode(data, &c, "version", "name", "identity", "revision", "created", "updated")
}

func (c *Credential) Encode() ([]byte, error) { return encode(c) }

// Pending is pending.toml: what a writer may leave behind if it stops before
// it finishes. It is written, and made durable, before the operation creates
// any file; the next writer to take the lock removes every listed path that
// committed metadata does not reference, sweeps the listed directories the
// same way, and deletes this file. Whether a file is garbage is always
// decided from committed metadata, never from this file, so a damaged or
// hostile pending.toml can make keytree look at files but not lose one.
type Pending struct {
	Version    int       `toml:"version"`
	Operation  string    `toml:"operation"`
	Started    time.Time `toml:"started"`
	Candidates []string  `toml:"candidates,omitempty"`
	Sweep      []string  `toml:"sweep,omitempty"`
	// Batch, once written, is a committed batch (credential import,
	// secret import) whose metadata files still wait in tmp/ to be moved
	// into place: the next keytree to take the lock moves them before
	// anything else (keystore/batch.go).
	Batch *PendingBatch `toml:"batch,omitempty"`
}

// PendingBatch is a committed batch of metadata files: item i waits in
// tmp/DIR/i.toml and goes to the metadata file of the credential, or the
// secret, that Items[i] names.
type PendingBatch struct {
	Dir   string      `toml:"dir"`
	Items []BatchItem `toml:"items"`
}

// BatchItem names the credential (DB empty) or the secret whose metadata
// file one item of a batch replaces.
type BatchItem struct {
	DB   string `toml:"db,omitempty"`
	Name string `toml:"name"`
}

// MaxBatchItems bounds a batch: one import's items.
const MaxBatchItems = 20000

// MaxPendingSize and MaxPendingKeys bound pending.toml, the one TOML file
// that may hold a committed batch: MaxBatchItems [[batch.items]] tables of
// three keys each (the header, db and name) and at most about 300 bytes
// (two names of MaxNameLength), besides what any metadata file may hold. A
// batch the next keytree could not read back would be lost half moved.
const (
	MaxPendingSize = MaxMetadataSize + MaxBatchItems*(2*MaxNameLength+64)
	MaxPendingKeys = MaxTOMLKeys + 3*MaxBatchItems
)

// BatchDirPrefix begins the name of a batch's directory in tmp/.
const BatchDirPrefix = "batch-"

func (p *Pending) Validate() error {
	if err := checkVersion(p.Version); err != nil {
		return err
	}
	if len(p.Candidates)+len(p.Sweep) > 100000 {
		return corrupt("too many entries")
	}
	if b := p.Batch; b != nil {
		if !strings.HasPrefix(b.Dir, BatchDirPrefix) || ValidateName("batch", b.Dir) != nil {
			return corrupt("invalid batch directory")
		}
		if len(b.Items) > MaxBatchItems {
			return corrupt("too many batch items")
		}
		for _, it := range b.Items {
			if it.DB != "" && ValidateName("database", it.DB) != nil || ValidateName("item", it.Name) != nil {
				return corrupt("invalid name in the batch")
			}
		}
	}
	return nil
}

func DecodePending(data []byte) (*Pending, error) {
	var p Pending
	return &p, decodeWithin(data, MaxPendingSize, MaxPendingKeys, &p, "version", "operation", "started")
}

func (p *Pending) Encode() ([]byte, error) {
	data, err := encode(p)
	if err == nil && len(data) > MaxPendingSize {
		return nil, fmt.Errorf("refusing to write a pending.toml of %d bytes, more than keytree reads (%d)", len(data), MaxPendingSize)
	}
	return data, err
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
