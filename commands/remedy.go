package commands

import (
	"fmt"
	"runtime"

	"github.com/keytree-dev/keytree/keystore"
)

// hintText is the hint printed after a keystore error (report's
// "keytree: hint:" line, doctor's parenthesis): the error's Hint, which is
// prose, or the words for its Remedy, which name the commands, flags and
// variables that take the step. Empty when the error has neither.
func hintText(e *keystore.Error) string {
	s := e.Hint
	if w := remedyText(e.Remedy, runtime.GOOS); w != "" {
		if s != "" {
			s += "; "
		}
		s += w
	}
	if e.Remedy.OrOpenDMK {
		const open = "open the database master key with its password: --open-password-file FILE"
		if s == "" {
			return open
		}
		s += "; or " + open
	}
	return s
}

// remedyText words a keystore remedy for keytree's users, as keytree runs
// on goos; "" for RemedyNone (and a kind it does not know).
func remedyText(r keystore.Remedy, goos string) string {
	s := remedyWords(r, goos)
	if r.IfNew && s != "" {
		s = fmt.Sprintf("if '%s' is to be a new database: %s", r.Database, s)
	}
	return s
}

func remedyWords(r keystore.Remedy, goos string) string {
	const (
		restoreSMK = "restore it from a backup: keytree smk restore --file BACKUP --force"
		recoverSMK = "keytree smk recover --file BACKUP"
	)
	db := r.Database
	switch r.Kind {
	case keystore.RemedyRestoreSMK:
		switch r.InvalidEncryptions {
		case 2:
			return "both encryptions of the service master key are invalid; " + restoreSMK
		case 1:
			return "the service master key's only encryption (machine protection is off) is invalid; " + restoreSMK
		}
		return "restore the service master key from a backup: keytree smk restore --file BACKUP --force"
	case keystore.RemedyOldProtectorsOrRecoverSMK:
		return "point KEYTREE_ACCOUNT_DIR / KEYTREE_MACHINE_DIR at the protectors that encrypted them, or recover from a backup: " + recoverSMK
	case keystore.RemedyRecoverCredential:
		return "recover it with a backup of that key: " + recoverSMK
	case keystore.RemedyRecoverSecret:
		return fmt.Sprintf("recover it with a backup of that key: keytree dmk recover --db %s --file BACKUP", db)
	case keystore.RemedyOldPasswordOrRecoverDMK:
		return fmt.Sprintf("give the old key's password, or recover from a backup: keytree dmk recover --db %s --file BACKUP", db)
	case keystore.RemedyListOrphans:
		return "keytree status lists orphaned values"
	case keystore.RemedyListOrphanKeys:
		return "keytree status lists orphaned values and the key each was encrypted by"
	case keystore.RemedyForce:
		return "nothing was changed; rerun with --force to continue"
	case keystore.RemedyForcePastItem:
		return "nothing was changed; rerun with --force to continue past it"

	case keystore.RemedyCreateDatabase:
		return fmt.Sprintf("create it with: keytree dmk create --db %s", db)
	case keystore.RemedyCreateDMK:
		return fmt.Sprintf("create one with: keytree dmk create --db %s", db)
	case keystore.RemedyListDatabases:
		return fmt.Sprintf("database '%s' already has one; see keytree db list", db)
	case keystore.RemedyImportAs:
		return fmt.Sprintf("database '%s' exists; import under another name with --db", db)
	case keystore.RemedyRemoveSecrets:
		return fmt.Sprintf("remove them first (keytree secret list %s; keytree secret rm %s/NAME)", db, db)
	case keystore.RemedyOpenDMK:
		return "open it with its password: --open-password-file FILE (- for standard input)"
	case keystore.RemedyOpenDMKOrRecoverSMK:
		return "open it with its password (--open-password-file FILE), or recover it: " + recoverSMK
	case keystore.RemedyOpenDMKOrForce:
		return "open it with its password (--open-password-file), or rerun with --force; nothing was changed"
	case keystore.RemedyAddPassword:
		return "a database master key always keeps a password encryption: add another password first (keytree dmk add-encryption --by password)"
	case keystore.RemedyPasswordPolicy:
		return "use a passphrase of 4 or more random words, or a generated password (openssl rand -base64 24 > FILE); or pass --no-password-policy to accept this one"

	case keystore.RemedySettleMachineProtection:
		return "settle it first: 'keytree smk machine-protection on' to keep machine protection, or 'keytree smk machine-protection off' to remove that encryption"
	case keystore.RemedyFixAccountProtector:
		return "fix the account protector first (see keytree status)"

	case keystore.RemedyInit:
		return "create one with: keytree init"
	case keystore.RemedyInitOrChooseKeystore:
		return "create one with: keytree init (or point --keystore / KEYTREE_DIR at an existing one)"
	case keystore.RemedyChooseKeystore:
		return "it holds other files: point --keystore (or KEYTREE_DIR) at your keystore, or create one in a new directory with: keytree init --keystore NEWDIR"
	case keystore.RemedyKeepKeystore:
		return "use it as it is, or choose another directory with --keystore"
	case keystore.RemedyChooseEmptyDir:
		return "choose an empty or new directory with --keystore"
	case keystore.RemedyRestoreIntoNewDir:
		return "restore into a new directory: --keystore DIR"
	case keystore.RemedyRestoreIntoEmptyDir:
		return "restore into a new or empty directory with --keystore DIR"
	case keystore.RemedyRestoreBesideKeystore:
		return "restore into a new or empty directory with --keystore DIR; to replace this keystore, move it aside first"
	case keystore.RemedyLockTimeout:
		return "wait for it to finish and try again, or set KEYTREE_LOCK_TIMEOUT (for example 120, in seconds) to wait longer"
	case keystore.RemedyAllowOtherOwner:
		who := "root"
		if goos == "windows" {
			who = "an administrator"
		}
		return fmt.Sprintf("run keytree as the keystore's owner; to use it anyway (%s inspecting a user's keystore), set KEYTREE_ALLOW_OTHER_OWNER=1", who)
	case keystore.RemedySeparateDirs:
		return "keep the keystore and each protector's secret in separate directories, none inside another (KEYTREE_DIR, KEYTREE_ACCOUNT_DIR, KEYTREE_MACHINE_DIR)"
	case keystore.RemedyCreateProtectorDirs:
		return "check KEYTREE_ACCOUNT_DIR, KEYTREE_MACHINE_DIR and HOME (a typo names a new, empty directory); if this directory is the right one, run the command again with --create-protector-dirs"
	case keystore.RemedyProtectorDirOwner:
		return "run keytree as the directory's owner, or point KEYTREE_ACCOUNT_DIR / KEYTREE_MACHINE_DIR (or HOME) at a directory of this account"
	case keystore.RemedyNewDir:
		d := dirWords(r.Dir)
		return fmt.Sprintf("point %s at a path that does not exist yet: %s the %s there, private to its owner", d.flag, d.creates, r.Dir)
	case keystore.RemedyAcceptRollback:
		return "if you restored the keystore from an older copy on purpose, accept it with: keytree keystore accept-rollback"
	case keystore.RemedyUpgrade:
		return "upgrade the keystore with: keytree upgrade"
	case keystore.RemedyImportIdentity:
		return "give one identity for all of them with --identity, or each its own (\"identity\" in a JSON file)"
	case keystore.RemedyOwnDir:
		d := dirWords(r.Dir)
		return fmt.Sprintf("check %s: it names a directory that is not keytree's; leave that directory's permissions as they are, and point keytree at its own %s (a path that does not exist yet: %s it)", d.flag, r.Dir, d.creates)
	}
	return ""
}

// dirWords names, for one of keytree's directories, the flag and variable
// that point keytree at it and what creates it.
func dirWords(r keystore.DirRole) (w struct{ flag, creates string }) {
	const protectorDirCreators = "keytree init (or a command given --create-protector-dirs) creates"
	switch r {
	case keystore.DirKeystore:
		w.flag, w.creates = "--keystore (or KEYTREE_DIR)", "keytree init creates"
	case keystore.DirAccount:
		w.flag, w.creates = "--account-dir (or KEYTREE_ACCOUNT_DIR)", protectorDirCreators
	case keystore.DirMachine:
		w.flag, w.creates = "--machine-dir (or KEYTREE_MACHINE_DIR)", protectorDirCreators
	}
	return w
}
