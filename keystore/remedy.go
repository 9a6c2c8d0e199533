package keystore

// A Remedy is the next step after an error, for the caller to put in its
// own words: the commands package names the commands, flags and environment
// variables that take the step. keystore says what to do; it never names
// how to ask keytree for it (ARCHITECTURE.md).
type Remedy struct {
	Kind RemedyKind
	// Database is the database the remedy acts on, for the kinds that
	// say so.
	Database string
	// Dir is the directory to point keytree elsewhere for, for
	// RemedyNewDir and RemedyOwnDir.
	Dir DirRole
	// InvalidEncryptions, for RemedyRestoreSMK, is how many encryptions of
	// the service master key were tried and did not open it: 2 (both), 1
	// (its only one, with machine protection off), or 0 when the error
	// says why elsewhere.
	InvalidEncryptions int
	// IfNew, for RemedyCreateDatabase and RemedyCreateDMK, says that a
	// database of a similar name exists: the remedy holds only if
	// Database is meant as a new one, not a mistyped name.
	IfNew bool
	// OrOpenDMK adds another way to whatever the error's Hint or Kind
	// says: the operation was opening a database master key through the
	// service master key, and the database master key's own password
	// opens it too.
	OrOpenDMK bool
}

// A RemedyKind is what the user should do after an error. Each says it in
// words that name no command, flag or variable; the caller words it for
// its users.
type RemedyKind int

