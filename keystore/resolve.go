package keystore

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/protect"
)

// RefKind is what a reference names.
type RefKind uint8

const (
	RefCredential         RefKind = iota + 1 // a credential's value
	RefCredentialIdentity                    // a credential's identity (stored in clear)
	RefSecret                                // a secret's value
)

// Ref names one value a program is to be given: a credential's value or
// identity, or a secret's value. commands writes and reads them as
// keytree:// references (docs/cli-abi.md).
type Ref struct {
	Kind RefKind
	DB   string // RefSecret: the database
	Name string
}

// String names the reference in messages: credential NAME, the identity of
// credential NAME, or secret DB/NAME.
func (r Ref) String() string {
	switch r.Kind {
	case RefCredential:
		return "credential '" + r.Name + "'"
	case RefCredentialIdentity:
		return "the identity of credential '" + r.Name + "'"
	case RefSecret:
		return "secret '" + r.DB + "/" + r.Name + "'"
	}
	return "an unknown reference"
}

// RefScheme starts every reference.
const RefScheme = "keytree://"

// ParseRef reads a reference (docs/cli-abi.md, "References"):
//
//	keytree://credential/NAME           a credential's value
//	keytree://credential/NAME/identity  its identity
//	keytree://secret/DB/NAME            a secret's value
//
// Names are checked as everywhere else (formats.ValidateName), so no
// reference can name a path outside the keystore. An error says what is
// wrong with s without repeating s, which may be a value pasted by mistake.
func ParseRef(s string) (Ref, error) {
	bad := func(why string) (Ref, error) {
		return Ref{}, invalid(fmt.Errorf("invalid reference: %s", why))
	}
	rest, ok := strings.CutPrefix(s, RefScheme)
	if !ok {
		return bad("it does not start with " + RefScheme)
	}
	parts := strings.Split(rest, "/")
	var r Ref
	switch {
	case parts[0] == "credential" && len(parts) == 2:
		r = Ref{Kind: RefCredential, Name: parts[1]}
	case parts[0] == "credential" && len(parts) == 3 && parts[2] == "identity":
		r = Ref{Kind: RefCredentialIdentity, Name: parts[1]}
	case parts[0] == "secret" && len(parts) == 3:
		r = Ref{Kind: RefSecret, DB: parts[1], Name: parts[2]}
	default:
		return bad("want " + RefScheme + "credential/NAME, " + RefScheme + "credential/NAME/identity or " + RefScheme + "secret/DB/NAME")
	}
	if err := r.validate(); err != nil {
		var ne *formats.NameError
		if errors.As(err, &ne) {
			return bad(fmt.Sprintf("the %s name is not valid: %s", ne.What, ne.Reason))
		}
		return Ref{}, err
	}
	return r, nil
}

// URI is the reference as ParseRef reads it.
func (r Ref) URI() string {
	switch r.Kind {
	case RefCredential:
		return RefScheme + "credential/" + r.Name
	case RefCredentialIdentity:
		return RefScheme + "credential/" + r.Name + "/identity"
	}
	return RefScheme + "secret/" + r.DB + "/" + r.Name
}

func (r Ref) validate() error {
	switch r.Kind {
	case RefCredential, RefCredentialIdentity:
		return validName("credential", r.Name)
	case RefSecret:
		if err := validName("database", r.DB); err != nil {
			return err
		}
		return validName("secret", r.Name)
	}
	return invalid(fmt.Errorf("unknown reference kind %d", r.Kind))
}

// UnresolvedError lists every reference Resolve could not find: all of
// them, so that one run shows the user everything to fix.
type UnresolvedError struct {
	Refs []Ref
	// Errs holds, for each of Refs, why it was not found.
	Errs []error
}

func (e *UnresolvedError) Error() string {
	var names []string
	for _, r := range e.Refs {
		names = append(names, r.String())
	}
	return fmt.Sprintf("%d of the references cannot be resolved: %s", len(e.Refs), strings.Join(names, ", "))
}

// Unwrap makes the error match ErrNotFound.
func (e *UnresolvedError) Unwrap() error { return ErrNotFound }

