package keystore

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keytree-dev/keytree/formats"
)

// TestImport: an import creates and replaces items in one go, keeps the
// identity of a credential it gives none, and counts what it did.
func TestImport(t *testing.T) {
	_, ks := newTestKeystore(t)
	setTestCredential(t, ks, "old", "old-id", []byte("before"))
	res, err := ks.ImportCredentials([]ImportItem{
		{Name: "old", Value: []byte("after")},
		{Name: "new", Identity: "svc", Value: []byte("v\x00\xff\n")},
	})
	if err != nil || res != (ImportResult{Created: 1, Replaced: 1}) {
		t.Fatalf("import: %+v, %v", res, err)
	}
	for name, want := range map[string]struct{ id, value string }{"old": {"old-id", "after"}, "new": {"svc", "v\x00\xff\n"}} {
		c, v, err := ks.GetCredential(name)
		if err != nil || c.Identity != want.id || string(v) != want.value {
			t.Errorf("%s: %+v %q %v", name, c, v, err)
		}
	}
	if _, err := ks.CreateDMK("db", []byte("Database-Passw0rd-1"), DMKOptions{}); err != nil {
		t.Fatal(err)
	}
	items := make([]ImportItem, 300)
	for i := range items {
		items[i] = ImportItem{Name: fmt.Sprintf("s%03d", i), Value: []byte(fmt.Sprint("value ", i))}
	}
	if res, err := ks.ImportSecrets("db", items, nil); err != nil || res.Created != 300 {
		t.Fatalf("secret import: %+v, %v", res, err)
	}
	values, err := ks.Resolve([]Ref{{Kind: RefSecret, DB: "db", Name: "s000"}, {Kind: RefSecret, DB: "db", Name: "s299"}}, nil, nil)
	if err != nil || string(values[0]) != "value 0" || string(values[1]) != "value 299" {
		t.Fatalf("read back: %q, %v", values, err)
	}
	if fileExists(ks.path(pendingFile)) {
		t.Errorf("pending.toml left behind by a finished import")
	}
	if left := dirEntries(t, ks.path(tmpDir)); len(left) > 0 {
		t.Errorf("a finished import left %v in tmp/", left)
	}
}

// TestImportRefused: an import with one bad item writes nothing at all.
func TestImportRefused(t *testing.T) {
	d, ks := newTestKeystore(t)
	setTestCredential(t, ks, "Mail", "id", []byte("v"))
	before := treeSnapshot(t, d.Keystore, lockFile, errorlogFile)
	good := ImportItem{Name: "fine", Identity: "id", Value: []byte("x")}
	for _, tc := range []struct {
		name  string
		items []ImportItem
		want  string
	}{
		{"nothing", nil, "nothing to import"},
		{"bad name", []ImportItem{good, {Name: "a/x", Identity: "i"}}, "path separator"},
		{"twice", []ImportItem{good, good}, "given twice"},
		{"case pair", []ImportItem{good, {Name: "FINE", Identity: "i"}}, "differ only in case"},
		{"case twin on disk", []ImportItem{good, {Name: "mail", Identity: "i"}}, "differs from it only in case"},
		{"new without identity", []ImportItem{good, {Name: "anon", Value: []byte("x")}}, "nothing gives its identity"},
		{"bad identity", []ImportItem{good, {Name: "x", Identity: "a\nb"}}, "identity"},
		{"too large", []ImportItem{good, {Name: "big", Identity: "i", Value: make([]byte, MaxValueSize+1)}}, "larger than"},
	} {
		_, err := ks.ImportCredentials(tc.items)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.want)
		}
		if diff := diffSnapshots(before, treeSnapshot(t, d.Keystore, lockFile, errorlogFile)); diff != "" {
			t.Fatalf("%s: the keystore changed:\n%s", tc.name, diff)
		}
	}
	if _, err := ks.ImportSecrets("nodb", []ImportItem{{Name: "a"}}, nil); err == nil || !strings.Contains(err.Error(), "15581") {
		t.Errorf("import into a database that does not exist: %v", err)
	}
}

