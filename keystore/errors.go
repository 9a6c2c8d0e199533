package keystore

import (
	"errors"
	"fmt"
	"strings"

	"github.com/keytree-dev/keytree/formats"
)

// Error categories. Every error keytree reports matches at most one of them
// with errors.Is; the CLI maps them to exit codes (docs/cli-abi.md).
var (
	// ErrDecryption: a key cannot be opened (15466, 15581, 15329, 15320),
	// or a password is wrong.
	ErrDecryption = errors.New("decryption failed")
	// ErrNotFound: no such keystore, credential, database or secret (15151).
	ErrNotFound = errors.New("not found")
	// ErrExists: the thing to create is already there (15578, 15240).
	ErrExists = errors.New("already exists")
	// ErrCorrupt: a file in the keystore, or a file given to keytree, is
	// damaged or does not agree with the keys it describes.
	ErrCorrupt = formats.ErrCorrupt
	// ErrLocked: another keytree process held the keystore's lock for longer
	// than the lock timeout.
	ErrLocked = errors.New("keystore is locked")
	// ErrPermissions: a keystore or protector file that group or others can
	// read, which keytree refuses to use.
	ErrPermissions = errors.New("unsafe permissions")
	// ErrRefused: the operation would break a rule (the password policy, the
	// last password of a database master key, a key still in use).
	ErrRefused = errors.New("refused")
	// ErrInvalid: a name, flag value or input that can never be right.
	ErrInvalid = errors.New("invalid input")
)

// Error is an error with, where SQL Server has one, its message number, and
// with an optional next step: a Hint in prose, or a Remedy for the caller to
// word.
type Error struct {
	Number int // SQL Server message number, or 0
	// Plain says what happened in plain words where a SQL Server text
	// does not ("wrong password" before 15313's "The key is not encrypted
	// using the specified decryptor."); printed between the number and
	// Text. Empty where Text says it already.
	Plain  string
	Text   string // the message, without a trailing newline
	Detail []string
	// Hint is a next step in prose that names no command, flag or
	// environment variable; one that needs those is a Remedy instead.
	// An error has at most one of Hint and Remedy.Kind.
	Hint   string
	Remedy Remedy
	Kind   error // one of the categories above
	Err    error // the cause, if any
}

func (e *Error) Error() string {
	var sb strings.Builder
	if e.Number != 0 {
		fmt.Fprintf(&sb, "error %d: ", e.Number)
	}
	sb.WriteString(e.Message())
	return sb.String()
}

// Message is the error's first line without its number: the plain words,
// if any, then Text.
func (e *Error) Message() string {
	if e.Plain == "" {
		return e.Text
	}
	return e.Plain + ": " + e.Text
}

func (e *Error) Unwrap() []error {
	var errs []error
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// SQL Server's message numbers and texts that keytree reuses.
const (
	MsgDecryption       = 15466 // An error occurred during decryption.
	MsgNotExist         = 15151
	MsgPasswordShort    = 15116
	MsgPasswordLong     = 15117
	MsgPasswordComplex  = 15118
	MsgFileExists       = 15240
	MsgItemDecrypt      = 15320
	MsgCurrentKey       = 15329
	MsgSameKey          = 15588
	MsgDMKExists        = 15578
	MsgDMKInUse         = 15580
	MsgDMKNotOpen       = 15581
	MsgBadKeyFile       = 15317
	MsgNotEncryptedBy   = 15313
	MsgLastPassword     = 15558
	MsgEncryptionExists = 15579
	MsgItemForced       = 15584
	MsgCurrentForced    = 15585
)

const textDecryption = "An error occurred during decryption."

// errDecryptionSMK is 15466 for a service master key that none of its
// encryptions opens; detail holds one line per encryption tried: both, or
// the only one when machine protection is off.
func errDecryptionSMK(detail []string) *Error {
	invalid := 2
	if len(detail) == 1 {
		invalid = 1
	}
	return &Error{
		Number: MsgDecryption,
		Text:   textDecryption,
		Detail: detail,
		Remedy: Remedy{Kind: RemedyRestoreSMK, InvalidEncryptions: invalid},
		Kind:   ErrDecryption,
	}
}

func errNotFound(what, name string) *Error {
	return &Error{
		Number: MsgNotExist,
		Text:   fmt.Sprintf("Cannot find the %s '%s', because it does not exist or you do not have permission.", what, name),
		Kind:   ErrNotFound,
	}
}

func errCorrupt(path string, err error) error {
	var ce *formats.CorruptError
	if errors.As(err, &ce) && ce.Newer {
		return &Error{Text: formats.WithFile(err, path).Error(), Kind: ErrCorrupt,
			Hint: "a newer keytree wrote this keystore; nothing is damaged: use that keytree, or a newer one"}
	}
	if errors.As(err, &ce) {
		return &Error{Text: formats.WithFile(err, path).Error(), Kind: ErrCorrupt,
			Hint: "the keystore was damaged or edited by hand; restore it from a backup"}
	}
	return &Error{Text: fmt.Sprintf("%s: %v", path, err), Kind: ErrCorrupt,
		Hint: "the keystore was damaged or edited by hand; restore it from a backup", Err: err}
}

func corruptf(path, format string, args ...any) error {
	return errCorrupt(path, &formats.CorruptError{Reason: fmt.Sprintf(format, args...)})
}

func invalid(err error) error {
	return &Error{Text: err.Error(), Kind: ErrInvalid, Err: err}
}

// isMsg reports whether err carries SQL Server message number n.
func isMsg(err error, n int) bool {
	var ke *Error
	return errors.As(err, &ke) && ke.Number == n
}
