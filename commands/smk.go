package commands

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/keytree-dev/keytree/keystore"
	"github.com/keytree-dev/keytree/protect"
)

const (
	flagOldAccountDir = "old-account-dir"
	flagNewAccountDir = "new-account-dir"
)

func passwordFileFlag(usage string) *cli.StringFlag {
	return &cli.StringFlag{Name: flagPassword, Usage: usage + ", from `FILE` (- for standard input; asked for on a terminal if omitted)"}
}

func noPolicyFlag() *cli.BoolFlag {
	return &cli.BoolFlag{Name: flagNoPolicy, Usage: "accept a password that fails the password policy (too short, or too easy to guess)"}
}

func forceFlag(usage string) *cli.BoolFlag {
	return &cli.BoolFlag{Name: flagForce, Usage: usage}
}

func fileFlag(usage string) *cli.StringFlag {
	return &cli.StringFlag{Name: flagFile, Usage: usage}
}

func (e *env) smkBackupCommand(runF func(*smkBackupOptions) error) *cli.Command {
	return &cli.Command{
		Name:  "backup",
		Usage: "write the service master key to a password-protected file",
		UsageText: `keytree smk backup --file F [--password-file P] [--no-password-policy]

Writes the service master key to F, a standard age file encrypted with a
password (scrypt), created owner-only. An existing F is refused (error 15240).
The password must pass the password policy: 8 to 128 characters, not
containing your account name, and hard to guess by a strength estimate
(zxcvbn): a passphrase of 4 or more random words, or a generated password,
passes; Password123! does not. Keep the file and its password somewhere
safe, apart: with them, docs/recovery.md recovers every credential without
keytree.
The backup is recorded in the keystore (key, time, file), and keytree status
shows when the key in use was last backed up.

Examples:
   keytree smk backup --file /media/usb/smk-2026-11.age
   keytree smk backup --file smk.age --password-file - < pass.txt
   openssl rand -base64 24 > pass.txt; keytree smk backup --file smk.age --password-file pass.txt`,
		Flags:  []cli.Flag{fileFlag("the backup `FILE` to create"), passwordFileFlag("the backup's password"), noPolicyFlag()},
		Action: keystoreAction(e, parseSMKBackup, runF, e.smkBackupRun),
	}
}

type smkBackupOptions struct {
	File             string
	PasswordFile     string
	NoPasswordPolicy bool
}

func parseSMKBackup(a *argv) *smkBackupOptions {
	a.noArgs()
	return &smkBackupOptions{File: a.file(), PasswordFile: a.string(flagPassword), NoPasswordPolicy: a.bool(flagNoPolicy)}
}

func (e *env) smkBackupRun(in *invocation, opts *smkBackupOptions) error {
	pw, err := in.password(flagPassword, opts.PasswordFile, "Password for the backup", true)
	if err != nil {
		return err
	}
	info, err := in.ks.BackupSMK(opts.File, pw, keystore.SMKOptions{SkipPasswordPolicy: opts.NoPasswordPolicy})
	if err != nil {
		return err
	}
	e.say("Wrote service master key %s to %s.", info.Thumbprint, opts.File)
	return nil
}

// rekeyReport describes, for printRekey, the key an operation replaced.
type rekeyReport struct {
	done        string // "Regenerated", "Restored the master key of payroll"
	key         string // "service master key", "master key of payroll"
	recover     string // the command that recovers orphans
	recoverKept string // the command that recovers them with the kept encryptions
	keptBy      string // what opens the kept encryptions
	backup      string // the command that backs the key up
	staleKey    string // the replaced key, in the note that its backups are stale
}

func smkReport(done string) rekeyReport {
	return rekeyReport{done: done, key: "service master key", recover: "keytree smk recover --file BACKUP",
		recoverKept: "keytree smk recover", keptBy: "the account or machine protector that encrypted them is back (KEYTREE_ACCOUNT_DIR, KEYTREE_MACHINE_DIR)",
		backup: "keytree smk backup --file FILE", staleKey: "service master key"}
}

