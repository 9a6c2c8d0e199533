package keystore

import "github.com/keytree-dev/keytree/formats"

// referencedDatabase decides garbage under databases/. Databases come with
// the database master key operations; until then nothing there is known.
func (c *collector) referencedDatabase(parts []string) (ref, known bool) {
	return false, false
}

// eachDatabaseItem walks over databases and their secrets (none yet).
func (s *session) eachDatabaseItem(smk *formats.SMK, fn func(item) error) error {
	return nil
}

// eachDMKSMKItem walks over the SMK encryptions of database master keys
// (none yet).
func (s *session) eachDMKSMKItem(fn func(smkItem) error) error {
	return nil
}
