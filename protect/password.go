package protect

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"

	"filippo.io/age"
	"golang.org/x/crypto/scrypt"
)

// Scrypt work factors (log2 N). keytree writes every password encryption
// with scryptWrite and refuses to open one that asks for less than
// scryptFloor: a work factor is part of the file, so someone who can edit
// the keystore could otherwise swap in a file that is cheap to brute-force.
var (
	scryptWrite = scryptShipped
	scryptFloor = scryptShipped
)

// scryptShipped is the work factor the released keytree writes and requires.
const scryptShipped = 18

// scryptCeiling is the most a file may ask for. keytree only ever writes its
// own work factor, so a file that asks for much more was not written by it;
// two steps above the shipped factor leave room for a later keytree to raise
// it. age's own ceiling, 22, would let one hostile file cost 4 GiB of memory
// and tens of seconds, and a keystore holds up to 64 password encryptions
// per key. The ceiling is fixed, not lowered with the test hook, so that
// tests open the fixture's files, written at the shipped factor.
const scryptCeiling = scryptShipped + 2

// ErrWeakScrypt reports a password-encrypted file whose scrypt work factor is
// below keytree's floor.
var ErrWeakScrypt = errors.New("scrypt work factor below keytree's minimum")

// ErrCostlyScrypt reports a password-encrypted file whose scrypt work factor
// is above keytree's ceiling. It is refused before any scrypt runs.
var ErrCostlyScrypt = errors.New("scrypt work factor above keytree's maximum")

// ErrScryptBudget reports that a password has used up the scrypt work it is
// allowed (Password.LimitScrypt).
var ErrScryptBudget = errors.New("scrypt work budget used up")

// ErrScryptDeferred is what a Password returns, instead of running scrypt,
// while it is held (Password.Hold): the caller holds a lock that scrypt must
// not keep others waiting for.
var ErrScryptDeferred = errors.New("scrypt work deferred")

// errNotScrypt reports an encryption that should be a password encryption
// but whose header is not one well-formed scrypt stanza: damage, not a
// wrong password.
var errNotScrypt = errors.New("its header is not a single scrypt stanza")

// SetScryptWorkFactorForTesting lowers the scrypt work factor that keytree
// writes and accepts, so that tests do not spend a second per password. It
// panics outside a test binary: the shipped keytree always uses the full cost.
func SetScryptWorkFactorForTesting(logN int) {
	if !testing.Testing() {
		panic("protect: SetScryptWorkFactorForTesting called outside a test")
	}
	scryptWrite, scryptFloor = logN, logN
}

// scryptHook, if set, is called before each scrypt (tests only).
var scryptHook func(logN int)

// SetScryptHookForTesting makes f run before every scrypt keytree runs, with
// its work factor; nil removes it. It panics outside a test binary.
func SetScryptHookForTesting(f func(logN int)) {
	if !testing.Testing() {
		panic("protect: SetScryptHookForTesting called outside a test")
	}
	scryptHook = f
}

// ScryptWorkFactor reports the work factor keytree writes (for docs and tests).
func ScryptWorkFactor() int { return scryptWrite }

// ShippedScryptWorkFactor is the work factor the released keytree writes,
// whatever tests set.
const ShippedScryptWorkFactor = scryptShipped

// CheckScryptWorkFactor reports whether keytree accepts work factor logN in
// a file or in metadata: ErrWeakScrypt below the floor, ErrCostlyScrypt
// above the ceiling.
func CheckScryptWorkFactor(logN int) error {
	if logN < scryptFloor {
		return fmt.Errorf("%w (%d, minimum %d)", ErrWeakScrypt, logN, scryptFloor)
	}
	if logN > scryptCeiling {
		return fmt.Errorf("%w (%d, maximum %d)", ErrCostlyScrypt, logN, scryptCeiling)
	}
	return nil
}

