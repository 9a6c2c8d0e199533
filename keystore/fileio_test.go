package keystore

import (
	"testing"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/keystore/internal/fsio"
)

// The clean-up removes what a crash left by the prefix formats names
// (pending.go); the file layer must write its temporary files under it.
func TestTempPrefixAgrees(t *testing.T) {
	if fsio.TempPrefix != formats.TempPrefix {
		t.Fatalf("fsio writes temporary files as %q, the clean-up looks for %q", fsio.TempPrefix, formats.TempPrefix)
	}
}
