package keystore

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/keystore/internal/fsio"
	"github.com/keytree-dev/keytree/protect"
)

// Password encryptions of a DMK, and what trying a password on them costs.
//
// scrypt is keytree's one slow step, by design: about a second per password
// encryption at the shipped work factor. A DMK can have 64 of them, and a
// password does not say which one is its own, so three things keep the
// cost of a command in check (docs/security.md 2.3, docs/reliability.md):
//
//   - Every file's work factor must be between the floor and a ceiling two
//     steps above the shipped factor (protect.CheckScryptWorkFactor), checked
//     before scrypt runs: keytree writes only its own factor.
//   - Each password a command is given may do at most the scrypt work of
//     passwordScryptLimit, 67 scrypts at the shipped factor, a file at a
//     higher factor counting for more; past that the command is refused.
//   - An entry's tag (protect.Password.Tag) says which encryption the
//     password opens, so one scrypt ranks them all; only the encryptions
//     whose tag matches, and those without a tag, are tried.
//
// And scrypt runs before the exclusive lock, not under it
// (writeWithPasswords).

// passwordScryptLimit is what one password may cost a command: the work of
// a scrypt at the shipped work factor for every encryption of a key (what a
// key written before tags can need), its tag key, and a new encryption
// sealed and opened to check it. It is a variable for tests.
var passwordScryptLimit = int64(formats.MaxPasswords+3) << protect.ShippedScryptWorkFactor

// scryptWork is one command's scrypt work: a protect.Password for each
// password it was given, which remembers what every scrypt it ran gave, and
// the encryptions it sealed, so that a second pass over the same files runs
// no scrypt at all.
type scryptWork struct {
	passwords map[[32]byte]*protect.Password
	sealed    map[sealID][]byte
	held      bool
}

type sealID struct {
	password   [32]byte
	thumbprint string
	created    time.Time
}

func newScryptWork() *scryptWork {
	return &scryptWork{passwords: map[[32]byte]*protect.Password{}, sealed: map[sealID][]byte{}}
}

// hold makes every scrypt fail with protect.ErrScryptDeferred instead of
// running (true), or lets it run again (false).
func (w *scryptWork) hold(held bool) {
	w.held = held
	for _, p := range w.passwords {
		p.Hold(held)
	}
}

// password returns the command's protector for pw.
func (s *session) password(pw []byte) (*protect.Password, error) {
	if s.work == nil {
		s.work = newScryptWork()
	}
	h := sha256.Sum256(pw)
	if p, ok := s.work.passwords[h]; ok {
		return p, nil
	}
	p, err := protect.NewPassword(pw)
	if err != nil {
		return nil, invalid(err)
	}
	p.LimitScrypt(passwordScryptLimit)
	p.Hold(s.work.held)
	s.work.passwords[h] = p
	return p, nil
}

// errRehearsed stops a rehearsal at the first change to the disk.
var errRehearsed = errors.New("keystore: rehearsal stops before the first change")

// writer is write, or writeWithPasswords for an operation that may run
// scrypt (it opens or seals a password).
func (ks *Keystore) writer(scrypt bool) func(op string, fn func(*session) error) error {
	if scrypt {
		return ks.writeWithPasswords
	}
	return ks.write
}

// writeWithPasswords is write for an operation that opens a DMK by
// password or encrypts one to a new password. The scrypt work, the slow
// part, runs first under the shared lock, so that readers go on meanwhile:
// fn is rehearsed there up to its first change to the disk (intend), and
// whatever it decides or fails on is discarded. Then fn runs for real under
// the exclusive lock, where the same files give the same results without
// scrypt. If a file changed in between (another writer committed), fn meets
// a scrypt it may not run, fails with protect.ErrScryptDeferred before
// changing anything, and both passes run again; the third time, scrypt runs
// under the lock rather than fail. An operation must try and seal every
// password before its first intend, so that the rehearsal does all of it.
func (ks *Keystore) writeWithPasswords(op string, fn func(*session) error) error {
	const attempts = 3
	work := newScryptWork()
	for attempt := 1; ; attempt++ {
		l, err := ks.lock(fsio.Shared, ks.lockTimeout)
		if err != nil {
			return err
		}
		_ = fn(&session{ks: ks, mode: fsio.Shared, op: op, work: work, rehearsal: true}) // discarded, as said above
		l.Release()
		if rehearsedHook != nil {
			rehearsedHook()
		}
		work.hold(attempt < attempts)
		err = ks.writeWork(op, work, fn)
		work.hold(false)
		if attempt < attempts && errors.Is(err, protect.ErrScryptDeferred) {
			continue
		}
		return err
	}
}