// A Password protects a key with age's scrypt recipient.
//
// It remembers, for the life of one command, what each scrypt it ran gave:
// the file key each stanza unwrapped to, or that it did not unwrap, and each
// tag key (Tag). Trying the same file again costs nothing, so a command can
// do its scrypt work before it takes the keystore's exclusive lock and then,
// under the lock, find the results for files that have not changed (Hold).
type Password struct {
	password  []byte
	recipient *age.ScryptRecipient
	identity  *age.ScryptIdentity

	limit, spent int64 // scrypt work, in N (the sum of 2^logN); limit 0: none
	held         bool
	unwrapped    map[[32]byte][]byte // stanza digest -> file key, nil if incorrect
	tagKeys      map[tagKeyID][]byte
}

type tagKeyID struct {
	context string
	logN    int
}

// NewPassword makes the protector for one password.
func NewPassword(password []byte) (*Password, error) {
	if len(password) == 0 {
		return nil, errors.New("the password is empty")
	}
	r, err := age.NewScryptRecipient(string(password))
	if err != nil {
		return nil, err
	}
	r.SetWorkFactor(scryptWrite)
	id, err := age.NewScryptIdentity(string(password))
	if err != nil {
		return nil, err
	}
	id.SetMaxWorkFactor(scryptCeiling)
	return &Password{password: append([]byte(nil), password...), recipient: r, identity: id,
		unwrapped: map[[32]byte][]byte{}, tagKeys: map[tagKeyID][]byte{}}, nil
}

// LimitScrypt bounds the scrypt work this Password may do, in N: the sum,
// over the scrypts it runs, of 2^logN. Past it, it fails with
// ErrScryptBudget without running scrypt. A file at two steps above the
// shipped work factor counts four times one at it.
func (p *Password) LimitScrypt(limit int64) { p.limit = limit }

// Spent reports the scrypt work done so far, in N.
func (p *Password) Spent() int64 { return p.spent }

// Hold makes every call that would run scrypt fail with ErrScryptDeferred
// instead, until Hold(false); results already known are still returned.
func (p *Password) Hold(held bool) { p.held = held }

func (p *Password) charge(logN int) error {
	if p.held {
		return ErrScryptDeferred
	}
	cost := int64(1) << logN
	if p.limit > 0 && p.spent+cost > p.limit {
		return fmt.Errorf("%w (the work of %d scrypts at work factor %d)", ErrScryptBudget, p.limit>>scryptShipped, scryptShipped)
	}
	p.spent += cost
	releaseScryptMemory()
	if scryptHook != nil {
		scryptHook(logN)
	}
	return nil
}

// scryptRan records that this process has run a scrypt.
var scryptRan atomic.Bool

// releaseScryptMemory runs a garbage collection before every scrypt but the
// first one of the process. A scrypt allocates 128*r*N bytes (256 MiB at the
// shipped work factor) and drops them when it returns; Go's collector, paced
// by the heap that was live when it last ran, would not run again before the
// next scrypt allocates its own buffer, so a command that runs two in a row
// (a backup is sealed, then opened to check it) held both: 534 MB of peak
// memory instead of 270 (docs/benchmarks.md). Collecting first lets the next
// scrypt reuse the last one's memory. It costs a few milliseconds against a
// scrypt's second or so, and changes nothing about the work done.
func releaseScryptMemory() {
	if scryptRan.Swap(true) {
		runtime.GC()
	}
}

func (p *Password) Kind() Kind { return KindPassword }

func (p *Password) Wrap(fileKey []byte) ([]*age.Stanza, error) {
	if err := p.charge(scryptWrite); err != nil {
		return nil, err
	}
	return p.recipient.Wrap(fileKey)
}

// WrapWithLabels keeps age's rule that a password is the only recipient of
// its file.
func (p *Password) WrapWithLabels(fileKey []byte) ([]*age.Stanza, []string, error) {
	if err := p.charge(scryptWrite); err != nil {
		return nil, nil, err
	}
	return p.recipient.WrapWithLabels(fileKey)
}

