package formats_test

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/keytree-dev/keytree/formats"
)

// metaType describes one metadata file for the tests that apply to all of
// them: how to decode it, a valid value, and its required keys.
type metaType struct {
	name     string
	valid    func() encoder
	decode   func([]byte) (any, error)
	required []string
}

// newMetaType describes a metadata file whose valid value comes from valid
// and whose decoder is decode.
func newMetaType[T encoder](name string, valid func() T, decode func([]byte) (T, error), required ...string) metaType {
	return metaType{name: name, valid: func() encoder { return valid() }, decode: anyDecoder(decode), required: required}
}

var smkRequired = []string{"version", "generation", "thumbprint", "algorithm", "created", "machine_protection"}

var metaTypes = []metaType{
	newMetaType("keystore.toml", validKeystore, formats.DecodeKeystore, "version", "id", "created"),
	newMetaType("smk.toml", validSMK, formats.DecodeSMK, smkRequired...),
	newMetaType("smk.toml with retired generations", validSMKRetired, formats.DecodeSMK, smkRequired...),
	newMetaType("credential", validCredential, formats.DecodeCredential,
		"version", "name", "identity", "revision", "created", "updated"),
	newMetaType("pending.toml", validPending, formats.DecodePending, "version", "operation", "started"),
}

func TestMetadataRoundTrip(t *testing.T) {
	for _, mt := range metaTypes {
		t.Run(mt.name, func(t *testing.T) { roundTrip(t, mt.valid(), mt.decode) })
	}
}

func TestMetadataStrict(t *testing.T) {
	for _, mt := range metaTypes {
		t.Run(mt.name, func(t *testing.T) {
			data := mustEncode(t, mt.valid())
			check := func(what string, in []byte) {
				t.Helper()
				t.Run(what, func(t *testing.T) {
					_, err := mt.decode(in)
					wantCorrupt(t, err, what)
				})
			}
			for _, k := range mt.required {
				check("missing "+k, dropKey(t, data, k))
			}
			check("unknown key first", append([]byte("extra = 1\n"), data...))
			check("unknown key as a table", append(append([]byte(nil), data...), "\n[extra]\nx = 1\n"...))
			// Keys are lower case; "Version" is not "version". A decoder
			// that matched keys without regard to case would take either,
			// and the last one in the file would win.
			check("unknown key differing in case only", append([]byte("Version = 1\n"), data...))
			check("required key in another case only", []byte(strings.Replace(string(data), "version = ", "VERSION = ", 1)))
			check("repeated key", append([]byte("version = 1\n"), data...))
			check("version 3", setKey(t, data, "version", "3"))
			check("version 0", setKey(t, data, "version", "0"))
			check("version -1", setKey(t, data, "version", "-1"))
			check("version as a string", setKey(t, data, "version", `"1"`))
			check("version as a float", setKey(t, data, "version", "1.0"))
			check("not TOML", []byte("this is not toml [[["))
			check("empty file", nil)
			check("NUL byte", append(append([]byte(nil), data...), 0))
			check("binary junk", []byte{0xff, 0xfe, 0x00, 0x01})
			check("truncated", data[:len(data)/2])
		})
	}
}

func TestMetadataSize(t *testing.T) {
	for _, mt := range metaTypes {
		t.Run(mt.name, func(t *testing.T) {
			data := mustEncode(t, mt.valid())
			pad := func(total int) []byte {
				b := append([]byte(nil), data...)
				b = append(b, '#')
				for len(b) < total-1 {
					b = append(b, 'x')
				}
				return append(b, '\n')
			}
			limit := formats.MaxMetadataSize
			if mt.name == "pending.toml" {
				limit = formats.MaxPendingSize // room for a batch
			}
			// A comment pads the file to exactly the limit: still read.
			atLimit := pad(limit)
			if len(atLimit) != limit {
				t.Fatalf("padding made %d bytes", len(atLimit))
			}
			if _, err := mt.decode(atLimit); err != nil {
				t.Fatalf("file of exactly %d bytes refused: %v", limit, err)
			}
			_, err := mt.decode(pad(limit + 1))
			wantCorrupt(t, err, "oversized file")
			if !strings.Contains(err.Error(), "larger") {
				t.Errorf("oversized file: error %q does not say it is too large", err)
			}
		})
	}
}

