package commands

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/keytree-dev/keytree/keystore"
	"github.com/keytree-dev/keytree/protect"
)

const (
	flagDB              = "db"
	flagBy              = "by"
	flagNoSMKEncryption = "no-smk-encryption"
	flagNewPassword     = "new-password-file"
)

func dbFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: flagDB, Usage: "the database `NAME`"}
}

func openPasswordFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: flagOpenPass, Usage: "open the database master key with the password in `FILE` (- for standard input) instead of the service master key"}
}

// withDMK runs op with the password in openPasswordFile, the
// --open-password-file (nil if none: the key is then opened by the service
// master key). If op fails with 15581 because the key needs a password
// nobody gave, and a terminal is attached, it asks for the password and
// tries once more.
func (in *invocation) withDMK(openPasswordFile *string, op func(openPassword []byte) error) error {
	var pw []byte
	if openPasswordFile != nil {
		var err error
		if pw, err = in.password(flagOpenPass, *openPasswordFile, "Password of the database master key", false); err != nil {
			return err
		}
	}
	e := in.e
	err := op(pw)
	var ke *keystore.Error
	if pw == nil && errors.As(err, &ke) && ke.Number == keystore.MsgDMKNotOpen && e.stdinTTY && e.tty != nil && !errors.Is(err, keystore.ErrNotFound) {
		pw, perr := e.promptPassword(passwordRequest{flag: flagOpenPass, prompt: "Password of the database master key"})
		if perr != nil {
			return err
		}
		return op(pw)
	}
	return err
}

func (e *env) dmkCreateCommand(runF func(*dmkCreateOptions) error) *cli.Command {
	return &cli.Command{
		Name:  "create",
		Usage: "create a database and its master key",
		UsageText: `keytree dmk create --db DB [--password-file P] [--no-smk-encryption] [--algorithm A]

Creates database DB with a new database master key, encrypted by a password
(which must pass the password policy) and, unless --no-smk-encryption, by the
service master key, so that keytree opens it without the password. A second
create fails with error 15578.

Examples:
   keytree dmk create --db payroll
   keytree dmk create --db hr --password-file - --no-smk-encryption < pass.txt`,
		Flags: []cli.Flag{dbFlag(), passwordFileFlag("the master key's password"), noPolicyFlag(),
			&cli.BoolFlag{Name: flagNoSMKEncryption, Usage: "do not encrypt the key by the service master key: only its passwords open it"},
			algorithmFlag("the key's algorithm")},
		Action: keystoreAction(e, parseDMKCreate, runF, e.dmkCreateRun),
	}
}

type dmkCreateOptions struct {
	DB               string
	PasswordFile     string
	NoPasswordPolicy bool
	NoSMKEncryption  bool
	Algorithm        protect.Algorithm
}

func parseDMKCreate(a *argv) *dmkCreateOptions {
	alg := a.algorithm()
	a.noArgs()
	return &dmkCreateOptions{DB: a.db(), PasswordFile: a.string(flagPassword), NoPasswordPolicy: a.bool(flagNoPolicy),
		NoSMKEncryption: a.bool(flagNoSMKEncryption), Algorithm: alg}
}

func (e *env) dmkCreateRun(in *invocation, opts *dmkCreateOptions) error {
	pw, err := in.password(flagPassword, opts.PasswordFile, "Password for the database master key", true)
	if err != nil {
		return err
	}
	info, err := in.ks.CreateDMK(opts.DB, pw, keystore.DMKOptions{NoSMKEncryption: opts.NoSMKEncryption,
		SkipPasswordPolicy: opts.NoPasswordPolicy, Algorithm: opts.Algorithm})
	if err != nil {
		return err
	}
	e.say("Created database %s with master key %s (%s).", opts.DB, info.Thumbprint, info.Algorithm)
	return nil
}

func (e *env) dmkAddEncryptionCommand(runF func(*dmkAddEncryptionOptions) error) *cli.Command {
	return &cli.Command{
		Name:  "add-encryption",
		Usage: "encrypt a database master key by the service master key or another password",
		UsageText: `keytree dmk add-encryption --db DB --by smk|password [--password-file P] [--open-password-file P]

--by smk: encrypt the key by the service master key again, so keytree opens it
without a password (after db import, or after drop-encryption --by smk).
--by password: add a password (from --password-file, or asked for); one that
already encrypts the key is refused. The key is opened by the service master
key, or with --open-password-file. The new encryption is checked to open
before it is committed.

Examples:
   keytree dmk add-encryption --db payroll --by smk --open-password-file pw.txt
   keytree dmk add-encryption --db payroll --by password --password-file new.txt`,
		Flags: []cli.Flag{dbFlag(), &cli.StringFlag{Name: flagBy, Usage: "smk or password"},
			passwordFileFlag("the new password (--by password)"), openPasswordFlag(), noPolicyFlag()},
		Action: keystoreAction(e, parseDMKAddEncryption, runF, e.dmkAddEncryptionRun),
	}
}