func dmkReport(done, db string) rekeyReport {
	return rekeyReport{done: done + " the master key of " + db, key: "master key of " + db,
		recover: "keytree dmk recover --db " + db + " --file BACKUP", recoverKept: "keytree dmk recover --db " + db + " --password-file OLD",
		keptBy: "you have the old key's password (OLD)", backup: "keytree dmk backup --db " + db + " --file FILE",
		staleKey: "master key of database '" + db + "'"}
}

func (e *env) printRekey(res *keystore.RekeyResult, r rekeyReport) {
	if res.Unchanged {
		fmt.Fprintf(e.stderr, "keytree: %d: The old and new master keys are identical. No data re-encryption is required.\n", keystore.MsgSameKey)
		if res.Reprotected {
			fmt.Fprintf(e.stderr, "keytree: note: the backup holds the %s in use (%s, generation %d), which none of its encryptions opened here; "+
				"it is now protected for this account and this machine again, in the same generation: nothing was re-encrypted or orphaned\n",
				r.key, res.Thumbprint, res.Generation)
		}
		return
	}
	e.say("%s: the %s is now %s (%s, generation %d).", r.done, r.key, res.Thumbprint, res.Algorithm, res.Generation)
	e.say("%d values re-encrypted, %d orphans recovered.", res.Reencrypted, res.Recovered)
	// SQL Server's informational messages for what FORCE went past.
	if res.CurrentKeyLost {
		fmt.Fprintf(e.stderr, "keytree: %d: The current master key cannot be decrypted. The error was ignored because the FORCE option was specified.\n", keystore.MsgCurrentForced)
	}
	for _, o := range res.Orphaned {
		fmt.Fprintf(e.stderr, "keytree: %d: An error occurred while decrypting %s that was encrypted by the old master key. The error was ignored because the FORCE option was specified.\n", keystore.MsgItemForced, o)
	}
	for _, u := range res.Unreadable {
		fmt.Fprintf(e.stderr, "keytree: warning: cannot read %s\n", u)
	}
	if res.OrphanedCount > 0 {
		fmt.Fprintf(e.stderr, "keytree: warning: %d values could not be decrypted and were kept on disk, orphaned\n", res.OrphanedCount)
		fmt.Fprintf(e.stderr, "keytree: hint: keytree status lists them with the key each needs; recover them with: %s\n", r.recover)
	}
	switch {
	case res.KeptEncryptions > 0 && res.CurrentKeyLost:
		fmt.Fprintf(e.stderr, "keytree: note: the old key could not be opened, so its encryptions (%d) were kept with its orphans; once %s, recover them with: %s\n",
			res.KeptEncryptions, r.keptBy, r.recoverKept)
	case res.KeptEncryptions > 0:
		fmt.Fprintf(e.stderr, "keytree: note: some values could not be read, so the old key's encryptions (%d) were kept with its orphans; once their files can be read, recover them with: %s\n",
			res.KeptEncryptions, r.recoverKept)
	}
	if res.Replaced != "" {
		last := "none was recorded"
		if b := res.ReplacedBackup; b.Problem != "" {
			last = "the records cannot be read: " + b.Problem
		} else if !b.Time.IsZero() {
			last = "the last one recorded is " + b.File + ", of " + timeString(b.Time)
		}
		fmt.Fprintf(e.stderr, "keytree: note: backups of the replaced %s %s are now stale (%s); back up the new key: %s\n",
			r.staleKey, res.Replaced, escape(last), r.backup)
	}
}

// rekeyed ends a restore or regenerate: err if it failed; else what it
// did, printed (printRekey), and errLeftOrphans (exit 10) if it orphaned
// values, which only --force does (P18). The status goes with the 15584
// lines and the warning that say which; orphans left by earlier runs do not
// count, as their own run exited 10 and status lists them
// (counts.orphaned).
func (e *env) rekeyed(res *keystore.RekeyResult, err error, r rekeyReport) error {
	if err != nil {
		return err
	}
	e.printRekey(res, r)
	if res.OrphanedCount > 0 {
		return errLeftOrphans
	}
	return nil
}