// rehearsedHook, if set, runs between writeWithPasswords' two passes
// (tests: another writer commits there).
var rehearsedHook func()

// passwordCandidate is a password encryption to try, and whether its tag
// says the password opens it.
type passwordCandidate struct {
	pe     formats.PasswordEncryption
	tagged bool
}

// rankPasswords orders a key's password encryptions for a password: those
// whose tag matches first, then those without a tag, in the order of
// database.toml; those whose tag does not match are left out. With a
// single encryption there is nothing to choose, and it is tried directly.
func (s *session) rankPasswords(meta *formats.Database, p *protect.Password) ([]passwordCandidate, error) {
	var tagged, untagged []passwordCandidate
	for _, pe := range meta.Passwords {
		logN, tag, ok := pe.ParseTag()
		if !ok || len(meta.Passwords) == 1 {
			untagged = append(untagged, passwordCandidate{pe: pe})
			continue
		}
		// A tag at a work factor below the floor would be cheap to test
		// guesses against (P12); one above the ceiling, costly to check.
		if err := protect.CheckScryptWorkFactor(logN); err != nil {
			return nil, corruptf(s.ks.pathOf(databaseMeta(meta.Name)), "password encryption %s has a tag at %v", pe.ID, err)
		}
		got, err := p.Tag(meta.Thumbprint, logN, pe.ID)
		if err != nil {
			return nil, s.scryptError(meta.Name, err)
		}
		if subtle.ConstantTimeCompare([]byte(got), []byte(tag)) == 1 {
			tagged = append(tagged, passwordCandidate{pe: pe, tagged: true})
		}
	}
	return append(tagged, untagged...), nil
}

// openDMKByPassword opens a DMK with a password, trying the password
// encryptions rankPasswords picks. It returns the key and the id of the
// encryption that opened.
//
// A damaged encryption is not a wrong password. What age can tell apart is
// reported as corruption naming the file: a file that does not parse, a
// header that is not one scrypt stanza, a header MAC or payload that fails
// once the password has unwrapped the file key, a plaintext that is not a
// key file. A wrapped file key that does not unwrap looks the same whether
// the password is wrong or the stanza damaged; if the entry's tag says the
// password is its own, it is damage, else a wrong password. Damage is
// reported only if the password opens no other encryption.
func (s *session) openDMKByPassword(meta *formats.Database, password []byte) (*protect.Key, string, error) {
	return s.openDMKByPasswordIn(s.ks.pathOf(databaseDir(meta.Name)), meta, password)
}

// openDMKByPasswordIn is openDMKByPassword with the password encryptions in
// dir: the database's directory, or an import's stage.
func (s *session) openDMKByPasswordIn(dir string, meta *formats.Database, password []byte) (*protect.Key, string, error) {
	p, err := s.password(password)
	if err != nil {
		return nil, "", err
	}
	cands, err := s.rankPasswords(meta, p)
	if err != nil {
		return nil, "", err
	}
	var damaged []string
	for _, c := range cands {
		path := filepath.Join(dir, formats.PasswordBlobName(c.pe.ID, meta.Generation))
		blob, err := s.ks.files.ReadFile(path, maxKeyBlobSize)
		if notExist(err) {
			return nil, "", corruptf(s.ks.pathOf(databaseMeta(meta.Name)), "names password encryption %s, but %s does not exist", c.pe.ID, path)
		}
		if err != nil {
			return nil, "", s.ks.fileError(path, err)
		}
		key, _, err := openKeyFile(p, blob, protect.KindDMK, meta.Thumbprint)
		switch {
		case err == nil:
			if string(key.Algorithm()) != meta.Algorithm {
				return nil, "", corruptf(s.ks.pathOf(databaseMeta(meta.Name)), "names algorithm %s, but the key is %s", meta.Algorithm, key.Algorithm())
			}
			return key, c.pe.ID, nil
		case errors.Is(err, protect.ErrScryptDeferred), errors.Is(err, protect.ErrScryptBudget):
			return nil, "", s.scryptError(meta.Name, err)
		case errors.Is(err, protect.ErrWeakScrypt), errors.Is(err, protect.ErrCostlyScrypt):
			return nil, "", corruptf(path, "%v", err)
		case errors.Is(err, protect.ErrDamaged):
			why := strings.TrimPrefix(err.Error(), protect.ErrDecrypt.Error()+": "+protect.ErrDamaged.Error()+": ")
			damaged = append(damaged, fmt.Sprintf("%s: the password encryption is damaged (%s)", path, why))
		case errors.Is(err, protect.ErrDecrypt) && c.tagged:
			damaged = append(damaged, fmt.Sprintf("%s: its tag in %s says this password opens it, but it does not: the file is damaged", path, databaseFile))
		case errors.Is(err, protect.ErrDecrypt):
			// A wrong password for this encryption.
		default:
			return nil, "", dmkOpenError(path, err)
		}
	}
	if len(damaged) > 0 {
		return nil, "", &Error{
			Text:   damaged[0],
			Detail: append(damaged[1:], fmt.Sprintf("no other password encryption of the master key of database '%s' opens with this password", meta.Name)),
			Kind:   ErrCorrupt,
			Hint:   "the keystore was damaged or edited by hand; open the key another way (another password, or the service master key) and add the password again, or restore the keystore from a backup",
		}
	}
	return nil, "", errNotEncryptedBy(meta.Name)
}

