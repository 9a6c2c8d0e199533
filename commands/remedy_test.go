package commands

import (
	"errors"
	"fmt"
	"testing"

	"github.com/keytree-dev/keytree/keystore"
)

// TestRemedyText pins the words of every remedy keystore can give: the
// hints keytree prints (docs/cli-abi.md quotes them). Every kind needs a
// row.
func TestRemedyText(t *testing.T) {
	type row struct {
		r    keystore.Remedy
		goos string // "" for linux
		want string
	}
	rows := []row{
		{keystore.Remedy{Kind: keystore.RemedyRestoreSMK, InvalidEncryptions: 2}, "",
			"both encryptions of the service master key are invalid; restore it from a backup: keytree smk restore --file BACKUP --force"},
		{keystore.Remedy{Kind: keystore.RemedyRestoreSMK, InvalidEncryptions: 1}, "",
			"the service master key's only encryption (machine protection is off) is invalid; restore it from a backup: keytree smk restore --file BACKUP --force"},
		{keystore.Remedy{Kind: keystore.RemedyRestoreSMK}, "",
			"restore the service master key from a backup: keytree smk restore --file BACKUP --force"},
		{keystore.Remedy{Kind: keystore.RemedyOldProtectorsOrRecoverSMK}, "",
			"point KEYTREE_ACCOUNT_DIR / KEYTREE_MACHINE_DIR at the protectors that encrypted them, or recover from a backup: keytree smk recover --file BACKUP"},
		{keystore.Remedy{Kind: keystore.RemedyRecoverCredential}, "",
			"recover it with a backup of that key: keytree smk recover --file BACKUP"},
		{keystore.Remedy{Kind: keystore.RemedyRecoverSecret, Database: "payroll"}, "",
			"recover it with a backup of that key: keytree dmk recover --db payroll --file BACKUP"},
		{keystore.Remedy{Kind: keystore.RemedyOldPasswordOrRecoverDMK, Database: "payroll"}, "",
			"give the old key's password, or recover from a backup: keytree dmk recover --db payroll --file BACKUP"},
		{keystore.Remedy{Kind: keystore.RemedyListOrphans}, "",
			"keytree status lists orphaned values"},
		{keystore.Remedy{Kind: keystore.RemedyListOrphanKeys}, "",
			"keytree status lists orphaned values and the key each was encrypted by"},
		{keystore.Remedy{Kind: keystore.RemedyForce}, "",
			"nothing was changed; rerun with --force to continue"},
		{keystore.Remedy{Kind: keystore.RemedyForcePastItem}, "",
			"nothing was changed; rerun with --force to continue past it"},

		{keystore.Remedy{Kind: keystore.RemedyCreateDatabase, Database: "payroll"}, "",
			"create it with: keytree dmk create --db payroll"},
		{keystore.Remedy{Kind: keystore.RemedyCreateDatabase, Database: "payrol", IfNew: true}, "",
			"if 'payrol' is to be a new database: create it with: keytree dmk create --db payrol"},
		{keystore.Remedy{Kind: keystore.RemedyCreateDMK, Database: "payroll"}, "",
			"create one with: keytree dmk create --db payroll"},
		{keystore.Remedy{Kind: keystore.RemedyCreateDMK, Database: "payrol", IfNew: true}, "",
			"if 'payrol' is to be a new database: create one with: keytree dmk create --db payrol"},
		{keystore.Remedy{Kind: keystore.RemedyListDatabases, Database: "payroll"}, "",
			"database 'payroll' already has one; see keytree db list"},
		{keystore.Remedy{Kind: keystore.RemedyImportAs, Database: "payroll"}, "",
			"database 'payroll' exists; import under another name with --db"},
		{keystore.Remedy{Kind: keystore.RemedyRemoveSecrets, Database: "payroll"}, "",
			"remove them first (keytree secret list payroll; keytree secret rm payroll/NAME)"},
		{keystore.Remedy{Kind: keystore.RemedyOpenDMK}, "",
			"open it with its password: --open-password-file FILE (- for standard input)"},
		{keystore.Remedy{Kind: keystore.RemedyOpenDMKOrRecoverSMK}, "",
			"open it with its password (--open-password-file FILE), or recover it: keytree smk recover --file BACKUP"},
		{keystore.Remedy{Kind: keystore.RemedyOpenDMKOrForce}, "",
			"open it with its password (--open-password-file), or rerun with --force; nothing was changed"},
		{keystore.Remedy{Kind: keystore.RemedyAddPassword}, "",
			"a database master key always keeps a password encryption: add another password first (keytree dmk add-encryption --by password)"},
		{keystore.Remedy{Kind: keystore.RemedyPasswordPolicy}, "",
			"use a passphrase of 4 or more random words, or a generated password (openssl rand -base64 24 > FILE); or pass --no-password-policy to accept this one"},

		{keystore.Remedy{Kind: keystore.RemedySettleMachineProtection}, "",
			"settle it first: 'keytree smk machine-protection on' to keep machine protection, or 'keytree smk machine-protection off' to remove that encryption"},
		{keystore.Remedy{Kind: keystore.RemedyFixAccountProtector}, "",
			"fix the account protector first (see keytree status)"},

		{keystore.Remedy{Kind: keystore.RemedyAcceptRollback}, "",
			"if you restored the keystore from an older copy on purpose, accept it with: keytree keystore accept-rollback"},
		{keystore.Remedy{Kind: keystore.RemedyUpgrade}, "",
			"upgrade the keystore with: keytree upgrade"},
		{keystore.Remedy{Kind: keystore.RemedyInit}, "",
			"create one with: keytree init"},
		{keystore.Remedy{Kind: keystore.RemedyInitOrChooseKeystore}, "",
			"create one with: keytree init (or point --keystore / KEYTREE_DIR at an existing one)"},
		{keystore.Remedy{Kind: keystore.RemedyChooseKeystore}, "",
			"it holds other files: point --keystore (or KEYTREE_DIR) at your keystore, or create one in a new directory with: keytree init --keystore NEWDIR"},
		{keystore.Remedy{Kind: keystore.RemedyKeepKeystore}, "",
			"use it as it is, or choose another directory with --keystore"},
		{keystore.Remedy{Kind: keystore.RemedyChooseEmptyDir}, "",
			"choose an empty or new directory with --keystore"},
		{keystore.Remedy{Kind: keystore.RemedyRestoreIntoNewDir}, "",
			"restore into a new directory: --keystore DIR"},
		{keystore.Remedy{Kind: keystore.RemedyRestoreIntoEmptyDir}, "",
			"restore into a new or empty directory with --keystore DIR"},
		{keystore.Remedy{Kind: keystore.RemedyRestoreBesideKeystore}, "",
			"restore into a new or empty directory with --keystore DIR; to replace this keystore, move it aside first"},
		{keystore.Remedy{Kind: keystore.RemedyLockTimeout}, "",
			"wait for it to finish and try again, or set KEYTREE_LOCK_TIMEOUT (for example 120, in seconds) to wait longer"},
		{keystore.Remedy{Kind: keystore.RemedyAllowOtherOwner}, "",
			"run keytree as the keystore's owner; to use it anyway (root inspecting a user's keystore), set KEYTREE_ALLOW_OTHER_OWNER=1"},
		{keystore.Remedy{Kind: keystore.RemedyAllowOtherOwner}, "darwin",
			"run keytree as the keystore's owner; to use it anyway (root inspecting a user's keystore), set KEYTREE_ALLOW_OTHER_OWNER=1"},
		{keystore.Remedy{Kind: keystore.RemedyAllowOtherOwner}, "windows",
			"run keytree as the keystore's owner; to use it anyway (an administrator inspecting a user's keystore), set KEYTREE_ALLOW_OTHER_OWNER=1"},
		{keystore.Remedy{Kind: keystore.RemedySeparateDirs}, "",
			"keep the keystore and each protector's secret in separate directories, none inside another (KEYTREE_DIR, KEYTREE_ACCOUNT_DIR, KEYTREE_MACHINE_DIR)"},
		{keystore.Remedy{Kind: keystore.RemedyCreateProtectorDirs}, "",
			"check KEYTREE_ACCOUNT_DIR, KEYTREE_MACHINE_DIR and HOME (a typo names a new, empty directory); if this directory is the right one, run the command again with --create-protector-dirs"},
		{keystore.Remedy{Kind: keystore.RemedyProtectorDirOwner}, "",
			"run keytree as the directory's owner, or point KEYTREE_ACCOUNT_DIR / KEYTREE_MACHINE_DIR (or HOME) at a directory of this account"},
		{keystore.Remedy{Kind: keystore.RemedyNewDir, Dir: keystore.DirKeystore}, "",
			"point --keystore (or KEYTREE_DIR) at a path that does not exist yet: keytree init creates the keystore there, private to its owner"},
		{keystore.Remedy{Kind: keystore.RemedyNewDir, Dir: keystore.DirAccount}, "",
			"point --account-dir (or KEYTREE_ACCOUNT_DIR) at a path that does not exist yet: keytree init (or a command given --create-protector-dirs) creates the account directory there, private to its owner"},
		{keystore.Remedy{Kind: keystore.RemedyNewDir, Dir: keystore.DirMachine}, "",
			"point --machine-dir (or KEYTREE_MACHINE_DIR) at a path that does not exist yet: keytree init (or a command given --create-protector-dirs) creates the machine directory there, private to its owner"},
		{keystore.Remedy{Kind: keystore.RemedyOwnDir, Dir: keystore.DirKeystore}, "",
			"check --keystore (or KEYTREE_DIR): it names a directory that is not keytree's; leave that directory's permissions as they are, and point keytree at its own keystore (a path that does not exist yet: keytree init creates it)"},
		{keystore.Remedy{Kind: keystore.RemedyOwnDir, Dir: keystore.DirAccount}, "",
			"check --account-dir (or KEYTREE_ACCOUNT_DIR): it names a directory that is not keytree's; leave that directory's permissions as they are, and point keytree at its own account directory (a path that does not exist yet: keytree init (or a command given --create-protector-dirs) creates it)"},
		{keystore.Remedy{Kind: keystore.RemedyOwnDir, Dir: keystore.DirMachine}, "",
			"check --machine-dir (or KEYTREE_MACHINE_DIR): it names a directory that is not keytree's; leave that directory's permissions as they are, and point keytree at its own machine directory (a path that does not exist yet: keytree init (or a command given --create-protector-dirs) creates it)"},
		{keystore.Remedy{Kind: keystore.RemedyImportIdentity}, "",
			`give one identity for all of them with --identity, or each its own ("identity" in a JSON file)`},
	}
	covered := map[keystore.RemedyKind]bool{}
	for _, r := range rows {
		goos := r.goos
		if goos == "" {
			goos = "linux"
		}
		covered[r.r.Kind] = true
		if got := remedyText(r.r, goos); got != r.want {
			t.Errorf("remedy %+v on %s:\n got %q\nwant %q", r.r, goos, got, r.want)
		}
	}
	kinds := keystore.RemedyKinds()
	if len(kinds) == 0 {
		t.Fatal("keystore.RemedyKinds lists no kind")
	}
	for _, k := range kinds {
		if !covered[k] {
			t.Errorf("remedy kind %d has no row (and maybe no words in remedyText)", k)
		}
	}
	if got := remedyText(keystore.Remedy{}, "linux"); got != "" {
		t.Errorf("RemedyNone is worded %q", got)
	}
}

