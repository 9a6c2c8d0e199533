// Package keystore is keytree's key hierarchy on disk: the service master key
// (SMK) with its two self-healing encryptions, the credentials it protects,
// and the operations on them, each atomic and safe against concurrent
// keytree processes.
//
// # Layout
//
//	keystore.toml                 the keystore's id and format version
//	smk.toml                      the SMK's metadata: the commit point of SMK operations
//	smk/account.G.age             the SMK encrypted by the account protector
//	smk/machine.G.age             the SMK encrypted by the machine protector
//	credentials/NAME.toml         a credential's metadata
//	credentials/NAME.R.G.age      its value, revision R, encrypted by SMK generation G
//	lock                          the lock file, never deleted
//	errorlog                      errors such as 15466, and repairs, one per line
//	pending.toml                  present while a writer runs, or after it crashed
//	tmp/                          temporary files, renamed into place when complete
//
// The account and machine protectors' secrets live in two other directories
// (Dirs), never in the keystore: a copy of the keystore alone opens nothing.
//
// # Atomicity
//
// An operation writes every new file under a name that no committed metadata
// refers to yet, makes it durable, and then commits by replacing one small
// metadata file with a rename (smk.toml for SMK operations, an item's .toml
// for an item). Readers open only files that committed metadata names, so
// they never see a half-done operation. Before it creates a file, a writer
// records in pending.toml what it may leave behind; the next writer removes
// whatever of that committed metadata does not reference. A crash at any
// point leaves the old state or the new one, never a mix (P6).
//
// # Locking
//
// Writers hold an exclusive lock on the lock file, readers a shared one
// (P10). A reader that finds an SMK encryption to repair retries as a
// writer.
package keystore