type dmkAddEncryptionOptions struct {
	DB               string
	By               keystore.EncryptionKind
	PasswordFile     *string // the new password (--by password); nil: ask
	OpenPasswordFile *string
	NoPasswordPolicy bool
}

func parseDMKAddEncryption(a *argv) *dmkAddEncryptionOptions {
	by := a.by()
	a.noArgs()
	return &dmkAddEncryptionOptions{DB: a.db(), By: by, PasswordFile: a.optional(flagPassword),
		OpenPasswordFile: a.optional(flagOpenPass), NoPasswordPolicy: a.bool(flagNoPolicy)}
}

func (e *env) dmkAddEncryptionRun(in *invocation, opts *dmkAddEncryptionOptions) error {
	var newPW []byte
	switch {
	case opts.By == keystore.ByPassword:
		path := ""
		if opts.PasswordFile != nil {
			path = *opts.PasswordFile
		}
		var err error
		if newPW, err = in.password(flagPassword, path, "New password for the database master key", true); err != nil {
			return err
		}
	case opts.PasswordFile != nil:
		// Checked once the keystore is open, as it always was.
		return usagef("--password-file goes with --by password; open the key with --open-password-file")
	}
	err := in.withDMK(opts.OpenPasswordFile, func(open []byte) error {
		return in.ks.AddDMKEncryption(opts.DB, opts.By, newPW, keystore.DMKOptions{OpenPassword: open, SkipPasswordPolicy: opts.NoPasswordPolicy})
	})
	if err != nil {
		return err
	}
	e.say("Added the %s encryption of the master key of %s.", opts.By, opts.DB)
	return nil
}

func (e *env) dmkDropEncryptionCommand(runF func(*dmkDropEncryptionOptions) error) *cli.Command {
	return &cli.Command{
		Name:  "drop-encryption",
		Usage: "drop an encryption of a database master key",
		UsageText: `keytree dmk drop-encryption --db DB --by smk|password [--password-file P] [--open-password-file P] [--yes]

--by smk: drop the service master key encryption; from then on every command
that needs the key fails with error 15581 unless given --open-password-file.
The drop is signed with the key, opened through the encryption it drops, so
that a copy of that encryption put back is never used; where it does not
open (damaged, missing or orphaned), the key's password is needed
(--open-password-file, or the prompt on a terminal).
--by password: drop the encryption by the password given (a password is
identified by the password itself); the last password encryption can never
be dropped. On a terminal, asks "Drop the smk encryption of the master key
of database DB? [y/N]" (or "a password encryption") first; --yes (-y) skips
the question. Off a terminal it does not ask.

Examples:
   keytree dmk drop-encryption --db payroll --by smk
   keytree dmk drop-encryption --db payroll --by password --password-file old.txt --yes`,
		Flags:  []cli.Flag{dbFlag(), &cli.StringFlag{Name: flagBy, Usage: "smk or password"}, passwordFileFlag("the password to drop (--by password)"), openPasswordFlag(), yesFlag()},
		Action: keystoreAction(e, parseDMKDropEncryption, runF, e.dmkDropEncryptionRun),
	}
}

type dmkDropEncryptionOptions struct {
	DB               string
	By               keystore.EncryptionKind
	PasswordFile     string  // the password to drop (--by password)
	OpenPasswordFile *string // opens the key where its SMK encryption does not (--by smk)
	Yes              bool
}

func parseDMKDropEncryption(a *argv) *dmkDropEncryptionOptions {
	by := a.by()
	a.noArgs()
	return &dmkDropEncryptionOptions{DB: a.db(), By: by, PasswordFile: a.string(flagPassword), OpenPasswordFile: a.optional(flagOpenPass), Yes: a.bool(flagYes)}
}

