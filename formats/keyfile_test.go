package formats_test

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/keytree-dev/keytree/formats"
)

// newKeyFile returns a key file holding a fresh age identity of the given
// algorithm, and the identity.
func newKeyFile(t testing.TB, alg string) (*formats.KeyFile, age.Identity, age.Recipient) {
	t.Helper()
	var (
		secret string
		id     age.Identity
		r      age.Recipient
	)
	switch alg {
	case "x25519":
		x, err := age.GenerateX25519Identity()
		if err != nil {
			t.Fatal(err)
		}
		secret, id, r = x.String(), x, x.Recipient()
	case "mlkem768x25519":
		h, err := age.GenerateHybridIdentity()
		if err != nil {
			t.Fatal(err)
		}
		secret, id, r = h.String(), h, h.Recipient()
	default:
		t.Fatalf("unknown algorithm %q", alg)
	}
	return &formats.KeyFile{Kind: "smk", Thumbprint: thumbA, Algorithm: alg, Created: t0, Secret: secret}, id, r
}

const sampleSecret = "AGE-SECRET-KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSXSTLWW"

// sampleKeyFile is a key file as keytree writes it, with every field.
const sampleKeyFile = `# keytree key file
# format: 1
# kind: dmk
# thumbprint: 0123456789abcdef0123456789abcdef01234567
# algorithm: x25519
# created: 2026-11-22T10:00:00Z
# backup: 2026-11-23T09:30:15Z
# database: payroll
` + sampleSecret + "\n"

func TestKeyFileRoundTrip(t *testing.T) {
	for _, alg := range []string{"x25519", "mlkem768x25519"} {
		for _, variant := range []string{"plain", "backup", "dmk backup"} {
			t.Run(alg+" "+variant, func(t *testing.T) {
				kf, _, _ := newKeyFile(t, alg)
				switch variant {
				case "backup":
					kf.Backup = t1
				case "dmk backup":
					kf.Kind, kf.Backup, kf.Database = "dmk", t1, "payroll.db"
				}
				data := roundTrip(t, kf, anyDecoder(formats.DecodeKeyFile))
				if hasBackup := bytes.Contains(data, []byte("\n# backup: ")); hasBackup != !kf.Backup.IsZero() {
					t.Errorf("backup line present = %v, backup time %v", hasBackup, kf.Backup)
				}
				if hasDB := bytes.Contains(data, []byte("\n# database: ")); hasDB != (kf.Database != "") {
					t.Errorf("database line present = %v, database %q", hasDB, kf.Database)
				}
			})
		}
	}
}