// openDMKByPassword is session.openDMKByPassword for a caller outside a
// command (tests).
func (ks *Keystore) openDMKByPassword(meta *formats.Database, password []byte) (*protect.Key, string, error) {
	return (&session{ks: ks}).openDMKByPassword(meta, password)
}

// scryptError reports a password's scrypt budget used up; a deferred scrypt
// goes back as it is, for writeWithPasswords.
func (s *session) scryptError(db string, err error) error {
	if errors.Is(err, protect.ErrScryptBudget) {
		return &Error{
			Text:   fmt.Sprintf("refused to try the password further on the encryptions of the master key of database '%s': %v", db, err),
			Detail: []string{"keytree writes every password encryption at its own work factor; a keystore it wrote never needs this much"},
			Hint:   "the database's password encryptions may have been tampered with; open the key another way, or restore the keystore from a backup",
			Kind:   ErrRefused,
			Err:    err,
		}
	}
	return err
}

// sealDMKForPassword seals the DMK to a password and checks it opens. A
// command seals a key to a password once: the rehearsal's encryption is the
// one written.
func (s *session) sealDMKForPassword(key *protect.Key, created time.Time, password []byte) ([]byte, error) {
	p, err := s.password(password)
	if err != nil {
		return nil, err
	}
	id := sealID{password: sha256.Sum256(password), thumbprint: key.Thumbprint(), created: created}
	if blob, ok := s.work.sealed[id]; ok {
		return blob, nil
	}
	blob, err := sealKey(p, key, created)
	if err != nil {
		return nil, err
	}
	if _, _, err := openKeyFile(p, blob, protect.KindDMK, key.Thumbprint()); err != nil {
		return nil, fmt.Errorf("the new password encryption does not open: %w", err)
	}
	s.work.sealed[id] = blob
	return blob, nil
}

// newPassword seals key to password, for a new password encryption, and
// makes its database.toml entry, tagged at keytree's own work factor.
func (s *session) newPassword(key *protect.Key, created time.Time, password []byte) ([]byte, formats.PasswordEncryption, error) {
	pe := formats.PasswordEncryption{ID: newPasswordID(), Created: s.ks.nowUTC()}
	blob, err := s.sealDMKForPassword(key, created, password)
	if err != nil {
		return nil, pe, err
	}
	p, err := s.password(password)
	if err != nil {
		return nil, pe, err
	}
	logN := protect.ScryptWorkFactor()
	tag, err := p.Tag(key.Thumbprint(), logN, pe.ID)
	if err != nil {
		return nil, pe, err
	}
	pe.Tag = formats.PasswordTag(logN, tag)
	return blob, pe, nil
}

// isScryptStop reports a password that was not tried to the end: its
// scrypt was deferred (writeWithPasswords retries) or over budget. An
// operation must pass it on rather than handle it: a --force must not take
// it for a key that does not open.
func isScryptStop(err error) bool {
	return errors.Is(err, protect.ErrScryptDeferred) || errors.Is(err, protect.ErrScryptBudget)
}
