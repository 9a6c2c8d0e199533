package formats_test

import (
	"strings"
	"testing"

	"github.com/keytree-dev/keytree/formats"
)

func validDatabase() *formats.Database {
	return &formats.Database{
		Version: formats.Version, Name: "payroll", Generation: 3,
		Thumbprint: strings.Repeat("ab", 20), Algorithm: "x25519", Created: t0, SMKEncryption: true,
		Passwords: []formats.PasswordEncryption{{ID: "0123456789abcdef", Created: t0}, {ID: "fedcba9876543210", Created: t0, Tag: "18:00112233445566ff"}},
		Retired:   []formats.Retired{{Generation: 2, Thumbprint: strings.Repeat("cd", 20), Algorithm: "mlkem768x25519", Kept: []string{"0123456789abcdef"}}},
	}
}

func validSecret() *formats.Secret {
	return &formats.Secret{Version: formats.Version, Name: "signing.key", Revision: 4, Created: t0, Updated: t0}
}

func validManifest() *formats.ExportManifest {
	return &formats.ExportManifest{Version: formats.Version, Kind: formats.ExportKind, Database: "payroll",
		Thumbprint: strings.Repeat("ab", 20), Algorithm: "x25519", Exported: t0, Secrets: 2}
}

func TestDatabaseRoundTrip(t *testing.T) {
	for _, v := range []encoder{validDatabase(), validSecret(), validManifest()} {
		data := mustEncode(t, v)
		var got encoder
		var err error
		switch v.(type) {
		case *formats.Database:
			got, err = formats.DecodeDatabase(data)
		case *formats.Secret:
			got, err = formats.DecodeSecret(data)
		case *formats.ExportManifest:
			got, err = formats.DecodeExportManifest(data)
		}
		if err != nil {
			t.Fatalf("%T: %v", v, err)
		}
		if !sameValue(v, got) {
			t.Fatalf("%T changed in a round trip: %#v", v, got)
		}
	}
}

func TestDatabaseRejects(t *testing.T) {
	cases := map[string]func(*formats.Database){
		"no password encryption (P9)": func(d *formats.Database) { d.Passwords = nil },
		"repeated password id":        func(d *formats.Database) { d.Passwords[1].ID = d.Passwords[0].ID },
		"short password id":           func(d *formats.Database) { d.Passwords[0].ID = "0123" },
		"bad name":                    func(d *formats.Database) { d.Name = "../x" },
		"bad thumbprint":              func(d *formats.Database) { d.Thumbprint = "xyz" },
		"bad algorithm":               func(d *formats.Database) { d.Algorithm = "rsa" },
		"retired not older":           func(d *formats.Database) { d.Retired[0].Generation = 3 },
		"kept protector kind":         func(d *formats.Database) { d.Retired[0].Kept = []string{"account"} },
		"kept id repeated":            func(d *formats.Database) { d.Retired[0].Kept = []string{"0123456789abcdef", "0123456789abcdef"} },
		"tag without work factor":     func(d *formats.Database) { d.Passwords[1].Tag = "00112233445566ff" },
		"tag work factor 0":           func(d *formats.Database) { d.Passwords[1].Tag = "0:00112233445566ff" },
		"tag work factor 31":          func(d *formats.Database) { d.Passwords[1].Tag = "31:00112233445566ff" },
		"tag leading zero":            func(d *formats.Database) { d.Passwords[1].Tag = "018:00112233445566ff" },
		"tag short":                   func(d *formats.Database) { d.Passwords[1].Tag = "18:00112233" },
		"tag upper case":              func(d *formats.Database) { d.Passwords[1].Tag = "18:00112233445566FF" },
	}
	for name, edit := range cases {
		t.Run(name, func(t *testing.T) {
			d := validDatabase()
			edit(d)
			if _, err := d.Encode(); err == nil {
				t.Fatal("Encode accepted it")
			}
		})
	}
	data := mustEncode(t, validDatabase())
	_, err := formats.DecodeDatabase(dropKey(t, data, "smk_encryption"))
	wantCorrupt(t, err, "missing smk_encryption")
	_, err = formats.DecodeDatabase([]byte(strings.Replace(string(data), "smk_encryption", "SMK_Encryption", 1)))
	wantCorrupt(t, err, "a key in another case")
	m := validManifest()
	m.Kind = "something-else"
	if _, err := m.Encode(); err == nil {
		t.Fatal("a manifest of another kind encoded")
	}
}

func TestPasswordBlobName(t *testing.T) {
	name := formats.PasswordBlobName("0123456789abcdef", 12)
	if name != "password.0123456789abcdef.12.age" {
		t.Fatalf("PasswordBlobName = %q", name)
	}
	id, gen, ok := formats.ParsePasswordBlobName(name)
	if !ok || id != "0123456789abcdef" || gen != 12 {
		t.Fatalf("ParsePasswordBlobName(%q) = %q, %d, %v", name, id, gen, ok)
	}
	for _, bad := range []string{"password.0123456789abcdef.012.age", "password.0123456789ABCDEF.1.age",
		"password.0123.1.age", "password.0123456789abcdef.1", "smk.1.1.age", "password.0123456789abcdef..age"} {
		if _, _, ok := formats.ParsePasswordBlobName(bad); ok {
			t.Errorf("ParsePasswordBlobName accepted %q", bad)
		}
	}
}

func FuzzDecodeDatabase(f *testing.F) {
	bare := validDatabase()
	bare.Retired, bare.Passwords, bare.SMKEncryption = nil, bare.Passwords[:1], false
	addSeeds(f, validDatabase(), bare)
	f.Fuzz(func(t *testing.T, data []byte) { fuzzDecode(t, data, formats.DecodeDatabase) })
}

func FuzzDecodeSecret(f *testing.F) {
	addSeeds(f, validSecret())
	f.Fuzz(func(t *testing.T, data []byte) { fuzzDecode(t, data, formats.DecodeSecret) })
}

func FuzzDecodeExportManifest(f *testing.F) {
	addSeeds(f, validManifest())
	f.Fuzz(func(t *testing.T, data []byte) { fuzzDecode(t, data, formats.DecodeExportManifest) })
}

func FuzzParsePasswordBlobName(f *testing.F) {
	f.Add("password.0123456789abcdef.1.age")
	f.Add("password.0123456789abcdef.99.age")
	f.Add("password..age")
	f.Fuzz(func(t *testing.T, name string) {
		id, gen, ok := formats.ParsePasswordBlobName(name)
		if !ok {
			return
		}
		if again := formats.PasswordBlobName(id, gen); again != name {
			t.Fatalf("%q parsed to %q, %d, which names %q", name, id, gen, again)
		}
	})
}

// TestPasswordTag: the tag is optional (entries written before tags have
// none), and splits into its work factor and its 16 hex digits.
func TestPasswordTag(t *testing.T) {
	d := validDatabase()
	if _, _, ok := d.Passwords[0].ParseTag(); ok {
		t.Fatal("an entry without a tag has one")
	}
	logN, tag, ok := d.Passwords[1].ParseTag()
	if !ok || logN != 18 || tag != "00112233445566ff" || formats.PasswordTag(logN, tag) != d.Passwords[1].Tag {
		t.Fatalf("ParseTag = %d, %q, %v", logN, tag, ok)
	}
	data := string(mustEncode(t, d))
	if strings.Count(data, "tag = ") != 1 {
		t.Fatalf("an entry without a tag is written with one:\n%s", data)
	}
}