func TestKeyFileSample(t *testing.T) {
	got, err := formats.DecodeKeyFile([]byte(sampleKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	want := &formats.KeyFile{Kind: "dmk", Thumbprint: thumbA, Algorithm: "x25519", Created: t0, Backup: t1, Database: "payroll", Secret: sampleSecret}
	if !sameValue(want, got) {
		t.Fatalf("decoded %+v, want %+v", got, want)
	}
	if enc := mustEncode(t, got); string(enc) != sampleKeyFile {
		t.Fatalf("encoding differs from the sample:\n%s", enc)
	}
	// Times are written in UTC, whatever zone they come in.
	got.Created = got.Created.In(time.FixedZone("CET", 3600))
	if enc := mustEncode(t, got); string(enc) != sampleKeyFile {
		t.Fatalf("a time in another zone changed the encoding:\n%s", enc)
	}
}

// TestKeyFileIsAgeIdentityFile checks P15's premise: the plaintext of every
// key encryption and backup is an identity file the stock age reads.
func TestKeyFileIsAgeIdentityFile(t *testing.T) {
	for _, alg := range []string{"x25519", "mlkem768x25519"} {
		t.Run(alg, func(t *testing.T) {
			kf, _, r := newKeyFile(t, alg)
			kf.Kind, kf.Backup, kf.Database = "dmk", t1, "payroll"
			ids, err := age.ParseIdentities(bytes.NewReader(mustEncode(t, kf)))
			if err != nil {
				t.Fatalf("age.ParseIdentities: %v", err)
			}
			if len(ids) != 1 {
				t.Fatalf("age found %d identities, want 1", len(ids))
			}
			var buf bytes.Buffer
			w, err := age.Encrypt(&buf, r)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.WriteString(w, "secret value"); err != nil {
				t.Fatal(err)
			}
			w.Close()
			rd, err := age.Decrypt(&buf, ids...)
			if err != nil {
				t.Fatalf("the identity age parsed from the key file does not decrypt: %v", err)
			}
			out, _ := io.ReadAll(rd)
			if string(out) != "secret value" {
				t.Fatalf("decrypted %q", out)
			}
		})
	}
}

func TestDecodeKeyFileRejects(t *testing.T) {
	lines := strings.Split(strings.TrimSuffix(sampleKeyFile, "\n"), "\n")
	join := func(ls []string) string { return strings.Join(ls, "\n") + "\n" }
	without := func(prefix string) string {
		var out []string
		for _, l := range lines {
			if !strings.HasPrefix(l, prefix) {
				out = append(out, l)
			}
		}
		if len(out) != len(lines)-1 {
			t.Fatalf("no single line %q", prefix)
		}
		return join(out)
	}
	replace := func(prefix, with string) string {
		out := append([]string(nil), lines...)
		n := 0
		for i, l := range out {
			if strings.HasPrefix(l, prefix) {
				out[i] = with
				n++
			}
		}
		if n != 1 {
			t.Fatalf("no single line %q", prefix)
		}
		return join(out)
	}
	insert := func(line string) string {
		out := append([]string{lines[0], line}, lines[1:]...)
		return join(out)
	}
	cases := map[string]string{
		"empty":                    "",
		"only the magic":           "# keytree key file\n",
		"missing final newline":    strings.TrimSuffix(sampleKeyFile, "\n"),
		"truncated in the key":     sampleKeyFile[:len(sampleKeyFile)-10],
		"wrong magic":              replace("# keytree key file", "# keytree keyfile"),
		"age's own comment first":  replace("# keytree key file", "# created: 2026-11-22T10:00:00Z"),
		"no magic":                 strings.SplitN(sampleKeyFile, "\n", 2)[1],
		"format 2":                 replace("# format:", "# format: 2"),
		"format 0":                 replace("# format:", "# format: 0"),
		"format not a number":      replace("# format:", "# format: one"),
		"missing format":           without("# format:"),
		"missing kind":             without("# kind:"),
		"missing thumbprint":       without("# thumbprint:"),
		"missing algorithm":        without("# algorithm:"),
		"missing created":          without("# created:"),
		"missing identity":         join(lines[:len(lines)-1]),
		"repeated format":          insert("# format: 1"),
		"repeated kind":            insert("# kind: dmk"),
		"repeated kind, other":     insert("# kind: smk"),
		"repeated thumbprint":      insert("# thumbprint: " + thumbB),
		"repeated database":        insert("# database: other"),
		"repeated backup":          insert("# backup: 2026-11-23T09:30:15Z"),
		"unknown field":            insert("# recipient: age1xyz"),
		"field in upper case":      replace("# kind:", "# Kind: dmk"),
		"blank line":               insert(""),
		"line without '# '":        insert("kind: smk"),
		"line without ': '":        insert("# kind smk"),
		"bad kind":                 replace("# kind:", "# kind: password"),
		"empty kind":               replace("# kind:", "# kind: "),
		"bad thumbprint":           replace("# thumbprint:", "# thumbprint: "+strings.ToUpper(thumbA)),
		"short thumbprint":         replace("# thumbprint:", "# thumbprint: "+thumbA[:39]),
		"bad algorithm":            replace("# algorithm:", "# algorithm: X25519"),
		"bad created":              replace("# created:", "# created: yesterday"),
		"created without zone":     replace("# created:", "# created: 2026-11-22T10:00:00"),
		"bad backup":               replace("# backup:", "# backup: 2026-13-01T00:00:00Z"),
		"bad database name":        replace("# database:", "# database: ../x"),
		"reserved database name":   replace("# database:", "# database: CON"),
		"identity not age":         replace("AGE-SECRET-KEY-", "ssh-ed25519 AAAA"),
		"identity with a space":    replace("AGE-SECRET-KEY-", sampleSecret+" x"),
		"identity with a hash":     replace("AGE-SECRET-KEY-", sampleSecret+"#x"),
		"identity with a CR":       strings.Replace(sampleKeyFile, sampleSecret+"\n", sampleSecret+"\r\n", 1),
		"CRLF line endings":        strings.ReplaceAll(sampleKeyFile, "\n", "\r\n"),
		"two identities":           sampleKeyFile + sampleSecret + "\n",
		"identity first":           sampleSecret + "\n" + sampleKeyFile,
		"NUL in a field":           replace("# kind:", "# kind: dmk\x00"),
		"trailing space in a kind": replace("# kind:", "# kind: dmk "),
	}
	for what, in := range cases {
		kf, err := formats.DecodeKeyFile([]byte(in))
		if err == nil {
			t.Errorf("%s: decoded as %+v", what, kf)
			continue
		}
		wantCorrupt(t, err, what)
	}
}

func TestDecodeKeyFileSize(t *testing.T) {
	// One byte over the limit, in an otherwise well-formed file.
	pad := formats.MaxKeyFileSize + 1 - len(sampleKeyFile)
	big := strings.Replace(sampleKeyFile, "# database: payroll\n", "# database: payroll"+strings.Repeat("x", pad)+"\n", 1)
	if len(big) != formats.MaxKeyFileSize+1 {
		t.Fatalf("test file is %d bytes", len(big))
	}
	_, err := formats.DecodeKeyFile([]byte(big))
	wantCorrupt(t, err, "oversized key file")
	if !strings.Contains(err.Error(), "larger") {
		t.Errorf("oversized key file: error %q does not say it is too large", err)
	}
	// The largest key keytree writes fits well within the limit.
	kf, _, _ := newKeyFile(t, "mlkem768x25519")
	kf.Kind, kf.Backup, kf.Database = "dmk", t1, strings.Repeat("d", formats.MaxNameLength)
	if n := len(mustEncode(t, kf)); n > formats.MaxKeyFileSize/2 {
		t.Errorf("a ML-KEM key file is %d bytes, close to the %d-byte limit", n, formats.MaxKeyFileSize)
	}
}

func TestKeyFileEncodeRefusesInvalid(t *testing.T) {
	edits := map[string]func(*formats.KeyFile){
		"kind":                func(k *formats.KeyFile) { k.Kind = "account" },
		"thumbprint":          func(k *formats.KeyFile) { k.Thumbprint = "abc" },
		"algorithm":           func(k *formats.KeyFile) { k.Algorithm = "rsa" },
		"database":            func(k *formats.KeyFile) { k.Database = "a/b" },
		"secret empty":        func(k *formats.KeyFile) { k.Secret = "" },
		"secret not age":      func(k *formats.KeyFile) { k.Secret = "hello" },
		"secret with newline": func(k *formats.KeyFile) { k.Secret = sampleSecret + "\n# kind: smk" },
	}
	for what, edit := range edits {
		kf, _, _ := newKeyFile(t, "x25519")
		edit(kf)
		if data, err := kf.Encode(); err == nil || data != nil {
			t.Errorf("%s: Encode = %q, %v; want a refusal", what, data, err)
		}
	}
}