func (e *env) smkRestoreCommand(runF func(*smkRestoreOptions) error) *cli.Command {
	return &cli.Command{
		Name:  "restore",
		Usage: "make the key in a backup the service master key",
		UsageText: `keytree smk restore --file F [--password-file P] [--force]

Loads the key from F, decrypts everything the current service master key
protects and re-encrypts it under the loaded key, then protects the loaded key
with your account and this machine. If the current key cannot be opened
(15329), or a value cannot be decrypted or read (15320), nothing changes unless
--force is given; with --force, whatever is not re-encrypted is kept, orphaned,
for keytree smk recover, and the command exits 10. Before it changes anything
it says what it would do: how many values are under the current key, and
whether they would be re-encrypted or orphaned.

Restoring the key already in use changes nothing (15588). If none of its
encryptions opens (the account and machine secrets are lost or belong to
another account and machine), that backup protects it again for this account
and machine, without --force, in the same generation: nothing is re-encrypted
or orphaned. A restore that replaced the key says that the old key's backups
are now stale: back up the key afterwards.

Examples:
   keytree smk restore --file /media/usb/smk-2026-11.age
   keytree smk restore --file smk-current.age     # protectors lost (15466), same key
   keytree smk restore --file smk-old.age --force # another key: orphans what it cannot open, exit 10`,
		Flags:  []cli.Flag{fileFlag("the backup `FILE`"), passwordFileFlag("the backup's password"), forceFlag("continue past what cannot be decrypted or read, keeping it orphaned")},
		Action: keystoreAction(e, parseSMKRestore, runF, e.smkRestoreRun),
	}
}

type smkRestoreOptions struct {
	File         string
	PasswordFile string
	Force        bool
}

func parseSMKRestore(a *argv) *smkRestoreOptions {
	a.noArgs()
	return &smkRestoreOptions{File: a.file(), PasswordFile: a.string(flagPassword), Force: a.bool(flagForce)}
}

func (e *env) smkRestoreRun(in *invocation, opts *smkRestoreOptions) error {
	if err := existingFile(opts.File); err != nil {
		return err
	}
	pw, err := in.password(flagPassword, opts.PasswordFile, "Password of the backup", false)
	if err != nil {
		return err
	}
	progress, done := e.progress("re-encrypting")
	res, err := in.ks.RestoreSMK(opts.File, pw, keystore.SMKOptions{Force: opts.Force, Progress: progress})
	done()
	return e.rekeyed(res, err, smkReport("Restored"))
}

func (e *env) smkRegenerateCommand(runF func(*smkRegenerateOptions) error) *cli.Command {
	return &cli.Command{
		Name:  "regenerate",
		Usage: "replace the service master key with a new one, re-encrypting everything",
		UsageText: `keytree smk regenerate [--force] [--algorithm x25519|mlkem768x25519]

Generates a new service master key, decrypts everything the current key
protects and re-encrypts it under the new one: either all of it happens or
none. --force continues past values that cannot be decrypted or read, keeping
them orphaned, and then exits 10. --algorithm upgrades (or changes) the key type, as SQL Server's
regeneration upgraded 3DES keys to AES. Backups of the old key are stale
afterwards (a note names the last one recorded): back up the new key.

Examples:
   keytree smk regenerate
   keytree smk regenerate --algorithm mlkem768x25519
   keytree smk backup --file smk-new.age`,
		Flags: []cli.Flag{forceFlag("continue past what cannot be decrypted or read, keeping it orphaned"),
			&cli.StringFlag{Name: flagAlgorithm, Usage: "the new key's algorithm: x25519 or mlkem768x25519 (default: the current key's)"}},
		Action: keystoreAction(e, parseSMKRegenerate, runF, e.smkRegenerateRun),
	}
}

type smkRegenerateOptions struct {
	Force     bool
	Algorithm protect.Algorithm // "": the current key's
}