func (e *env) dmkDropEncryptionRun(in *invocation, opts *dmkDropEncryptionOptions) error {
	which := "the smk encryption"
	if opts.By == keystore.ByPassword {
		which = "a password encryption"
	}
	if err := e.confirm(opts.Yes, fmt.Sprintf("Drop %s of the master key of database %s?", which, opts.DB)); err != nil {
		return err
	}
	var err error
	if opts.By == keystore.ByPassword {
		if opts.OpenPasswordFile != nil {
			return usagef("--open-password-file goes with --by smk; the password to drop opens the key")
		}
		var pw []byte
		if pw, err = in.password(flagPassword, opts.PasswordFile, "Password to drop", false); err != nil {
			return err
		}
		err = in.ks.DropDMKEncryption(opts.DB, opts.By, pw)
	} else {
		err = in.withDMK(opts.OpenPasswordFile, func(open []byte) error {
			return in.ks.DropDMKEncryption(opts.DB, opts.By, open)
		})
	}
	if err != nil {
		return err
	}
	e.say("Dropped the %s encryption of the master key of %s.", opts.By, opts.DB)
	return nil
}

func (e *env) dmkRegenerateCommand(runF func(*dmkRegenerateOptions) error) *cli.Command {
	return &cli.Command{
		Name:  "regenerate",
		Usage: "replace a database master key with a new one, re-encrypting its secrets",
		UsageText: `keytree dmk regenerate --db DB [--password-file NEW] [--open-password-file P] [--force] [--algorithm A]

Generates a new database master key and re-encrypts every secret of DB under
it: all of it or none. As with SQL Server's REGENERATE WITH ENCRYPTION BY
PASSWORD, the new key is encrypted by one password, the new one given here
(asked for if --password-file is omitted), and by the service master key if
the old key was; add other passwords again afterwards. --force continues past
secrets that cannot be decrypted or read, keeping them orphaned, and then exits
10. Backups of the old key are stale afterwards (a note names the last one
recorded): back up the new key.

Examples:
   keytree dmk regenerate --db payroll --password-file new.txt
   keytree dmk regenerate --db payroll --password-file new.txt --algorithm mlkem768x25519`,
		Flags: []cli.Flag{dbFlag(), passwordFileFlag("the new key's password"), openPasswordFlag(), noPolicyFlag(),
			forceFlag("continue past secrets that cannot be decrypted or read, keeping them orphaned"),
			&cli.StringFlag{Name: flagAlgorithm, Usage: "the new key's algorithm (default: the current key's)"}},
		Action: keystoreAction(e, parseDMKRegenerate, runF, e.dmkRegenerateRun),
	}
}

type dmkRegenerateOptions struct {
	DB               string
	PasswordFile     string // the new key's
	OpenPasswordFile *string
	NoPasswordPolicy bool
	Force            bool
	Algorithm        protect.Algorithm // "": the current key's
}

func parseDMKRegenerate(a *argv) *dmkRegenerateOptions {
	alg := a.newAlgorithm()
	a.noArgs()
	return &dmkRegenerateOptions{DB: a.db(), PasswordFile: a.string(flagPassword), OpenPasswordFile: a.optional(flagOpenPass),
		NoPasswordPolicy: a.bool(flagNoPolicy), Force: a.bool(flagForce), Algorithm: alg}
}

func (e *env) dmkRegenerateRun(in *invocation, opts *dmkRegenerateOptions) error {
	newPW, err := in.password(flagPassword, opts.PasswordFile, "Password for the new database master key", true)
	if err != nil {
		return err
	}
	var res *keystore.RekeyResult
	err = in.withDMK(opts.OpenPasswordFile, func(open []byte) error {
		progress, done := e.progress("re-encrypting")
		defer done()
		res, err = in.ks.RegenerateDMK(opts.DB, newPW, keystore.DMKOptions{OpenPassword: open, Force: opts.Force,
			SkipPasswordPolicy: opts.NoPasswordPolicy, Algorithm: opts.Algorithm, Progress: progress})
		return err
	})
	return e.rekeyed(res, err, dmkReport("Regenerated", opts.DB))
}

func (e *env) dmkBackupCommand(runF func(*dmkBackupOptions) error) *cli.Command {
	return &cli.Command{
		Name:  "backup",
		Usage: "write a database master key to a password-protected file",
		UsageText: `keytree dmk backup --db DB --file F [--password-file P] [--open-password-file P]

Writes the database master key of DB to F, a standard age file encrypted with
a password that must pass the password policy, created owner-only; an existing
F is refused (error 15240). The backup is recorded in the database's directory
(key, time, file), and keytree status shows when the key in use was last
backed up.

Example:
   keytree dmk backup --db payroll --file payroll-dmk.age`,
		Flags:  []cli.Flag{dbFlag(), fileFlag("the backup `FILE` to create"), passwordFileFlag("the backup's password"), openPasswordFlag(), noPolicyFlag()},
		Action: keystoreAction(e, parseDMKBackup, runF, e.dmkBackupRun),
	}
}