func TestDecodeKeystoreFields(t *testing.T) {
	data := mustEncode(t, validKeystore())
	for _, id := range []string{`""`, `"0123"`, `"0123456789ABCDEF0123456789ABCDEF"`, `"0123456789abcdef0123456789abcdeg"`,
		`"0123456789abcdef0123456789abcdef0"`, `"0123456789abcdef0123456789abcde"`, `1`} {
		_, err := formats.DecodeKeystore(setKey(t, data, "id", id))
		wantCorrupt(t, err, "id "+id)
	}
	_, err := formats.DecodeKeystore(setKey(t, data, "created", `"yesterday"`))
	wantCorrupt(t, err, "created as a string")
}

func TestDecodeSMKFields(t *testing.T) {
	data := mustEncode(t, validSMK())
	bad := map[string][]string{
		"thumbprint": {`""`, `"0123"`, `"` + strings.ToUpper(thumbA) + `"`, `"` + thumbA + `0"`, `"` + thumbA[:39] + `"`,
			`"` + thumbA[:39] + `g"`, `"0x` + thumbA[2:] + `"`, "1"},
		"algorithm":          {`""`, `"X25519"`, `"rsa"`, `"x25519 "`, `"mlkem768"`, `"scrypt"`, "1"},
		"generation":         {"0", "-1", strconv.Itoa(formats.MaxGeneration + 1), "9223372036854775807", "1.5", `"1"`},
		"machine_protection": {`"true"`, "1"},
		"created":            {`"2026-11-22"`, "0"},
	}
	for key, values := range bad {
		for _, v := range values {
			_, err := formats.DecodeSMK(setKey(t, data, key, v))
			wantCorrupt(t, err, key+" = "+v)
		}
	}
	// The generation's upper bound is inclusive.
	s := validSMK()
	s.Generation = formats.MaxGeneration
	if got, err := formats.DecodeSMK(mustEncode(t, s)); err != nil || got.Generation != formats.MaxGeneration {
		t.Fatalf("generation %d: %v", formats.MaxGeneration, err)
	}
	// Both algorithms are accepted.
	s = validSMK()
	s.Algorithm = "mlkem768x25519"
	if _, err := formats.DecodeSMK(mustEncode(t, s)); err != nil {
		t.Fatalf("mlkem768x25519: %v", err)
	}
}

func retiredTOML(gen int, thumb, alg string) string {
	return fmt.Sprintf("\n[[retired]]\ngeneration = %d\nthumbprint = %q\nalgorithm = %q\n", gen, thumb, alg)
}