// Resolve reads the values refs name, in their order, in one walk of the
// key hierarchy: under one shared lock, the SMK opened at most once and each
// database master key at most once however many references use it.
// passwords opens the databases it names by password (--open-password-file
// DB=FILE); ask is called, at most once per database, for the password of a
// database that passwords does not name and whose master key the SMK does
// not encrypt (nil: such a database fails to open). Resolve fails closed:
// if references name something that does not exist, it returns an
// *UnresolvedError listing every such reference and no values; any other
// failure (a key that does not open, a damaged file) stops it at once.
func (ks *Keystore) Resolve(refs []Ref, passwords map[string][]byte, ask func(db string) ([]byte, error)) ([][]byte, error) {
	for _, r := range refs {
		if err := r.validate(); err != nil {
			return nil, err
		}
	}
	// A read that finds a repair to make runs again under the exclusive
	// lock: the passwords asked for are kept across the two passes, so
	// that none is asked for twice.
	if ask != nil {
		asked := map[string][]byte{}
		ask0 := ask
		ask = func(db string) ([]byte, error) {
			if pw, ok := asked[db]; ok {
				return pw, nil
			}
			pw, err := ask0(db)
			if err == nil {
				asked[db] = pw
			}
			return pw, err
		}
	}
	var values [][]byte
	err := ks.read("resolve", func(s *session) error {
		values = nil
		rs := newResolver(s, passwords, ask)
		defer rs.close()
		unresolved := &UnresolvedError{}
		sealed := make([]sealedValue, 0, len(refs))
		for _, r := range refs {
			v, err := rs.find(r)
			var ke *Error
			if errors.As(err, &ke) && ke.Kind == ErrNotFound {
				unresolved.Refs = append(unresolved.Refs, r)
				unresolved.Errs = append(unresolved.Errs, err)
				continue
			}
			if err != nil {
				return err
			}
			sealed = append(sealed, v)
		}
		if len(unresolved.Refs) > 0 {
			return unresolved
		}
		var err error
		values, err = openAll(sealed)
		return err
	})
	if err != nil {
		return nil, err
	}
	return values, nil
}

// sealedValue is one value a walk found: its blob and the key that opens
// it, or, for an identity, the value itself.
type sealedValue struct {
	key   *protect.Key
	blob  []byte
	value []byte
	// binding is what the file must be bound to; bound says it must be
	// (an authenticated keystore or database).
	binding []byte
	bound   bool
	// identityOnly: the file is checked, and value, a credential's
	// identity, is what is returned.
	identityOnly bool
	// what, name and path describe the value for an error.
	what, name, path string
	// verified, if set, runs once the value's file verifies: it raises
	// the record of a newer commit (checkItemRollback).
	verified func()
}

func (v sealedValue) open() ([]byte, error) {
	if v.key == nil {
		return v.value, nil
	}
	value, err := openBound(v.key, v.blob, v.binding, v.bound)
	if err != nil {
		return nil, valueError(v.what, v.name, v.path, err)
	}
	if v.verified != nil {
		v.verified()
	}
	if v.identityOnly {
		clear(value)
		return v.value, nil
	}
	return value, nil
}

// openAll decrypts the values a walk found, on every CPU: each is an age
// file of its own, and decrypting one (an X25519 exchange) costs more than
// finding it. The first error, in the order of vs, is returned.
func openAll(vs []sealedValue) ([][]byte, error) {
	values := make([][]byte, len(vs))
	errs := make([]error, len(vs))
	workers := min(runtime.GOMAXPROCS(0), len(vs))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(vs); i = int(next.Add(1) - 1) {
				values[i], errs[i] = vs[i].open()
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			for _, v := range values {
				clear(v)
			}
			return nil, err
		}
	}
	return values, nil
}