type dmkBackupOptions struct {
	DB               string
	File             string
	PasswordFile     string
	OpenPasswordFile *string
	NoPasswordPolicy bool
}

func parseDMKBackup(a *argv) *dmkBackupOptions {
	a.noArgs()
	db := a.db()
	return &dmkBackupOptions{DB: db, File: a.file(), PasswordFile: a.string(flagPassword),
		OpenPasswordFile: a.optional(flagOpenPass), NoPasswordPolicy: a.bool(flagNoPolicy)}
}

func (e *env) dmkBackupRun(in *invocation, opts *dmkBackupOptions) error {
	pw, err := in.password(flagPassword, opts.PasswordFile, "Password for the backup", true)
	if err != nil {
		return err
	}
	err = in.withDMK(opts.OpenPasswordFile, func(open []byte) error {
		_, err := in.ks.BackupDMK(opts.DB, opts.File, pw, keystore.DMKOptions{OpenPassword: open, SkipPasswordPolicy: opts.NoPasswordPolicy})
		return err
	})
	if err != nil {
		return err
	}
	e.say("Wrote the master key of %s to %s.", opts.DB, opts.File)
	return nil
}

func (e *env) dmkRestoreCommand(runF func(*dmkRestoreOptions) error) *cli.Command {
	return &cli.Command{
		Name:  "restore",
		Usage: "make the key in a backup a database's master key",
		UsageText: `keytree dmk restore --db DB --file F [--password-file P] [--force] [--new-password-file P2]

Loads the key from F (a dmk backup), decrypts every secret of DB with the
current master key and re-encrypts it under the loaded one. If the current key
cannot be opened (15329) or a secret cannot be decrypted or read (15320),
nothing changes unless --force, which keeps what it does not re-encrypt,
orphaned, and exits 10. Before it changes anything it says what it would do:
how many secrets are under the current key, and whether they would be
re-encrypted or orphaned. Restoring the key in use changes nothing (15588). The restored key
is encrypted by the backup's password, or by --new-password-file, and by the
service master key if the old key was. A restore that replaced the key says
that the old key's backups are now stale.

Examples:
   keytree dmk restore --db payroll --file payroll-dmk.age
   keytree dmk restore --db payroll --file payroll-dmk.age --force --new-password-file new.txt`,
		Flags: []cli.Flag{dbFlag(), fileFlag("the backup `FILE`"), passwordFileFlag("the backup's password"), openPasswordFlag(),
			&cli.StringFlag{Name: flagNewPassword, Usage: "encrypt the restored key with the password in `FILE` instead of the backup's"},
			noPolicyFlag(), forceFlag("continue past what cannot be decrypted or read, keeping it orphaned")},
		Action: keystoreAction(e, parseDMKRestore, runF, e.dmkRestoreRun),
	}
}

type dmkRestoreOptions struct {
	DB               string
	File             string
	PasswordFile     string // the backup's
	OpenPasswordFile *string
	NewPasswordFile  *string // nil: the restored key keeps the backup's password
	NoPasswordPolicy bool
	Force            bool
}

func parseDMKRestore(a *argv) *dmkRestoreOptions {
	a.noArgs()
	db := a.db()
	return &dmkRestoreOptions{DB: db, File: a.file(), PasswordFile: a.string(flagPassword),
		OpenPasswordFile: a.optional(flagOpenPass), NewPasswordFile: a.optional(flagNewPassword),
		NoPasswordPolicy: a.bool(flagNoPolicy), Force: a.bool(flagForce)}
}

func (e *env) dmkRestoreRun(in *invocation, opts *dmkRestoreOptions) error {
	if err := existingFile(opts.File); err != nil {
		return err
	}
	pw, err := in.password(flagPassword, opts.PasswordFile, "Password of the backup", false)
	if err != nil {
		return err
	}
	var newPW []byte
	if opts.NewPasswordFile != nil {
		if newPW, err = in.password(flagNewPassword, *opts.NewPasswordFile, "New password for the database master key", true); err != nil {
			return err
		}
	}
	var res *keystore.RekeyResult
	err = in.withDMK(opts.OpenPasswordFile, func(open []byte) error {
		progress, done := e.progress("re-encrypting")
		defer done()
		res, err = in.ks.RestoreDMK(opts.DB, opts.File, pw, newPW, keystore.DMKOptions{OpenPassword: open, Force: opts.Force,
			SkipPasswordPolicy: opts.NoPasswordPolicy, Progress: progress})
		return err
	})
	return e.rekeyed(res, err, dmkReport("Restored", opts.DB))
}

