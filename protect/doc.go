// Package protect wraps and unwraps the keys of keytree's hierarchy.
//
// Everything keytree encrypts is an age file, and everything that can
// protect a key is an age recipient and identity at once: a [Protector].
// There are four kinds:
//
//   - the service master key (SMK) and database master keys (DMKs), which are
//     age identities themselves ([Key]);
//   - passwords, which are age's scrypt recipients with a floor on the work
//     factor a file may ask for ([Password]);
//   - the account protector, a credential of the OS account running keytree
//     ([Account]);
//   - the machine protector, a secret of this machine mixed with 256 bytes of
//     per-keystore entropy ([Machine]).
//
// On Unix the account and machine secrets are files that the keystore package
// keeps outside the keystore; on Windows they are sealed with DPAPI, user scope
// for the account and CRYPTPROTECT_LOCAL_MACHINE plus the entropy for the
// machine, as SQL Server protects its service master key.
//
// This package does no file I/O: callers hand it the secrets' bytes.
package protect