func parseSMKRegenerate(a *argv) *smkRegenerateOptions {
	alg := a.newAlgorithm()
	a.noArgs()
	return &smkRegenerateOptions{Force: a.bool(flagForce), Algorithm: alg}
}

func (e *env) smkRegenerateRun(in *invocation, opts *smkRegenerateOptions) error {
	progress, done := e.progress("re-encrypting")
	res, err := in.ks.RegenerateSMK(keystore.SMKOptions{Force: opts.Force, Algorithm: opts.Algorithm, Progress: progress})
	done()
	return e.rekeyed(res, err, smkReport("Regenerated"))
}

func (e *env) smkRecoverCommand(runF func(*smkRecoverOptions) error) *cli.Command {
	return &cli.Command{
		Name:  "recover",
		Usage: "re-encrypt orphaned values with an old service master key's backup",
		UsageText: `keytree smk recover [--file F [--password-file P]]

Re-encrypts, under the current service master key, the orphaned values
(values a --force regenerate or restore could not decrypt) that an earlier
key opens. With --file, that key comes from its backup. Without it, from the
encryptions of the earlier key that the --force kept because it could not
open them: they open once the account or machine protector that encrypted
them is back (the right KEYTREE_ACCOUNT_DIR or KEYTREE_MACHINE_DIR).
keytree status lists orphans and the key each one needs.

Examples:
   keytree smk recover --file smk-2026-10.age
   keytree smk recover`,
		Flags:  []cli.Flag{fileFlag("the old key's backup `FILE`"), passwordFileFlag("the backup's password")},
		Action: keystoreAction(e, parseSMKRecover, runF, e.smkRecoverRun),
	}
}

type smkRecoverOptions struct {
	File         string // "": recover with the encryptions a --force kept
	PasswordFile string
}

func parseSMKRecover(a *argv) *smkRecoverOptions {
	file := a.string(flagFile)
	a.check(func() error {
		if file == "" && a.c.IsSet(flagPassword) {
			return usagef("--%s is the password of a backup: give --%s too", flagPassword, flagFile)
		}
		return fileArg(cmdName(a.c), file)
	})
	a.noArgs()
	return &smkRecoverOptions{File: file, PasswordFile: a.string(flagPassword)}
}

func (e *env) smkRecoverRun(in *invocation, opts *smkRecoverOptions) error {
	var pw []byte
	if opts.File != "" {
		if err := existingFile(opts.File); err != nil {
			return err
		}
		var err error
		if pw, err = in.password(flagPassword, opts.PasswordFile, "Password of the backup", false); err != nil {
			return err
		}
	}
	progress, done := e.progress("recovering")
	res, err := in.ks.RecoverSMK(opts.File, pw, keystore.SMKOptions{Progress: progress})
	done()
	if err != nil {
		return err
	}
	e.say("Recovered %d orphaned values; %d still orphaned.", res.Recovered, res.OrphansLeft)
	return nil
}

func (e *env) smkAlterCommand(runF func(*smkAlterOptions) error) *cli.Command {
	return &cli.Command{
		Name:  "alter",
		Usage: "re-protect the service master key for an old or a new account",
		UsageText: `keytree smk alter --old-account-dir DIR
keytree smk alter --new-account-dir DIR

--old-account-dir: when neither encryption of the service master key opens
(15466) after an account change, open it with the earlier account's protector
secret (the account directory it used), then protect it for the current
account and this machine (SQL Server's WITH OLD_ACCOUNT).

--new-account-dir: protect the key for another account's protector secret
before switching keytree to that account (SQL Server's WITH NEW_ACCOUNT).
Until the switch, the current account opens the key through the machine
encryption, so run it just before switching.

Examples:
   keytree smk alter --old-account-dir /home/olduser/.config/keytree/account
   keytree smk alter --new-account-dir /srv/keytree/account-svc2`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: flagOldAccountDir, Usage: "the earlier account's protector `DIR`"},
			&cli.StringFlag{Name: flagNewAccountDir, Usage: "the next account's protector `DIR`"},
		},
		Action: keystoreAction(e, parseSMKAlter, runF, e.smkAlterRun),
	}
}