func (e *env) dmkRecoverCommand(runF func(*dmkRecoverOptions) error) *cli.Command {
	return &cli.Command{
		Name:  "recover",
		Usage: "re-encrypt orphaned secrets with an old database master key's backup",
		UsageText: `keytree dmk recover --db DB [--file F] [--password-file P] [--open-password-file P]

Re-encrypts, under the current master key of DB, the orphaned secrets (those
a --force regenerate or restore could not decrypt) that an earlier key opens.
With --file, that key comes from its backup, and --password-file is the
backup's password. Without --file, --password-file is the earlier key's own
password: it opens the password encryptions of that key which the --force
kept because it could not open the key (a mistyped --open-password-file).

Examples:
   keytree dmk recover --db payroll --file payroll-dmk-old.age
   keytree dmk recover --db payroll --password-file old-password.txt`,
		Flags:  []cli.Flag{dbFlag(), fileFlag("the old key's backup `FILE`"), passwordFileFlag("the backup's password, or without --file the old key's"), openPasswordFlag()},
		Action: keystoreAction(e, parseDMKRecover, runF, e.dmkRecoverRun),
	}
}

type dmkRecoverOptions struct {
	DB               string
	File             string // "": recover with the earlier key's own password
	PasswordFile     string // the backup's password, or without File the earlier key's
	OpenPasswordFile *string
}

func parseDMKRecover(a *argv) *dmkRecoverOptions {
	a.noArgs()
	return &dmkRecoverOptions{DB: a.db(), File: a.string(flagFile), PasswordFile: a.string(flagPassword),
		OpenPasswordFile: a.optional(flagOpenPass)}
}

func (e *env) dmkRecoverRun(in *invocation, opts *dmkRecoverOptions) error {
	prompt := "Password of the earlier master key"
	if opts.File != "" {
		// Checked once the keystore is open, as it always was.
		if err := fileArg("dmk recover", opts.File); err != nil {
			return err
		}
		if err := existingFile(opts.File); err != nil {
			return err
		}
		prompt = "Password of the backup"
	}
	pw, err := in.password(flagPassword, opts.PasswordFile, prompt, false)
	if err != nil {
		return err
	}
	var res *keystore.RekeyResult
	err = in.withDMK(opts.OpenPasswordFile, func(open []byte) error {
		res, err = in.ks.RecoverDMK(opts.DB, opts.File, pw, keystore.DMKOptions{OpenPassword: open})
		return err
	})
	if err != nil {
		return err
	}
	e.say("Recovered %d orphaned secrets of %s; %d still orphaned.", res.Recovered, opts.DB, res.OrphansLeft)
	return nil
}

func (e *env) dmkDropCommand(runF func(*dmkDropOptions) error) *cli.Command {
	return &cli.Command{
		Name:  "drop",
		Usage: "drop a database master key and its database",
		UsageText: `keytree dmk drop --db DB [--yes]

Drops the database master key of DB, and the database with it. Refused with
error 15580 while secrets are encrypted by it: remove them first. On a
terminal, asks "Drop the master key of database DB, and the database? [y/N]"
first; --yes (-y) skips the question. Off a terminal it does not ask.

Examples:
   keytree dmk drop --db scratch
   keytree dmk drop --db scratch --yes`,
		Flags:  []cli.Flag{dbFlag(), yesFlag()},
		Action: keystoreAction(e, parseDMKDrop, runF, e.dmkDropRun),
	}
}

type dmkDropOptions struct {
	DB  string
	Yes bool
}

func parseDMKDrop(a *argv) *dmkDropOptions {
	a.noArgs()
	return &dmkDropOptions{DB: a.db(), Yes: a.bool(flagYes)}
}

func (e *env) dmkDropRun(in *invocation, opts *dmkDropOptions) error {
	return e.remove(opts.Yes, "Drop the master key of database "+opts.DB+", and the database?", func() error { return in.ks.DropDMK(opts.DB) },
		"Dropped the master key of "+opts.DB+".")
}