// Unwrap checks the stanza before spending any time in scrypt: a header that
// is not one scrypt stanza is damage (not a wrong password), and a work
// factor under the floor or over the ceiling is refused. Then it lets age do
// the rest, and remembers the result.
func (p *Password) Unwrap(stanzas []*age.Stanza) ([]byte, error) {
	if len(stanzas) != 1 || stanzas[0].Type != "scrypt" || len(stanzas[0].Args) != 2 {
		return nil, errNotScrypt
	}
	s := stanzas[0]
	logN, err := parseWorkFactor(s.Args[1])
	if err != nil {
		return nil, err
	}
	if err := CheckScryptWorkFactor(logN); err != nil {
		return nil, err
	}
	digest := stanzaDigest(s)
	if fileKey, ok := p.unwrapped[digest]; ok {
		if fileKey == nil {
			return nil, fmt.Errorf("%w: incorrect passphrase", age.ErrIncorrectIdentity)
		}
		return append([]byte(nil), fileKey...), nil
	}
	if err := p.charge(logN); err != nil {
		return nil, err
	}
	fileKey, err := p.identity.Unwrap(stanzas)
	switch {
	case err == nil:
		p.unwrapped[digest] = append([]byte(nil), fileKey...)
	case errors.Is(err, age.ErrIncorrectIdentity):
		p.unwrapped[digest] = nil
	}
	return fileKey, err
}

// parseWorkFactor reads a stanza's work factor as age does: decimal digits
// without a leading zero.
func parseWorkFactor(s string) (int, error) {
	bad := len(s) == 0 || len(s) > 2 || s[0] == '0'
	for _, c := range []byte(s) {
		bad = bad || c < '0' || c > '9'
	}
	if bad {
		return 0, fmt.Errorf("invalid scrypt work factor %q", s)
	}
	return strconv.Atoi(s)
}

func stanzaDigest(s *age.Stanza) [32]byte {
	h := sha256.New()
	fmt.Fprintf(h, "%q", s.Type)
	for _, a := range s.Args {
		fmt.Fprintf(h, " %q", a)
	}
	h.Write([]byte{'\n'})
	h.Write(s.Body)
	var d [32]byte
	h.Sum(d[:0])
	return d
}

// Password tags.
//
// A DMK can have up to 64 password encryptions, and a password does not say
// which one is its own: without help, keytree runs scrypt on each in turn,
// and a wrong password costs 64 of them. A tag says which encryption a
// password opens, at the cost of one scrypt for all of them:
//
//	K   = scrypt(password, "keytree password tag v1\x00" || context, 2^logN, 8, 1, 32)
//	tag = first 8 bytes of HMAC-SHA256(K, "keytree password tag v1\x00" || id)
//
// The context is the DMK's thumbprint, the same for every encryption of one
// key, so K is computed once per password and command, and compared against
// every encryption's tag. The id is the encryption's. K costs as much as
// opening a file, so a tag gives an offline attacker no way to test a guess
// more cheaply than the file itself does; what it does give is one scrypt
// per guess against all of a key's passwords at once, instead of one per
// password (docs/security.md, 2.3).
const tagLabel = "keytree password tag v1\x00"

// TagSize is the length of a tag, in bytes.
const TagSize = 8

// Tag computes the tag of this password for encryption id of the key named
// by context (a DMK's thumbprint), at work factor logN. The scrypt runs once
// per context and work factor; it counts towards LimitScrypt and obeys Hold.
func (p *Password) Tag(context string, logN int, id string) (string, error) {
	if err := CheckScryptWorkFactor(logN); err != nil {
		return "", err
	}
	k, ok := p.tagKeys[tagKeyID{context, logN}]
	if !ok {
		if err := p.charge(logN); err != nil {
			return "", err
		}
		var err error
		k, err = scrypt.Key(p.password, []byte(tagLabel+context), 1<<logN, 8, 1, 32)
		if err != nil {
			return "", err
		}
		p.tagKeys[tagKeyID{context, logN}] = k
	}
	mac := hmac.New(sha256.New, k)
	mac.Write([]byte(tagLabel + id))
	return hex.EncodeToString(mac.Sum(nil)[:TagSize]), nil
}

// KnowsTag reports whether Tag for context and logN would run no scrypt.
func (p *Password) KnowsTag(context string, logN int) bool {
	_, ok := p.tagKeys[tagKeyID{context, logN}]
	return ok
}
