// Package formats defines everything keytree writes to disk, other than the
// age files themselves: the TOML metadata of a keystore, the text inside an
// encrypted key, backup and export files, and the names of files.
//
// Every format carries a version. Decoding is strict: an unknown key, a
// missing key, a value out of range or a file larger than a format allows is
// an error, reported as a *CorruptError. Everything read from disk is
// treated as hostile; the keystore package checks, on top of this, that
// metadata agrees with the keys it describes.
//
// docs/format.md describes every file and field; testdata/ holds a keystore
// of every released format version that must keep opening.
package formats