// TestBatchHostileRecord: a committed batch is moved into place by the next
// keytree, reader or writer; a staged file that is not the metadata of the
// item it is recorded for stays where it is, and a record that names a
// directory outside tmp/ is refused as corrupt, moving nothing.
func TestBatchHostileRecord(t *testing.T) {
	d, ks := newFormat1Keystore(t)
	setTestCredential(t, ks, "a", "id-a", []byte("value a"))
	setTestCredential(t, ks, "b", "id-b", []byte("value b"))
	meta := func(name, identity string) []byte {
		m, err := ks.loadCredentialMeta(name)
		if err != nil {
			t.Fatal(err)
		}
		m.Identity = identity
		data, err := m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	dir := filepath.Join(d.Keystore, tmpDir, formats.BatchDirPrefix+"0123")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(dir, "0.toml"), meta("a", "moved"))
	writeTestFile(t, filepath.Join(dir, "1.toml"), meta("a", "not b's")) // recorded for b
	p := &formats.Pending{Version: formats.Version, Operation: "credential import", Batch: &formats.PendingBatch{
		Dir: formats.BatchDirPrefix + "0123", Items: []formats.BatchItem{{Name: "a"}, {Name: "b"}},
	}}
	data, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, ks.path(pendingFile), data)
	// A reader finds the batch and finishes it first.
	if c, v, err := ks.GetCredential("a"); err != nil || c.Identity != "moved" || !bytes.Equal(v, []byte("value a")) {
		t.Fatalf("a after the batch: %+v %q %v", c, v, err)
	}
	if c, _, err := ks.GetCredential("b"); err != nil || c.Identity != "id-b" {
		t.Fatalf("b, whose staged file is a's: %+v %v", c, err)
	}
	if fileExists(ks.path(pendingFile)) || fileExists(dir) {
		t.Errorf("the batch's record or directory left behind")
	}

	p.Batch.Dir = formats.BatchDirPrefix + "0123"
	good, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"../credentials", "batch-x/../..", "other", "batch-a\\b"} {
		data := bytes.Replace(good, []byte(formats.BatchDirPrefix+"0123"), []byte(bad), 1)
		if _, err := formats.DecodePending(data); err == nil {
			t.Errorf("a batch in directory %q decodes", bad)
		}
	}
}

// TestImportFailsWhileMoving: an import whose commit is made and one of
// whose moves then fails (a single error, not a crash: keytree goes on and
// cleans up) reports the error and leaves the batch to the next keytree,
// which finishes it: no clean-up in between removes the values of the items
// not yet moved, or the record.
func TestImportFailsWhileMoving(t *testing.T) {
	for _, failAt := range []int{1, 2, 5} {
		t.Run(fmt.Sprint("move ", failAt), func(t *testing.T) {
			d, ks := newTestKeystore(t)
			items := make([]ImportItem, 6)
			for i := range items {
				items[i] = ImportItem{Name: fmt.Sprintf("c%d", i), Identity: "id", Value: []byte(fmt.Sprint("value ", i))}
			}
			moves := 0
			ks.setFault(serialized(func(kind, path string) error {
				if kind == "rename" && filepath.Dir(path) == filepath.Join(d.Keystore, credentialsDir) && strings.HasSuffix(path, ".toml") {
					moves++
					if moves == failAt {
						return errCrashed
					}
				}
				return nil
			}))
			_, err := ks.ImportCredentials(items)
			ks.setFault(nil)
			if err == nil {
				t.Fatalf("the import did not fail")
			}
			for i, it := range items {
				if _, v, err := ks.GetCredential(it.Name); err != nil || string(v) != string(it.Value) {
					t.Fatalf("item %d after the failed move, read: %q, %v", i, v, err)
				}
			}
			setTestCredential(t, ks, "after", "id", []byte("v"))
			wantCredential(t, ks, "c5", "value 5", "after the next writer")
			if fileExists(ks.path(pendingFile)) {
				t.Errorf("pending.toml left behind")
			}
		})
	}
}

// TestBatchLargeRecord: a committed batch recorded with as many items, and
// names as long, as an import takes is read by the next keytree, which
// moves it; pending.toml is then larger than other metadata may be.
func TestBatchLargeRecord(t *testing.T) {
	d, ks := newFormat1Keystore(t)
	setTestCredential(t, ks, "a", "id-a", []byte("value a"))
	m, err := ks.loadCredentialMeta("a")
	if err != nil {
		t.Fatal(err)
	}
	m.Identity = "moved"
	staged, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	batch := formats.BatchDirPrefix + "0123"
	dir := filepath.Join(d.Keystore, tmpDir, batch)
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	p := &formats.Pending{Version: formats.Version, Operation: "credential import", Batch: &formats.PendingBatch{Dir: batch}}
	for i := range formats.MaxBatchItems - 1 {
		// Items already moved: no staged file.
		p.Batch.Items = append(p.Batch.Items, formats.BatchItem{Name: fmt.Sprintf("%0*d", formats.MaxNameLength, i)})
	}
	p.Batch.Items = append(p.Batch.Items, formats.BatchItem{Name: "a"})
	writeTestFile(t, batchStaged(dir, formats.MaxBatchItems-1), staged)
	data, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if len(data) <= formats.MaxMetadataSize {
		t.Fatalf("pending.toml of %d bytes: not a large one", len(data))
	}
	writeTestFile(t, ks.path(pendingFile), data)
	if c, _, err := ks.GetCredential("a"); err != nil || c.Identity != "moved" {
		t.Fatalf("a after the batch: %+v %v", c, err)
	}
	if fileExists(ks.path(pendingFile)) || fileExists(dir) {
		t.Errorf("the batch's record or directory left behind")
	}
}
