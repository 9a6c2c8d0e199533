package keystore

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/protect"
)

// Orphans: items that a --force operation could not re-encrypt stay on disk
// under a retired key generation (P7). These tests build that state by hand:
// the SMK moves to generation 2 (same key, files renamed), generation 1 is
// retired under another thumbprint, and one credential is left behind.

type orphanFixture struct {
	ks         *Keystore
	smkThumb   string
	retiredThb string
}

func newOrphanFixture(t *testing.T) *orphanFixture {
	t.Helper()
	_, ks := newTestKeystore(t)
	for _, n := range []string{"orph", "live"} {
		setTestCredential(t, ks, n, "u", []byte(n+" value"))
	}
	smkKey := testSMK(t, ks)
	meta, err := ks.loadSMKMeta()
	if err != nil {
		t.Fatal(err)
	}
	old, err := protect.GenerateKey(protect.KindSMK, protect.X25519)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range [][2]string{
		{"smk/account.1.age", "smk/account.2.age"},
		{"smk/machine.1.age", "smk/machine.2.age"},
		{"credentials/live.1.1.age", "credentials/live.1.2.age"},
	} {
		if err := os.Rename(ks.path(r[0]), ks.path(r[1])); err != nil {
			t.Fatal(err)
		}
	}
	meta.Generation = 2
	meta.Retired = []formats.Retired{{Generation: 1, Thumbprint: old.Thumbprint(), Algorithm: "x25519"}}
	writeSignedSMK(t, ks, smkKey, meta)
	return &orphanFixture{ks: ks, smkThumb: meta.Thumbprint, retiredThb: old.Thumbprint()}
}

func TestOrphanedCredential(t *testing.T) {
	f := newOrphanFixture(t)
	ks := f.ks
	wantCredential(t, ks, "live", "live value", "live")
	_, _, err := ks.GetCredential("orph")
	wantMsg(t, err, MsgItemDecrypt, ErrDecryption)
	if !strings.Contains(err.Error(), f.retiredThb) || keystoreError(t, err).Remedy.Kind != RemedyRecoverCredential {
		t.Errorf("orphan error %q should name the key it needs and give the remedy", err)
	}

	creds, err := ks.ListCredentials()
	if err != nil || len(creds) != 2 {
		t.Fatalf("list: %+v, %v", creds, err)
	}
	for _, c := range creds {
		switch c.Name {
		case "live":
			if c.Orphan != nil {
				t.Errorf("live listed as orphan %+v", c.Orphan)
			}
		case "orph":
			if c.Orphan == nil || c.Orphan.Generation != 1 || c.Orphan.Thumbprint != f.retiredThb {
				t.Errorf("orph listed with orphan %+v", c.Orphan)
			}
		}
	}

	st, err := ks.Status()
	if err != nil {
		t.Fatal(err)
	}
	if st.Credentials != 2 || len(st.Orphans) != 1 ||
		st.Orphans[0] != (OrphanItem{Item: "credential/orph", Generation: 1, Thumbprint: f.retiredThb}) {
		t.Fatalf("status: %d credentials, orphans %+v", st.Credentials, st.Orphans)
	}
	if st.SMK == nil || st.SMK.Generation != 2 {
		t.Fatalf("status smk %+v", st.SMK)
	}

	rows, err := ks.KeyEncryptions()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]KeyEncryption{}
	for _, r := range rows {
		found[r.Key] = r
	}
	if r := found["credential/orph"]; r.State != "orphaned" || r.Thumbprint != f.retiredThb || r.Protector != "smk" {
		t.Errorf("orph row %+v", r)
	}
	if r := found["credential/live"]; r.State != "current" || r.Thumbprint != f.smkThumb || r.CryptType != "ESKM" {
		t.Errorf("live row %+v", r)
	}

	// Setting the orphan again puts it under the current key.
	setTestCredential(t, ks, "orph", "u", []byte("fresh"))
	wantExists(t, ks.path(credentialsDir, "orph.1.1.age"), false)
	wantCredential(t, ks, "orph", "fresh", "orph after set")
}

// TestOrphanKeptBySweep: the garbage collector keeps an orphan (its only
// copy is under a retired generation) but removes a stale copy under a
// retired generation of an item that has one under the current generation.
func TestOrphanKeptBySweep(t *testing.T) {
	f := newOrphanFixture(t)
	ks := f.ks
	orphan := ks.path(credentialsDir, "orph.1.1.age")
	stale := ks.path(credentialsDir, "live.1.1.age")
	unknownGen := ks.path(credentialsDir, "orph.1.3.age")
	writeTestFile(t, stale, []byte("stale"))
	writeTestFile(t, unknownGen, []byte("leftover"))
	writeTestFile(t, ks.path(pendingFile), []byte("not toml ["))
	setTestCredential(t, ks, "x", "u", []byte("x"))
	wantExists(t, orphan, true)
	wantExists(t, stale, false)
	wantExists(t, unknownGen, false)
	wantExists(t, ks.path(credentialsDir, "live.1.2.age"), true)

	// Removing the orphaned credential removes its blob under the retired
	// generation too.
	if err := ks.RemoveCredential("orph"); err != nil {
		t.Fatal(err)
	}
	wantExists(t, orphan, false)
	wantExists(t, ks.path(credentialsDir, "orph.toml"), false)
}