func TestDecodeSMKRetired(t *testing.T) {
	s := validSMK()
	s.Generation = 5
	base := string(mustEncode(t, s))

	good := base + retiredTOML(4, thumbB, "x25519") + retiredTOML(1, thumbC, "mlkem768x25519") + "kept_encryptions = [\"account\", \"machine\"]\n"
	got, err := formats.DecodeSMK([]byte(good))
	if err != nil {
		t.Fatalf("valid retired list: %v", err)
	}
	want := []formats.Retired{
		{Generation: 4, Thumbprint: thumbB, Algorithm: "x25519"},
		{Generation: 1, Thumbprint: thumbC, Algorithm: "mlkem768x25519", Kept: []string{"account", "machine"}},
	}
	if !reflect.DeepEqual(got.Retired, want) {
		t.Fatalf("retired = %+v, want %+v", got.Retired, want)
	}
	if r, ok := formats.RetiredGeneration(got.Retired, 1); !ok || r.Thumbprint != thumbC {
		t.Errorf("RetiredGeneration(1) = %+v, %v", r, ok)
	}
	if _, ok := formats.RetiredGeneration(got.Retired, 5); ok {
		t.Error("RetiredGeneration found the current generation")
	}

	bad := map[string]string{
		"current generation":     retiredTOML(5, thumbB, "x25519"),
		"later generation":       retiredTOML(6, thumbB, "x25519"),
		"generation 0":           retiredTOML(0, thumbB, "x25519"),
		"negative generation":    retiredTOML(-2, thumbB, "x25519"),
		"repeated generation":    retiredTOML(3, thumbB, "x25519") + retiredTOML(3, thumbC, "x25519"),
		"bad thumbprint":         retiredTOML(3, "nothex", "x25519"),
		"upper-case thumbprint":  retiredTOML(3, strings.ToUpper(thumbB), "x25519"),
		"bad algorithm":          retiredTOML(3, thumbB, "rsa"),
		"missing thumbprint":     "\n[[retired]]\ngeneration = 3\nalgorithm = \"x25519\"\n",
		"missing algorithm":      "\n[[retired]]\ngeneration = 3\nthumbprint = \"" + thumbB + "\"\n",
		"missing generation":     "\n[[retired]]\nthumbprint = \"" + thumbB + "\"\nalgorithm = \"x25519\"\n",
		"unknown key in retired": retiredTOML(3, thumbB, "x25519") + "extra = 1\n",
		"retired as a table":     "\n[retired]\ngeneration = 3\n",
		"kept password id":       retiredTOML(3, thumbB, "x25519") + "kept_encryptions = [\"0123456789abcdef\"]\n",
		"kept twice":             retiredTOML(3, thumbB, "x25519") + "kept_encryptions = [\"account\", \"account\"]\n",
		"kept path":              retiredTOML(3, thumbB, "x25519") + "kept_encryptions = [\"../account\"]\n",
	}
	for what, extra := range bad {
		_, err := formats.DecodeSMK([]byte(base + extra))
		wantCorrupt(t, err, what)
	}

	// At most MaxRetired retired generations.
	s = validSMK()
	s.Generation = formats.MaxRetired + 2
	var sb strings.Builder
	sb.Write(mustEncode(t, s))
	for g := 1; g <= formats.MaxRetired; g++ {
		sb.WriteString(retiredTOML(g, thumbB, "x25519"))
	}
	if _, err := formats.DecodeSMK([]byte(sb.String())); err != nil {
		t.Fatalf("%d retired generations refused: %v", formats.MaxRetired, err)
	}
	sb.WriteString(retiredTOML(formats.MaxRetired+1, thumbB, "x25519"))
	_, err = formats.DecodeSMK([]byte(sb.String()))
	wantCorrupt(t, err, fmt.Sprintf("%d retired generations", formats.MaxRetired+1))
}

func TestDecodeCredentialFields(t *testing.T) {
	data := mustEncode(t, validCredential())
	bad := map[string][]string{
		"name": {`""`, `"a/b"`, `".."`, `"../x"`, `"CON"`, `"nul.txt"`, `".hidden"`, `"x."`, `"a\u0000b"`, `"é"`,
			`"` + strings.Repeat("a", 129) + `"`, "1"},
		"identity": {`""`, `"a\u0001b"`, `"a\nb"`, `"a\u007fb"`, `"a\tb"`, `"a\ufffdb"`, `"` + strings.Repeat("i", formats.MaxIdentityLength+1) + `"`, "1"},
		"revision": {"0", "-1", strconv.Itoa(formats.MaxRevision + 1), `"1"`},
		"updated":  {`"now"`},
	}
	for key, values := range bad {
		for _, v := range values {
			_, err := formats.DecodeCredential(setKey(t, data, key, v))
			wantCorrupt(t, err, key+" = "+v)
		}
	}
	c := validCredential()
	c.Identity = strings.Repeat("i", formats.MaxIdentityLength)
	c.Revision = formats.MaxRevision
	if _, err := formats.DecodeCredential(mustEncode(t, c)); err != nil {
		t.Fatalf("identity of %d bytes and revision %d: %v", formats.MaxIdentityLength, formats.MaxRevision, err)
	}
}

