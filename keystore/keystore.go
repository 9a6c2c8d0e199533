package keystore

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/keystore/internal/fsio"
	"github.com/keytree-dev/keytree/protect"
)

// Size limits for what keytree reads from disk.
const (
	// MaxValueSize bounds a credential or secret value.
	MaxValueSize = 64 << 20
	// maxBlobSize bounds an age file holding a value: the value plus age's
	// header and 16 bytes of tag per 64 KiB chunk.
	maxBlobSize = MaxValueSize + MaxValueSize/4096 + 64<<10
	// maxKeyBlobSize bounds an age file holding a key.
	maxKeyBlobSize = formats.MaxKeyFileSize + 16<<10
	// maxSecretFileSize bounds a protector secret or entropy file.
	maxSecretFileSize = 64 << 10
)

// Options say where a keystore is and how to behave.
type Options struct {
	Dirs
	// LockTimeout is how long to wait for another keytree process.
	LockTimeout time.Duration
	// Notice, if set, is told of repairs keytree made on its own, such as
	// re-creating an invalid SMK encryption. A repair changes what
	// protects the keystore, so the user should hear of it even from a
	// script or a cron job: the CLI prints every notice.
	Notice func(msg string)
	// Warning, if set, is told of something wrong that keytree left as it
	// was rather than act on metadata it cannot trust, such as an SMK
	// encryption that smk.toml says should not exist. The CLI prints every
	// warning.
	Warning func(msg string)
	// Now, if set, replaces time.Now (tests).
	Now func() time.Time
	// AllowOtherOwner lets keytree use a keystore directory that belongs
	// to another account (root reading a user's keystore, say). Without
	// it such a keystore is refused: files keytree wrote there would
	// belong to the wrong account, and the owner controls its content.
	AllowOtherOwner bool
	// CreateProtectorDirs lets keytree create a missing account or
	// machine directory when it repairs or writes an SMK encryption.
	// Without it only Init creates one: a missing directory is more often
	// a typo or a wrong HOME than a new place for a secret (see
	// creation in protectors.go).
	CreateProtectorDirs bool

	// fault is the file layers' fault hook (crash tests).
	fault fsio.Fault
	// format1 makes new keystores and databases in format 1, as keytree
	// did before format 2 (tests of format-1 keystores and of Upgrade).
	format1 bool
}

// Keystore is an open keystore directory. Its methods take the lock they need
// for each operation; a Keystore holds no lock between calls.
type Keystore struct {
	dir, accountDir, machineDir string
	// files does every file operation inside the keystore, confined to
	// its directory; outside, those on the files outside it (fileio.go).
	files, outside  fsio.FS
	id              string
	created         time.Time
	lockTimeout     time.Duration
	notice          func(string)
	warning         func(string)
	now             func() time.Time
	allowOtherOwner bool
	// createProtectorDirs: see Options.CreateProtectorDirs.
	createProtectorDirs bool
	// errorLogFull: logEvent found the error log past maxErrorLogSize,
	// for the next holder of the exclusive lock to rotate (errorlog.go).
	errorLogFull bool
	// keptPending is the record recoverPending kept because it could not
	// decide every file it lists: the writer that follows adds to it
	// rather than replace it (session.intend).
	keptPending *formats.Pending
	format1     bool // see Options.format1
	// version is keystore.toml's: 2 for a keystore of format 2, or one
	// being upgraded; 1 for a keystore of format 1, in which keytree makes
	// everything in format 1, which keytree before format 2 still reads.
	version int
}

func newKeystore(opts Options) (*Keystore, error) {
	dirs := opts.Dirs
	if err := dirs.check(); err != nil {
		return nil, err
	}
	ks := &Keystore{
		dir:         dirs.Keystore,
		accountDir:  dirs.Account,
		machineDir:  dirs.Machine,
		lockTimeout: opts.LockTimeout,
		notice:      opts.Notice,
		warning:     opts.Warning,
		now:         opts.Now,

		allowOtherOwner:     opts.AllowOtherOwner,
		createProtectorDirs: opts.CreateProtectorDirs,
		format1:             opts.format1,
		outside:             fsio.Plain(fsio.Options{Fault: opts.fault, Report: ioError}),
	}
	// Until openRoot, the keystore's files are worked on as they are.
	ks.files = ks.outside
	if ks.lockTimeout <= 0 {
		ks.lockTimeout = DefaultLockTimeout
	}
	if ks.now == nil {
		ks.now = time.Now
	}
	if ks.notice == nil {
		ks.notice = func(string) {}
	}
	if ks.warning == nil {
		ks.warning = func(string) {}
	}
	return ks, nil
}

func (ks *Keystore) warnAll(msgs []string) {
	for _, m := range msgs {
		ks.warning(m)
	}
}

// Dir returns the keystore directory.
func (ks *Keystore) Dir() string { return ks.dir }

// ID returns the keystore's id.
func (ks *Keystore) ID() string { return ks.id }

func (ks *Keystore) path(elem ...string) string {
	return filepath.Join(append([]string{ks.dir}, elem...)...)
}

func (ks *Keystore) nowUTC() time.Time { return ks.now().UTC().Truncate(time.Second) }

// InitResult describes a new keystore.
type InitResult struct {
	Dir        string
	ID         string
	Thumbprint string
	Algorithm  protect.Algorithm
}