// resolver is one walk of the key hierarchy for reading values: the keys it
// has opened. credential get, secret get and Resolve read through it.
type resolver struct {
	s         *session
	passwords map[string][]byte
	ask       func(db string) ([]byte, error)
	dmks      map[string]*dmkState
	databases map[string]*formats.Database
	// secrets reads the files of a database's secrets/ through a handle
	// of that directory (fsio.FS.View), opened once per walk, from the
	// walk's second secret of that database on: opening the handle costs
	// what reading one secret's files the long way saves.
	secrets map[string]*Keystore
	read    map[string]bool // the databases a secret was read from
	// credentials holds the credentials' metadata the walk has read, and
	// found the credentials whose value's file it has read.
	credentials map[string]*formats.Credential
	found       map[string]foundCredential
}

// secretsOf is the keystore as seen for reading db's secrets: its files
// through a view of db's secrets/ directory once the walk reads a second
// secret there, else (or if that directory cannot be opened, which the
// read then reports) the keystore itself.
func (rs *resolver) secretsOf(db string) *Keystore {
	if k, ok := rs.secrets[db]; ok {
		return k
	}
	ks := rs.s.ks
	if !rs.read[db] {
		if rs.read == nil {
			rs.read = map[string]bool{}
		}
		rs.read[db] = true
		return ks
	}
	v, err := ks.files.View(ks.pathOf(secretsDirOf(db)))
	if err != nil {
		return ks
	}
	k := *ks
	k.files = v
	if rs.secrets == nil {
		rs.secrets = map[string]*Keystore{}
	}
	rs.secrets[db] = &k
	return &k
}

// close releases the walk's directory handles.
func (rs *resolver) close() {
	for _, k := range rs.secrets {
		_ = k.files.CloseView()
	}
	rs.secrets = nil
}

func newResolver(s *session, passwords map[string][]byte, ask func(db string) ([]byte, error)) *resolver {
	return &resolver{s: s, passwords: passwords, ask: ask, dmks: map[string]*dmkState{}, databases: map[string]*formats.Database{}}
}

// find reads what r names, short of decrypting it: a value's blob and the
// key that opens it (opened on the way, once per walk), or an identity.
func (rs *resolver) find(r Ref) (sealedValue, error) {
	switch r.Kind {
	case RefCredentialIdentity:
		meta, err := rs.credentialMeta(r.Name)
		if err != nil {
			return sealedValue{}, err
		}
		st, err := rs.s.openSMK()
		if err != nil {
			return sealedValue{}, err
		}
		if !authenticated(st.meta) {
			return sealedValue{value: []byte(meta.Identity)}, nil
		}
		// In format 2 the identity is bound to the value: it is given
		// only once the value's file shows it is the one stored with it.
		_, v, err := rs.findCredential(r.Name)
		v.value, v.identityOnly = []byte(meta.Identity), true
		return v, err
	case RefCredential:
		_, v, err := rs.findCredential(r.Name)
		return v, err
	}
	return rs.findSecret(r.DB, r.Name)
}

// credential reads a credential and its value.
func (rs *resolver) credential(name string) (*formats.Credential, []byte, error) {
	meta, v, err := rs.findCredential(name)
	if err != nil {
		return nil, nil, err
	}
	value, err := v.open()
	if err != nil {
		return nil, nil, err
	}
	return meta, value, nil
}

func (rs *resolver) findCredential(name string) (*formats.Credential, sealedValue, error) {
	if f, ok := rs.found[name]; ok {
		return f.meta, f.v, nil
	}
	meta, v, err := rs.findCredentialOnce(name)
	if err == nil {
		if rs.found == nil {
			rs.found = map[string]foundCredential{}
		}
		rs.found[name] = foundCredential{meta, v}
	}
	return meta, v, err
}

// foundCredential is a credential a walk has found: its value's file is
// read once, for its value and, in format 2, for its identity.
type foundCredential struct {
	meta *formats.Credential
	v    sealedValue
}

