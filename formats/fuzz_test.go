package formats_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/keytree-dev/keytree/formats"
)

// Fuzz targets for every parser in this package. Each is seeded with files
// keytree itself writes, plus a few damaged ones, and checks that the parser
// never panics, that every failure is a *CorruptError, and that whatever it
// accepts survives Encode and a second decode unchanged (age's
// FuzzMalleability does the same for age files).

// addSeeds adds the encodings of vs, and a few mutations of each, to f.
func addSeeds(f *testing.F, vs ...encoder) {
	for _, v := range vs {
		data := mustEncode(f, v)
		f.Add(data)
		f.Add(data[:len(data)/2])
		f.Add(append([]byte("extra = 1\n"), data...))
		f.Add([]byte(strings.Replace(string(data), "version = 1", "version = 2", 1)))
	}
	f.Add([]byte{})
	f.Add([]byte("version = 1\n"))
	f.Add([]byte("[[[\x00"))
}

// fuzzDecode is the body shared by the decoders' targets.
func fuzzDecode[T encoder](t *testing.T, data []byte, decode func([]byte) (T, error)) {
	v, err := decode(data)
	if err != nil {
		if !errors.Is(err, formats.ErrCorrupt) {
			t.Fatalf("decode error %v (%T) is not a corruption error", err, err)
		}
		return
	}
	enc, err := v.Encode()
	if err != nil {
		t.Fatalf("a decoded value does not encode: %v\ninput: %q", err, data)
	}
	v2, err := decode(enc)
	if err != nil {
		t.Fatalf("the encoding of a decoded value does not decode: %v\ninput: %q\nencoding: %q", err, data, enc)
	}
	if !sameValue(v, v2) {
		t.Fatalf("round trip changed the value:\ninput: %q\nfirst:  %#v\nsecond: %#v", data, v, v2)
	}
}

func FuzzDecodeKeystore(f *testing.F) {
	addSeeds(f, validKeystore())
	f.Fuzz(func(t *testing.T, data []byte) { fuzzDecode(t, data, formats.DecodeKeystore) })
}

func FuzzDecodeSMK(f *testing.F) {
	mlkem := validSMK()
	mlkem.Algorithm, mlkem.MachineProtection = "mlkem768x25519", false
	addSeeds(f, validSMK(), validSMKRetired(), mlkem)
	f.Fuzz(func(t *testing.T, data []byte) { fuzzDecode(t, data, formats.DecodeSMK) })
}

func FuzzDecodeCredential(f *testing.F) {
	c := validCredential()
	c.Identity, c.Name, c.Revision = "u", "a", 1
	addSeeds(f, validCredential(), c)
	f.Fuzz(func(t *testing.T, data []byte) { fuzzDecode(t, data, formats.DecodeCredential) })
}

func FuzzDecodePending(f *testing.F) {
	bare := &formats.Pending{Version: formats.Version, Operation: "credential set", Started: t0}
	batch := validPending()
	batch.Batch = &formats.PendingBatch{Dir: formats.BatchDirPrefix + "00ff", Items: []formats.BatchItem{{Name: "mail"}, {DB: "payroll", Name: "api"}}}
	addSeeds(f, validPending(), bare, batch)
	f.Fuzz(func(t *testing.T, data []byte) { fuzzDecode(t, data, formats.DecodePending) })
}