// Init creates a keystore and its service master key. It refuses a directory
// that already holds a keystore, or that holds anything else.
func Init(opts Options, alg protect.Algorithm) (*InitResult, error) {
	ks, err := newKeystore(opts)
	if err != nil {
		return nil, err
	}
	// init is where the protector directories come from.
	ks.createProtectorDirs = true
	if _, err := os.Stat(ks.path(keystoreFile)); err == nil {
		return nil, &Error{Text: fmt.Sprintf("a keystore already exists in %s", ks.dir), Kind: ErrExists,
			Remedy: Remedy{Kind: RemedyKeepKeystore}}
	}
	if entries, err := ks.outside.ReadDir(ks.dir); err == nil {
		for _, e := range entries {
			if e.Name() != lockFile && e.Name() != tmpDir {
				return nil, &Error{Text: fmt.Sprintf("%s is not empty and is not a keystore", ks.dir), Kind: ErrExists,
					Remedy: Remedy{Kind: RemedyChooseEmptyDir}}
			}
		}
	}
	if err := ks.outside.MkdirPrivate(ks.dir); err != nil {
		return nil, fmt.Errorf("create keystore: %w", err)
	}
	if err := checkOwnDir(ks.outside, ks.dir, keystoreRole); err != nil {
		return nil, err
	}
	if err := ks.openRoot(); err != nil {
		return nil, err
	}
	var res *InitResult
	err = ks.lockedInit(func(s *session) error {
		if _, err := os.Stat(ks.path(keystoreFile)); err == nil {
			return &Error{Text: fmt.Sprintf("a keystore already exists in %s", ks.dir), Kind: ErrExists}
		}
		for _, d := range []string{tmpDir, smkDir, credentialsDir, databasesDir} {
			if err := ks.files.MkdirPrivate(ks.path(d)); err != nil {
				return err
			}
		}
		id := make([]byte, 16)
		if _, err := rand.Read(id); err != nil {
			return err
		}
		meta := &formats.Keystore{Version: formats.Authenticated, ID: hex.EncodeToString(id), Created: ks.nowUTC()}
		if ks.format1 {
			meta.Version = formats.Version
		}
		data, err := meta.Encode()
		if err != nil {
			return err
		}
		// keystore.toml commits the keystore; the SMK follows. A crash in
		// between leaves a keystore without an SMK, and the first command
		// that needs one creates it, as SQL Server creates its SMK.
		if err := ks.writeFileAtomic(ks.path(keystoreFile), data); err != nil {
			return err
		}
		ks.id, ks.created, ks.version = meta.ID, meta.Created, meta.Version
		st, err := s.createSMK(alg)
		if err != nil {
			return err
		}
		res = &InitResult{Dir: ks.dir, ID: ks.id, Thumbprint: st.meta.Thumbprint, Algorithm: st.key.Algorithm()}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// Open opens an existing keystore. It checks that the directory is private
// to its owner and reads keystore.toml; it takes no lock and opens no key.
func Open(opts Options) (*Keystore, error) {
	ks, err := newKeystore(opts)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(ks.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &Error{Text: fmt.Sprintf("no keystore in %s", ks.dir), Kind: ErrNotFound,
			Remedy: Remedy{Kind: RemedyInitOrChooseKeystore}}
	}
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, &Error{Text: fmt.Sprintf("%s is not a directory", ks.dir), Kind: ErrInvalid}
	}
	// What the directory is comes before what its permissions are: a
	// directory that is not a keystore (--keystore /etc) is reported as
	// such, and its permissions, which are not keytree's business, are not
	// judged (see dirkind.go).
	if _, err := ks.outside.Lstat(ks.path(keystoreFile)); errors.Is(err, fs.ErrNotExist) {
		return nil, ks.notKeystore(ks.outside)
	}
	if err := ks.outside.CheckPrivate(ks.dir, nil, fi); err != nil {
		return nil, err
	}
	if err := ks.openRoot(); err != nil {
		return nil, err
	}
	data, err := ks.files.ReadFile(ks.path(keystoreFile), formats.MaxMetadataSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ks.notKeystore(ks.files)
	}
	if err != nil {
		return nil, ks.fileError(ks.path(keystoreFile), err)
	}
	meta, err := formats.DecodeKeystore(data)
	if err != nil {
		return nil, errCorrupt(ks.path(keystoreFile), err)
	}
	ks.id, ks.created, ks.version = meta.ID, meta.Created, meta.Version
	return ks, nil
}

// notKeystore reports a directory without keystore.toml, with a next step
// that fits what it holds instead.
func (ks *Keystore) notKeystore(f fsio.FS) error {
	e := &Error{Text: fmt.Sprintf("%s is not a keystore (it has no %s)", ks.dir, keystoreFile), Kind: ErrNotFound}
	switch {
	case f.Exists(ks.path(smkFile)) || f.Exists(ks.path(credentialsDir)):
		e.Hint = "the directory holds a keystore's files but not its keystore.toml: restore the keystore from a backup copy"
	case kindOf(f, ks.dir, keystoreRole) == dirForeign:
		e.Remedy = Remedy{Kind: RemedyChooseKeystore}
	default:
		e.Remedy = Remedy{Kind: RemedyInit}
	}
	return e
}

// openRoot opens the keystore directory as the root of every file
// operation inside it, after checking that the directory belongs to the
// account running keytree.
func (ks *Keystore) openRoot() error {
	if err := ks.checkOwner(); err != nil {
		return err
	}
	f, err := fsio.Open(ks.dir, fsio.Options{Fault: ks.outside.Fault(), Report: ioError})
	if err != nil {
		return fmt.Errorf("open keystore: %w", err)
	}
	ks.files = f
	return nil
}

// fileError classifies an error from reading a keystore file: permissions
// and damage keep their kind, anything else is reported with the path.
func (ks *Keystore) fileError(path string, err error) error {
	var ke *Error
	if errors.As(err, &ke) {
		return err
	}
	var ce *formats.CorruptError
	if errors.As(err, &ce) {
		return errCorrupt(path, err)
	}
	return fmt.Errorf("read %s: %w", path, err)
}