func TestValidateIdentity(t *testing.T) {
	for _, id := range []string{"u", "CORP\\svc", "a b", "ops@example.com", "日本語", strings.Repeat("x", formats.MaxIdentityLength)} {
		if err := formats.ValidateIdentity(id); err != nil {
			t.Errorf("ValidateIdentity(%q) = %v", id, err)
		}
	}
	for _, id := range []string{"", "a\x00", "a\nb", "a\rb", "\x1b[31m", "a\x7f", "a\xff", "a\ufffd", strings.Repeat("x", formats.MaxIdentityLength+1),
		// C1 controls (U+009B is a one-byte CSI) and bidirectional formatting
		// characters, which make `credential list` show other text.
		"a\u0080", "\u009b31m", "a\u009f", "svc\u202egnp.exe", "a\u202ab", "a\u2066b", "a\u2069", "a\u200eb", "a\u200f", "a\u061cb"} {
		if err := formats.ValidateIdentity(id); err == nil {
			t.Errorf("ValidateIdentity(%q) accepted", id)
		}
	}
}

// TestStoredIdentityWithBidi: an identity that an older keytree stored with
// a C1 or bidirectional formatting character still loads and writes back
// (the CLI escapes it when it prints it); only new ones are refused.
func TestStoredIdentityWithBidi(t *testing.T) {
	for _, id := range []string{"svc\u202egnp.exe", "a\u0085b", "é\u2066日本"} {
		c := validCredential()
		c.Identity = id
		got, err := formats.DecodeCredential(mustEncode(t, c))
		if err != nil || got.Identity != id {
			t.Errorf("identity %q: got %+v, %v", id, got, err)
		}
	}
}

func TestDecodePendingFields(t *testing.T) {
	p := &formats.Pending{Version: formats.Version, Operation: "x", Started: t0}
	got, err := formats.DecodePending(mustEncode(t, p))
	if err != nil || len(got.Candidates) != 0 || len(got.Sweep) != 0 {
		t.Fatalf("pending without lists: %+v, %v", got, err)
	}
	data := mustEncode(t, validPending())
	for key, v := range map[string]string{"candidates": `"credentials/x"`, "sweep": "[1, 2]", "operation": "1", "started": `"then"`} {
		_, err := formats.DecodePending(setKey(t, data, key, v))
		wantCorrupt(t, err, key+" = "+v)
	}
	// Entries are bounded.
	var sb strings.Builder
	fmt.Fprintf(&sb, "version = 1\noperation = \"x\"\nstarted = 2026-01-01T00:00:00Z\ncandidates = [")
	for i := 0; i < 100001; i++ {
		sb.WriteString(`"a",`)
	}
	sb.WriteString("]\n")
	if sb.Len() > formats.MaxMetadataSize {
		t.Fatalf("test file too large (%d bytes) to reach the entry limit", sb.Len())
	}
	_, err = formats.DecodePending([]byte(sb.String()))
	wantCorrupt(t, err, "100001 entries")
}