// TestSweepKeepsOnlyCopyUnderOlderGeneration: a value whose only file is
// under an older generation that is not retired (what a --force left
// before it orphaned unreadable values) is the item's only copy. A writer
// that fails, and a full sweep, leave it; a newer generation's file is
// still an interrupted operation's leftover, and goes.
func TestSweepKeepsOnlyCopyUnderOlderGeneration(t *testing.T) {
	_, ks := newTestKeystore(t)
	for _, n := range []string{"mail", "db"} {
		setTestCredential(t, ks, n, "svc", []byte(n+" value"))
	}
	if _, err := ks.RegenerateSMK(SMKOptions{}); err != nil {
		t.Fatal(err)
	}
	only := ks.path(credentialsDir, formats.BlobName("mail", 1, 1))
	if err := os.Rename(ks.path(credentialsDir, formats.BlobName("mail", 1, 2)), only); err != nil {
		t.Fatal(err)
	}
	stale := ks.path(credentialsDir, formats.BlobName("db", 1, 1))
	future := ks.path(credentialsDir, formats.BlobName("db", 1, 3))
	writeTestFile(t, stale, []byte("stale"))
	writeTestFile(t, future, []byte("leftover"))

	// The regenerate fails on the missing value, and its clean-up of what
	// it may have created must not take the file.
	_, err := ks.RegenerateSMK(SMKOptions{})
	wantMsg(t, err, MsgItemDecrypt, ErrDecryption)
	wantExists(t, only, true)

	writeTestFile(t, ks.path(pendingFile), []byte("not toml ["))
	setTestCredential(t, ks, "x", "svc", []byte("x"))
	wantExists(t, only, true)
	wantExists(t, stale, false)
	wantExists(t, future, false)
	wantExists(t, ks.path(credentialsDir, formats.BlobName("db", 1, 2)), true)
}

// TestItemBlobLookup drives itemBlob directly: the current generation
// first, then retired generations newest first, and nothing else.
func TestItemBlobLookup(t *testing.T) {
	_, ks := newTestKeystore(t)
	g := keyGens{current: 5, retired: []formats.Retired{
		{Generation: 1, Thumbprint: strings.Repeat("1", 40), Algorithm: "x25519"},
		{Generation: 3, Thumbprint: strings.Repeat("3", 40), Algorithm: "x25519"},
		{Generation: 2, Thumbprint: strings.Repeat("2", 40), Algorithm: "mlkem768x25519"},
	}}
	cases := []struct {
		files    []string
		wantFile string
		wantGen  int // 0: not an orphan
		missing  bool
	}{
		{files: []string{"i.4.5.age"}, wantFile: "i.4.5.age"},
		{files: []string{"i.4.5.age", "i.4.3.age", "i.4.1.age"}, wantFile: "i.4.5.age"},
		{files: []string{"i.4.1.age"}, wantFile: "i.4.1.age", wantGen: 1},
		{files: []string{"i.4.1.age", "i.4.3.age", "i.4.2.age"}, wantFile: "i.4.3.age", wantGen: 3},
		{files: []string{"i.4.1.age", "i.4.2.age"}, wantFile: "i.4.2.age", wantGen: 2},
		{files: []string{"i.4.4.age"}, missing: true},              // not a retired generation
		{files: []string{"i.4.6.age"}, missing: true},              // a future generation
		{files: []string{"i.3.5.age", "i.5.3.age"}, missing: true}, // other revisions
		{files: nil, missing: true},
	}
	for _, c := range cases {
		for _, n := range c.files {
			writeTestFile(t, ks.path(credentialsDir, n), []byte("x"))
		}
		path, orphan, err := ks.itemBlob(credentialBlob("i", 4, 0), g)
		switch {
		case c.missing:
			if err == nil {
				t.Errorf("%v: found %s", c.files, path)
			} else {
				wantKind(t, err, ErrCorrupt)
			}
		case err != nil:
			t.Errorf("%v: %v", c.files, err)
		case path != ks.path(credentialsDir, c.wantFile):
			t.Errorf("%v: found %s, want %s", c.files, path, c.wantFile)
		case c.wantGen == 0 && orphan != nil:
			t.Errorf("%v: orphan %+v, want none", c.files, orphan)
		case c.wantGen != 0 && (orphan == nil || orphan.Generation != c.wantGen || orphan.Thumbprint != strings.Repeat(string(rune('0'+c.wantGen)), 40)):
			t.Errorf("%v: orphan %+v, want generation %d", c.files, orphan, c.wantGen)
		}
		for _, n := range c.files {
			os.Remove(ks.path(credentialsDir, n))
		}
	}
	// Every name the item's revision may have, for clean-up.
	var names []string
	for _, p := range ks.itemBlobPaths(credentialBlob("i", 4, 0), g) {
		names = append(names, strings.TrimPrefix(p, ks.path(credentialsDir)+string(filepath.Separator)))
	}
	sort.Strings(names)
	want := []string{"i.4.1.age", "i.4.2.age", "i.4.3.age", "i.4.5.age"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("itemBlobPaths = %v, want %v", names, want)
	}
}