func FuzzDecodeKeyFile(f *testing.F) {
	for _, alg := range []string{"x25519", "mlkem768x25519"} {
		kf, _, _ := newKeyFile(f, alg)
		f.Add(mustEncode(f, kf))
		kf.Kind, kf.Backup, kf.Database = "dmk", t1, "payroll"
		data := mustEncode(f, kf)
		f.Add(data)
		f.Add(data[:len(data)-1])
		f.Add([]byte(strings.Replace(string(data), "# format: 1", "# format: 2", 1)))
	}
	f.Add([]byte(sampleKeyFile))
	// Fractional seconds: RFC 3339 allows them, but keytree writes whole
	// seconds, so a decoder that accepts them decodes a value that does not
	// survive Encode.
	f.Add([]byte(strings.Replace(sampleKeyFile, "10:00:00Z", "10:00:00.5Z", 1)))
	f.Add([]byte("# keytree key file\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) { fuzzDecode(t, data, formats.DecodeKeyFile) })
}

func FuzzParseBlobName(f *testing.F) {
	for _, s := range []string{"foo.1.1.age", "foo.bar.12.345.age", "smk.4.9.age", "foo.01.1.age", "foo.1.age", ".1.1.age",
		"foo.1.1", "x.1099511627776.1099511627776.age", "foo.1.1.age.tmp", "password.0123456789abcdef.1.age"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		base, rev, gen, ok := formats.ParseBlobName(name)
		if !ok {
			if base != "" || rev != 0 || gen != 0 {
				t.Fatalf("ParseBlobName(%q) failed but returned %q, %d, %d", name, base, rev, gen)
			}
			return
		}
		if base == "" || rev < 1 || gen < 1 {
			t.Fatalf("ParseBlobName(%q) = %q, %d, %d", name, base, rev, gen)
		}
		// Counters have no leading zeros or signs, so a name parses only
		// if it is exactly what BlobName writes.
		if again := formats.BlobName(base, rev, gen); again != name {
			t.Fatalf("ParseBlobName(%q) = %q, %d, %d, but BlobName gives %q", name, base, rev, gen, again)
		}
	})
}

func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"a", "db1", "user@example.com", "x.y", "..", "a/b", "a\\b", ".x", "x.", "CON", "nul.txt",
		"com1", "LPT9.log", "a\x00b", "é", strings.Repeat("a", 128), strings.Repeat("a", 129)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := formats.ValidateName("secret", name)
		want := referenceValidName(name)
		if (err == nil) != want {
			t.Fatalf("ValidateName(%q) = %v; the reference says valid = %v", name, err, want)
		}
		if err != nil {
			var ne *formats.NameError
			if !errors.As(err, &ne) || ne.Name != name || ne.What != "secret" {
				t.Fatalf("ValidateName(%q): error %#v", name, err)
			}
			return
		}
		// A valid name is safe in every place keytree uses one.
		if db, n, err := formats.SplitSecretPath(name + "/" + name); err != nil || db != name || n != name {
			t.Fatalf("SplitSecretPath of a valid name %q: %q, %q, %v", name, db, n, err)
		}
		if base, rev, gen, ok := formats.ParseBlobName(formats.BlobName(name, 3, 2)); !ok || base != name || rev != 3 || gen != 2 {
			t.Fatalf("blob name of %q does not parse back", name)
		}
		if _, _, _, ok := formats.ParseBlobName(formats.MetaName(name)); ok {
			t.Fatalf("metadata name of %q parses as a blob", name)
		}
	})
}

// referenceValidName restates the naming rule independently of the code
// under test: 1 to 128 characters from A-Z a-z 0-9 . _ - @ +, starting with
// a letter or digit, not ending with a dot, and not a Windows device name
// (CON PRN AUX NUL COM0-9 LPT0-9), with or without an extension, in any case.
func referenceValidName(name string) bool {
	if len(name) < 1 || len(name) > 128 {
		return false
	}
	isAlnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' }
	for i := 0; i < len(name); i++ {
		if !isAlnum(name[i]) && !strings.ContainsRune("._-@+", rune(name[i])) {
			return false
		}
	}
	if !isAlnum(name[0]) || name[len(name)-1] == '.' {
		return false
	}
	stem, _, _ := strings.Cut(strings.ToLower(name), ".")
	switch stem {
	case "con", "prn", "aux", "nul":
		return false
	}
	for _, p := range []string{"com", "lpt"} {
		for d := '0'; d <= '9'; d++ {
			if stem == p+string(d) {
				return false
			}
		}
	}
	return true
}
