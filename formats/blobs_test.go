package formats_test

import (
	"strings"
	"testing"

	"github.com/keytree-dev/keytree/formats"
)

func TestBlobNameRoundTrip(t *testing.T) {
	cases := []struct {
		base     string
		rev, gen int
		want     string
	}{
		{"foo", 1, 1, "foo.1.1.age"},
		{"foo", 7, 3, "foo.7.3.age"},
		{"foo.bar", 12, 345, "foo.bar.12.345.age"},
		{"a.b.c.1.2", 1, 2, "a.b.c.1.2.1.2.age"},
		{"smk", 4, 9, "smk.4.9.age"},
		{"x@y+z_w-v", 10, 10, "x@y+z_w-v.10.10.age"},
		{"big", formats.MaxRevision, formats.MaxGeneration, "big.1099511627776.1099511627776.age"},
	}
	for _, c := range cases {
		name := formats.BlobName(c.base, c.rev, c.gen)
		if name != c.want {
			t.Errorf("BlobName(%q, %d, %d) = %q, want %q", c.base, c.rev, c.gen, name, c.want)
		}
		base, rev, gen, ok := formats.ParseBlobName(name)
		if !ok || base != c.base || rev != c.rev || gen != c.gen {
			t.Errorf("ParseBlobName(%q) = %q, %d, %d, %v; want %q, %d, %d", name, base, rev, gen, ok, c.base, c.rev, c.gen)
		}
	}
}

func TestParseBlobNameRejects(t *testing.T) {
	for _, name := range []string{
		"", ".age", "age", "foo.age", "foo.1.age", "1.1.age", ".1.1.age",
		"foo..1.age", "foo.1..age", "foo...age",
		"foo.01.1.age", "foo.1.01.age", "foo.00.1.age", "foo.0.1.age", "foo.1.0.age",
		"foo.-1.1.age", "foo.1.-1.age", "foo.+1.1.age", "foo.1.+1.age",
		"foo.a.1.age", "foo.1.b.age", "foo.1.1e3.age", "foo.0x1.1.age", "foo. 1.1.age", "foo.1.1 .age",
		"foo.1234567890123456.1.age", "foo.1.1234567890123456.age",
		"foo.1.1", "foo.1.1.txt", "foo.1.1.AGE", "foo.1.1.age.tmp", "foo.1.1.age ", "foo.1.1.agex", "foo.1.1age",
		"foo.toml", "foo.1.1.toml",
		"foo.１.1.age", // a full-width digit
	} {
		if base, rev, gen, ok := formats.ParseBlobName(name); ok {
			t.Errorf("ParseBlobName(%q) = %q, %d, %d, accepted", name, base, rev, gen)
		}
	}
}

func TestParseBlobNameNotMetadataOrTemp(t *testing.T) {
	// A metadata file or a temporary file is never taken for a blob, so a
	// sweep cannot misread one.
	for _, name := range []string{formats.MetaName("foo"), formats.MetaName("foo.1.1"), formats.TempPrefix + "abc"} {
		if _, _, _, ok := formats.ParseBlobName(name); ok {
			t.Errorf("ParseBlobName(%q) accepted", name)
		}
	}
	if !strings.HasPrefix(formats.TempPrefix, ".") {
		t.Fatalf("TempPrefix %q does not start with a dot", formats.TempPrefix)
	}
	if formats.ValidateName("credential", formats.TempPrefix+"x") == nil {
		t.Error("a temporary file's name is a valid item name")
	}
}