type smkAlterOptions struct {
	OldAccountDir string
	NewAccountDir string
}

func parseSMKAlter(a *argv) *smkAlterOptions {
	opts := &smkAlterOptions{OldAccountDir: a.string(flagOldAccountDir), NewAccountDir: a.string(flagNewAccountDir)}
	a.check(func() error {
		if (opts.OldAccountDir == "") == (opts.NewAccountDir == "") {
			return usagef("smk alter needs exactly one of --old-account-dir and --new-account-dir")
		}
		return nil
	})
	a.noArgs()
	return opts
}

func (e *env) smkAlterRun(in *invocation, opts *smkAlterOptions) error {
	if opts.OldAccountDir != "" {
		res, err := in.ks.AlterSMKOldAccount(opts.OldAccountDir)
		if err != nil {
			return err
		}
		if res.AlreadyValid {
			e.say("The service master key already opens with the current account and machine; nothing to do.")
		} else {
			e.say("Opened the service master key with the old account and protected it for the current account and machine.")
		}
		return nil
	}
	if _, err := in.ks.AlterSMKNewAccount(opts.NewAccountDir); err != nil {
		return err
	}
	e.say("The account encryption of the service master key now belongs to the account in %s.", opts.NewAccountDir)
	return nil
}

func (e *env) smkVerifyCommand(runF func(*reportOptions) error) *cli.Command {
	return &cli.Command{
		Name:  "verify",
		Usage: "check both encryptions of the service master key, re-creating an invalid one",
		UsageText: `keytree smk verify [--json]

Runs the check every command runs when it opens the service master key: the
account encryption, then the machine encryption; one that fails is re-created
from the one that works. If neither works, it fails with error 15466.

Example:
   keytree smk verify`,
		Flags:  []cli.Flag{jsonFlag()},
		Action: keystoreAction(e, parseReport, runF, e.smkVerifyRun),
	}
}

func (e *env) smkVerifyRun(in *invocation, opts *reportOptions) error {
	info, err := in.ks.VerifySMK()
	if err != nil {
		return err
	}
	if opts.JSON {
		return writeJSON(e.stdout, smkInfoJSON(info))
	}
	rows := [][]string{{"service master key:", info.Thumbprint + " (" + string(info.Algorithm) + ")"}}
	return table(e.stdout, nil, append(rows, encryptionLines(info)...))
}

func (e *env) smkMachineProtectionCommand(runF func(*smkMachineProtectionOptions) error) *cli.Command {
	return &cli.Command{
		Name:  "machine-protection",
		Usage: "turn the machine encryption of the service master key off or on",
		UsageText: `keytree smk machine-protection off|on

With machine protection off, only your account's protector can open the service
master key: a copy of the keystore and the machine's secrets is not enough, but
a lost account secret is no longer repaired from the machine encryption, so keep
a backup (docs/security.md).

Examples:
   keytree smk machine-protection off
   keytree smk machine-protection on`,
		Action: keystoreAction(e, parseSMKMachineProtection, runF, e.smkMachineProtectionRun),
	}
}

type smkMachineProtectionOptions struct {
	On bool
}

func parseSMKMachineProtection(a *argv) *smkMachineProtectionOptions {
	arg := a.oneArg("off or on")
	a.check(func() error {
		if arg != "on" && arg != "off" {
			return usagef("machine-protection takes off or on, not %q", arg)
		}
		return nil
	})
	return &smkMachineProtectionOptions{On: arg == "on"}
}

func (e *env) smkMachineProtectionRun(in *invocation, opts *smkMachineProtectionOptions) error {
	changed, err := in.ks.SetMachineProtection(opts.On)
	if err != nil {
		return err
	}
	state := "off"
	if opts.On {
		state = "on"
	}
	if changed {
		e.say("Machine protection is now %s.", state)
	} else {
		e.say("Machine protection was already %s.", state)
	}
	return nil
}