func (rs *resolver) findCredentialOnce(name string) (*formats.Credential, sealedValue, error) {
	s := rs.s
	st, err := s.openSMK()
	if err != nil {
		return nil, sealedValue{}, err
	}
	meta, err := rs.credentialMeta(name)
	if err != nil {
		return nil, sealedValue{}, err
	}
	blob, path, orphan, err := s.ks.readItemBlob(credentialBlob(name, meta.Revision, 0), smkGens(st.meta))
	if err != nil {
		return nil, sealedValue{}, s.ks.fileError(path, err)
	}
	if orphan != nil {
		return nil, sealedValue{}, orphanError("credential", name, orphan, "service master key", Remedy{Kind: RemedyRecoverCredential})
	}
	bound := authenticated(st.meta)
	newer, err := s.ks.checkItemRollback(bound, "", name, meta.Commit)
	if err != nil {
		return nil, sealedValue{}, err
	}
	return meta, sealedValue{key: st.key, blob: blob, what: "credential", name: name, path: path,
		binding: credentialBinding(s.ks.id, meta), bound: bound, verified: s.ks.raiser(newer, meta.Commit)}, nil
}

// secret reads a secret's value.
func (rs *resolver) secret(db, name string) ([]byte, error) {
	v, err := rs.findSecret(db, name)
	if err != nil {
		return nil, err
	}
	return v.open()
}

func (rs *resolver) findSecret(db, name string) (sealedValue, error) {
	s := rs.s
	meta, err := rs.database(db)
	if err != nil {
		return sealedValue{}, err
	}
	k := rs.secretsOf(db)
	sm, err := k.secretMeta(db, name)
	if err != nil {
		return sealedValue{}, err
	}
	blob, path, orphan, err := k.readItemBlob(secretBlob(db, name, sm.Revision, 0), dmkGens(meta))
	if err != nil {
		return sealedValue{}, s.ks.fileError(path, err)
	}
	if orphan != nil {
		return sealedValue{}, orphanError("secret", db+"/"+name, orphan, "database master key", Remedy{Kind: RemedyRecoverSecret, Database: db})
	}
	dmk, err := rs.dmk(meta)
	if err != nil {
		return sealedValue{}, err
	}
	bound := dbAuthenticated(meta)
	newer, err := s.ks.checkItemRollback(bound, db, name, sm.Commit)
	if err != nil {
		return sealedValue{}, err
	}
	return sealedValue{key: dmk.key, blob: blob, what: "secret", name: db + "/" + name, path: path,
		binding: secretBinding(db, sm), bound: bound, verified: s.ks.raiser(newer, sm.Commit)}, nil
}

// credentialMeta reads a credential's metadata once per walk: a walk that
// wants both its value and its identity (credential get --json of several
// names) reads it once.
func (rs *resolver) credentialMeta(name string) (*formats.Credential, error) {
	if meta, ok := rs.credentials[name]; ok {
		return meta, nil
	}
	meta, err := rs.s.ks.credentialMeta(name)
	if err != nil {
		return nil, err
	}
	if rs.credentials == nil {
		rs.credentials = map[string]*formats.Credential{}
	}
	rs.credentials[name] = meta
	return meta, nil
}

// database reads a database's metadata once per walk: under the walk's
// lock it cannot change, and a walk of many references to one database
// would otherwise read and parse database.toml for every one of them. A
// database that is not found is looked for again by the next reference,
// so that each reports it.
func (rs *resolver) database(db string) (*formats.Database, error) {
	if meta, ok := rs.databases[db]; ok {
		return meta, nil
	}
	meta, err := rs.s.ks.databaseMeta(db, errNoDMK)
	if err != nil {
		return nil, err
	}
	rs.databases[db] = meta
	return meta, nil
}

// dmk opens a database's master key once per walk: with the password given
// for it, else through the SMK where that encrypts it, else with the
// password ask gives.
func (rs *resolver) dmk(meta *formats.Database) (*dmkState, error) {
	if d, ok := rs.dmks[meta.Name]; ok {
		return d, nil
	}
	pw := rs.passwords[meta.Name]
	if pw == nil && !meta.SMKEncryption && rs.ask != nil {
		p, err := rs.ask(meta.Name)
		if err != nil {
			return nil, err
		}
		pw = p
	}
	d, err := rs.s.openDMK(meta, pw)
	if err != nil {
		return nil, err
	}
	rs.dmks[meta.Name] = d
	return d, nil
}