// TestHintText: the hint is the error's prose Hint or its remedy's words,
// and a remedy's other way (OrOpenDMK) follows either.
func TestHintText(t *testing.T) {
	const damaged = "restore /k/account.key from a backup; or, to give up on it, move it aside (rename it to account.key.damaged) and keytree creates a new one, which invalidates its encryptions"
	for _, tc := range []struct {
		name string
		e    keystore.Error
		want string
	}{
		{"neither", keystore.Error{Text: "x"}, ""},
		{"prose", keystore.Error{Hint: "nothing was imported"}, "nothing was imported"},
		{"remedy", keystore.Error{Remedy: keystore.Remedy{Kind: keystore.RemedyLockTimeout}},
			"wait for it to finish and try again, or set KEYTREE_LOCK_TIMEOUT (for example 120, in seconds) to wait longer"},
		{"remedy, or the password", keystore.Error{Remedy: keystore.Remedy{Kind: keystore.RemedyRestoreSMK, InvalidEncryptions: 2, OrOpenDMK: true}},
			"both encryptions of the service master key are invalid; restore it from a backup: keytree smk restore --file BACKUP --force; or open the database master key with its password: --open-password-file FILE"},
		{"damaged protector secret, or the password", keystore.Error{Hint: damaged, Remedy: keystore.Remedy{OrOpenDMK: true}},
			damaged + "; or open the database master key with its password: --open-password-file FILE"},
	} {
		if got := hintText(&tc.e); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

// TestDefaultDirsError: with no home directory, the error names the
// variables that give the directories.
func TestDefaultDirsError(t *testing.T) {
	err := defaultDirsError(fmt.Errorf("%w (unknown userid 4242)", keystore.ErrNoHome))
	const want = "cannot find the home directory (unknown userid 4242); set KEYTREE_DIR, KEYTREE_ACCOUNT_DIR and KEYTREE_MACHINE_DIR"
	if err.Error() != want || !errors.Is(err, keystore.ErrNoHome) {
		t.Errorf("got %v, want %s", err, want)
	}
	other := errors.New("other")
	if defaultDirsError(other) != other {
		t.Error("another error is changed")
	}
}