// TestPendingLargestBatch: a pending.toml with the largest batch an import
// makes (MaxBatchItems secrets, database and names of MaxNameLength) is
// written and read back whole: were it refused, the next keytree would not
// see the batch and would leave it half moved. One larger than keytree
// reads is refused when written.
func TestPendingLargestBatch(t *testing.T) {
	long := func(c string) string { return strings.Repeat(c, formats.MaxNameLength-6) }
	p := validPending()
	p.Batch = &formats.PendingBatch{Dir: formats.BatchDirPrefix + "0123456789abcdef01234567"}
	for i := range formats.MaxBatchItems {
		p.Batch.Items = append(p.Batch.Items, formats.BatchItem{DB: long("d") + fmt.Sprintf("%06d", i), Name: long("n") + fmt.Sprintf("%06d", i)})
	}
	data, err := p.Encode()
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	if len(data) <= formats.MaxMetadataSize {
		t.Fatalf("the batch takes %d bytes: not the largest", len(data))
	}
	got, err := formats.DecodePending(data)
	if err != nil || len(got.Batch.Items) != formats.MaxBatchItems || got.Batch.Items[formats.MaxBatchItems-1] != p.Batch.Items[formats.MaxBatchItems-1] {
		t.Fatalf("a pending.toml of %d bytes with %d batch items does not read back: %v", len(data), formats.MaxBatchItems, err)
	}
	p.Candidates = append(p.Candidates, strings.Repeat("x", formats.MaxPendingSize))
	if _, err := p.Encode(); err == nil || !strings.Contains(err.Error(), "more than keytree reads") {
		t.Fatalf("a pending.toml larger than keytree reads: %v", err)
	}
}

// edited is a valid value changed by edit.
func edited[T any](valid func() T, edit func(T)) T {
	v := valid()
	edit(v)
	return v
}

func TestEncodeRefusesInvalid(t *testing.T) {
	for name, v := range map[string]encoder{
		"keystore version 3": edited(validKeystore, func(k *formats.Keystore) { k.Version = 3 }),
		"keystore bad id":    edited(validKeystore, func(k *formats.Keystore) { k.ID = "xyz" }),

		"smk version 0":                  edited(validSMK, func(s *formats.SMK) { s.Version = 0 }),
		"smk generation 0":               edited(validSMK, func(s *formats.SMK) { s.Generation = 0 }),
		"smk bad thumbprint":             edited(validSMK, func(s *formats.SMK) { s.Thumbprint = "abc" }),
		"smk bad algorithm":              edited(validSMK, func(s *formats.SMK) { s.Algorithm = "rsa" }),
		"smk retired current generation": edited(validSMKRetired, func(s *formats.SMK) { s.Retired[0].Generation = s.Generation }),
		"smk retired repeated":           edited(validSMKRetired, func(s *formats.SMK) { s.Retired[1].Generation = s.Retired[0].Generation }),
		"smk retired bad algorithm":      edited(validSMKRetired, func(s *formats.SMK) { s.Retired[0].Algorithm = "" }),

		"credential bad name":      edited(validCredential, func(c *formats.Credential) { c.Name = "../etc/passwd" }),
		"credential reserved name": edited(validCredential, func(c *formats.Credential) { c.Name = "LPT1" }),
		"credential bad identity":  edited(validCredential, func(c *formats.Credential) { c.Identity = "a\nb" }),
		"credential revision 0":    edited(validCredential, func(c *formats.Credential) { c.Revision = 0 }),

		"pending version 3": edited(validPending, func(p *formats.Pending) { p.Version = 3 }),
	} {
		data, err := v.Encode()
		if err == nil || data != nil {
			t.Errorf("%s: Encode = %d bytes, %v; want a refusal", name, len(data), err)
		}
	}
}

// TestCorruptError checks the error type every decoder reports.
func TestCorruptError(t *testing.T) {
	_, err := formats.DecodeSMK([]byte("version = 7\n"))
	wantCorrupt(t, err, "smk")
	named := formats.WithFile(err, "/ks/smk.toml")
	wantCorrupt(t, named, "named")
	if !strings.HasPrefix(named.Error(), "/ks/smk.toml: ") {
		t.Errorf("WithFile: %q does not start with the file", named)
	}
	// A file already named keeps its name.
	if again := formats.WithFile(named, "/other"); again.Error() != named.Error() {
		t.Errorf("WithFile renamed a named error: %q", again)
	}
	// Other errors pass through unchanged.
	plain := fmt.Errorf("disk on fire")
	if formats.WithFile(plain, "x") != plain {
		t.Error("WithFile changed a non-corrupt error")
	}
}