const (
	// RemedyNone: no remedy; the error's Hint, if any, says what to do.
	RemedyNone RemedyKind = iota

	// RemedyRestoreSMK: the service master key cannot be opened; restore
	// it from a backup, forcing the restore past the key that does not
	// open (InvalidEncryptions says why it does not).
	RemedyRestoreSMK
	// RemedyOldProtectorsOrRecoverSMK: no kept encryption of an earlier
	// service master key opens here; point keytree at the account and
	// machine protectors that made them, or recover the orphans from a
	// backup of the service master key.
	RemedyOldProtectorsOrRecoverSMK
	// RemedyRecoverCredential: the credential is orphaned; recover it
	// from a backup of the service master key that encrypted it.
	RemedyRecoverCredential
	// RemedyRecoverSecret: the secret is orphaned; recover it from a
	// backup of the master key of Database that encrypted it.
	RemedyRecoverSecret
	// RemedyOldPasswordOrRecoverDMK: no kept password encryption of an
	// earlier master key of Database opens with the password given; give
	// that key's password, or recover from a backup of that key.
	RemedyOldPasswordOrRecoverDMK
	// RemedyListOrphans: there is nothing orphaned to recover here; the
	// keystore's status lists the orphaned values.
	RemedyListOrphans
	// RemedyListOrphanKeys: the key given opens no orphaned value; the
	// keystore's status lists the orphaned values and the key each needs.
	RemedyListOrphanKeys
	// RemedyForce: the current master key cannot be opened and nothing
	// was changed; run the operation again, forced to go on without it.
	RemedyForce
	// RemedyForcePastItem: a value cannot be decrypted and nothing was
	// changed; run the operation again, forced to go on past it.
	RemedyForcePastItem

	// RemedyCreateDatabase: Database does not exist; create it, with its
	// master key.
	RemedyCreateDatabase
	// RemedyCreateDMK: Database has no master key; create one.
	RemedyCreateDMK
	// RemedyListDatabases: Database already has a master key; see the
	// list of databases.
	RemedyListDatabases
	// RemedyImportAs: Database exists; import under another name.
	RemedyImportAs
	// RemedyRemoveSecrets: Database still holds secrets; list them and
	// remove them first.
	RemedyRemoveSecrets
	// RemedyOpenDMK: the database master key has no service master key
	// encryption; open it with its password, from a file or standard
	// input.
	RemedyOpenDMK
	// RemedyOpenDMKOrRecoverSMK: the database master key's service master
	// key encryption is orphaned; open it with its password, or recover
	// the encryption from a backup of the service master key.
	RemedyOpenDMKOrRecoverSMK
	// RemedyOpenDMKOrForce: the database master key to restore over does
	// not open and nothing was changed; open it with its password, or run
	// the restore again, forced to go on without it.
	RemedyOpenDMKOrForce
	// RemedyAddPassword: the last password encryption of a database
	// master key cannot go; add another password encryption first.
	RemedyAddPassword
	// RemedyPasswordPolicy: the new password is refused by the password
	// policy; choose a stronger one, or accept this one by turning the
	// policy off for the command.
	RemedyPasswordPolicy

	// RemedySettleMachineProtection: smk.toml says machine protection is
	// off, but a machine encryption opens the key; turn machine
	// protection on to keep it, or off to remove that encryption, first.
	RemedySettleMachineProtection
	// RemedyFixAccountProtector: the account encryption of the service
	// master key is invalid; fix the account protector first, as the
	// keystore's status describes.
	RemedyFixAccountProtector

	// RemedyInit: the directory is empty and holds no keystore; create
	// one there.
	RemedyInit
	// RemedyInitOrChooseKeystore: the keystore directory does not exist;
	// create a keystore there, or point keytree at an existing one.
	RemedyInitOrChooseKeystore
	// RemedyChooseKeystore: the directory holds other files; point
	// keytree at the keystore meant, or create one in a new directory.
	RemedyChooseKeystore
	// RemedyKeepKeystore: a keystore exists where one was to be created;
	// use it as it is, or choose another directory.
	RemedyKeepKeystore
	// RemedyChooseEmptyDir: the directory for a new keystore is not
	// empty; choose an empty or new one.
	RemedyChooseEmptyDir
	// RemedyRestoreIntoNewDir: the place to restore a keystore into is
	// not a directory; restore into a new directory.
	RemedyRestoreIntoNewDir
	// RemedyRestoreIntoEmptyDir: the directory to restore a keystore into
	// is not empty; restore into a new or empty one.
	RemedyRestoreIntoEmptyDir
	// RemedyRestoreBesideKeystore: the directory to restore a keystore
	// into holds a keystore; restore into a new or empty directory, or
	// move that keystore aside first to replace it.
	RemedyRestoreBesideKeystore
	// RemedyLockTimeout: another process held the keystore's lock for
	// longer than the lock timeout; wait and try again, or wait longer.
	RemedyLockTimeout
	// RemedyAllowOtherOwner: the keystore belongs to another account; run
	// as its owner, or allow a keystore of another owner.
	RemedyAllowOtherOwner
	// RemedySeparateDirs: two of keytree's directories overlap; keep the
	// keystore and each protector's secret in separate directories.
	RemedySeparateDirs
	// RemedyCreateProtectorDirs: a protector directory does not exist;
	// check the directories keytree was pointed at (a typo names a new,
	// empty one), and if this one is right, allow the command to create
	// it.
	RemedyCreateProtectorDirs
	// RemedyProtectorDirOwner: a protector directory belongs to another
	// account; run as its owner, or point keytree at a directory of this
	// account.
	RemedyProtectorDirOwner
	// RemedyNewDir: Dir names an empty directory that keytree did not
	// make and that others can open; point keytree at a path that does
	// not exist yet, where keytree makes the directory private.
	RemedyNewDir
	// RemedyOwnDir: Dir names a directory that holds someone else's
	// files and that others can open; leave its permissions alone and
	// point keytree at its own directory.
	RemedyOwnDir
	// RemedyImportIdentity: a new credential of an import has no
	// identity; give one for all of them, or each its own.
	RemedyImportIdentity
	// RemedyAcceptRollback: the keystore is older than what the account
	// and machine directories remember; if it was restored from an older
	// copy on purpose, accept it as it is.
	RemedyAcceptRollback
	// RemedyUpgrade: the keystore is of format 1; upgrade it to the
	// authenticated format first.
	RemedyUpgrade

	remedyKindEnd // not a kind: one past the last
)

// RemedyKinds lists every remedy kind but RemedyNone, for a caller to
// check that it words each one.
func RemedyKinds() []RemedyKind {
	var ks []RemedyKind
	for k := RemedyNone + 1; k < remedyKindEnd; k++ {
		ks = append(ks, k)
	}
	return ks
}

// A DirRole is one of keytree's three directories.
type DirRole int

const (
	DirKeystore DirRole = iota + 1
	DirAccount
	DirMachine
)

// String is what keytree calls the directory in its messages.
func (r DirRole) String() string {
	switch r {
	case DirKeystore:
		return "keystore"
	case DirAccount:
		return "account directory"
	case DirMachine:
		return "machine directory"
	}
	return "directory"
}
