package commands

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                    "plain",
		"é 日本 CORP\\svc":           "é 日本 CORP\\svc",
		"\x1b]0;pwned\x07":         `\x1b]0;pwned\a`,
		"a\nkeytree: hint: b":      `a\nkeytree: hint: b`,
		"tab\there\x7f":            `tab\there\x7f`,
		"csi\u009b31m":             `csi\u009b31m`,
		"raw \x9b byte":            `raw \x9b byte`,
		"svc\u202egnp.exe":         `svc\u202egnp.exe`,
		"\u2066\u2069\u200e\u061c": `\u2066\u2069\u200e\u061c`,
		"\ufffd stays":             "\ufffd stays",
	} {
		if got := escape(in); got != want {
			t.Errorf("escape(%q) = %q, want %q", in, got, want)
		}
	}
}

// rawUnsafe reports a control character other than newline, or a
// bidirectional formatting character, printed raw.
func rawUnsafe(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool {
		return r != '\n' && (r < 0x20 || r == 0x7f || (0x80 <= r && r <= 0x9f) || r == 0x061c || r == 0x200e || r == 0x200f ||
			(0x202a <= r && r <= 0x202e) || (0x2066 <= r && r <= 0x2069))
	})
}

// TestIdentityRefused: a new identity with a C1 control or a bidirectional
// formatting character is refused, and nothing is written.
func TestIdentityRefused(t *testing.T) {
	c := newTestCLI(t)
	for _, id := range []string{"svc\u202egnp.exe", "a\u2066b", "a\u200fb", "a\u061cb", "\u009b31m", "a\u0085b"} {
		code, _, stderr := c.run("value", "credential", "set", "x", "--identity", id)
		if code != exitUsage || !strings.Contains(stderr, "control or bidirectional formatting character") || rawUnsafe(stderr) {
			t.Errorf("identity %q: exit %d\n%s", id, code, stderr)
		}
	}
	if _, err := os.Stat(c.path("keystore", "credentials", "x.toml")); !os.IsNotExist(err) {
		t.Fatalf("a refused credential was written: %v", err)
	}
	// Ordinary Unicode is an identity like any other.
	if code, _, stderr := c.run("value", "credential", "set", "x", "--identity", "José 日本"); code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
}

// TestStoredIdentityEscaped: an identity with a bidirectional override or a
// C1 control, as an older keytree stored it (a keystore of format 1, which
// binds no identity), is listed escaped, in the table and in --json (which
// still decodes to the identity on disk). In a keystore of format 2 the
// same identity planted by hand does not match its value's binding, and is
// not listed at all.
func TestStoredIdentityEscaped(t *testing.T) {
	// One character as a TOML escape, one raw.
	const planted = "svc\u202egnp.exe\u0085\u2066"
	plant := func(t *testing.T, meta, identity string) {
		t.Helper()
		data, err := os.ReadFile(meta)
		if err != nil {
			t.Fatal(err)
		}
		from := `identity = "` + identity + `"`
		if !bytes.Contains(data, []byte(from)) {
			t.Fatalf("%s has no %s", meta, from)
		}
		data = bytes.Replace(data, []byte(from), []byte(`identity = "svc\u202Egnp.exe\u0085`+"\u2066"+`"`), 1)
		if err := os.WriteFile(meta, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("format 1", func(t *testing.T) {
		c := fixtureV1CLI(t)
		plant(t, c.path("keystore", "credentials", "backup-db.toml"), "svc_backup-db")
		code, stdout, stderr := c.run("", "credential", "list")
		if code != 0 || !strings.Contains(stdout, `svc\u202egnp.exe\u0085\u2066`) || rawUnsafe(stdout) {
			t.Fatalf("list: exit %d\n%q\n%s", code, stdout, stderr)
		}
		code, stdout, stderr = c.run("", "credential", "list", "--json")
		if code != 0 || !strings.Contains(stdout, `svc\u202egnp.exe\u0085\u2066`) || rawUnsafe(stdout) {
			t.Fatalf("list --json: exit %d\n%q\n%s", code, stdout, stderr)
		}
		var creds []credentialJSON
		if err := json.Unmarshal([]byte(stdout), &creds); err != nil {
			t.Fatal(err)
		}
		found := false
		for _, cr := range creds {
			found = found || cr.Name == "backup-db" && cr.Identity == planted
		}
		if !found {
			t.Fatalf("list --json decodes to %+v", creds)
		}
	})

	t.Run("format 2", func(t *testing.T) {
		c := newTestCLI(t)
		if code, _, stderr := c.run("value", "credential", "set", "x", "--identity", "u"); code != 0 {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		plant(t, c.path("keystore", "credentials", "x.toml"), "u")
		for _, args := range [][]string{{"credential", "list"}, {"credential", "list", "--json"}} {
			code, stdout, stderr := c.run("", args...)
			if code != exitCorrupt || stdout != "" || !strings.Contains(stderr, "identity in its metadata is not the one its value was stored with") || rawUnsafe(stderr) {
				t.Fatalf("%v: exit %d\n%q\n%s", args, code, stdout, stderr)
			}
		}
	})
}

// TestListUnchecked: while no encryption of the SMK opens (other account
// and machine directories), credential list still lists, and says that the
// identities are unchecked.
func TestListUnchecked(t *testing.T) {
	c := newTestCLI(t)
	if code, _, stderr := c.run("value", "credential", "set", "x", "--identity", "u"); code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if code, stdout, stderr := c.run("", "credential", "list"); code != 0 || strings.Contains(stdout, "unchecked") {
		t.Fatalf("list: exit %d\n%s\n%s", code, stdout, stderr)
	}
	c.account, c.machine = c.path("other-account"), c.path("other-machine")
	code, stdout, stderr := c.run("", "credential", "list")
	if code != 0 || !strings.Contains(stdout, "identity unchecked: the service master key does not open") {
		t.Fatalf("list, the SMK shut: exit %d\n%s\n%s", code, stdout, stderr)
	}
	code, stdout, stderr = c.run("", "credential", "list", "--json")
	var creds []credentialJSON
	if code != 0 || json.Unmarshal([]byte(stdout), &creds) != nil || len(creds) != 1 || !creds[0].IdentityUnchecked || creds[0].Identity != "u" {
		t.Fatalf("list --json, the SMK shut: exit %d\n%s\n%s", code, stdout, stderr)
	}

	// An identity edited, and smk.toml removed or put back to format 1 so
	// that the keystore would look like one that binds no identity: it is
	// never listed as checked.
	meta := c.path("keystore", "credentials", "x.toml")
	plant := func() {
		data, err := os.ReadFile(meta)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(meta, bytes.Replace(data, []byte(`identity = "u"`), []byte(`identity = "mallory"`), 1), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	plant()
	smk := c.path("keystore", "smk.toml")
	genuine, err := os.ReadFile(smk)
	if err != nil {
		t.Fatal(err)
	}
	var v1 []string
	for _, line := range strings.Split(string(genuine), "\n") {
		if !strings.HasPrefix(line, "commit") && !strings.HasPrefix(line, "mac") {
			v1 = append(v1, strings.Replace(line, "version = 2", "version = 1", 1))
		}
	}
	for name, data := range map[string][]byte{"removed": nil, "format 1": []byte(strings.Join(v1, "\n"))} {
		if data == nil {
			if err := os.Remove(smk); err != nil {
				t.Fatal(err)
			}
		} else if err := os.WriteFile(smk, data, 0o600); err != nil {
			t.Fatal(err)
		}
		code, stdout, stderr := c.run("", "credential", "list", "--json")
		var creds []credentialJSON
		if code == 0 && (json.Unmarshal([]byte(stdout), &creds) != nil || len(creds) != 1 || !creds[0].IdentityUnchecked) {
			t.Fatalf("smk.toml %s, an identity edited: exit %d\n%s\n%s", name, code, stdout, stderr)
		}
	}
}

// fixtureV1CLI runs keytree on a copy of testdata/fixtures/keystore-v1, a
// keystore of format 1.
func fixtureV1CLI(t *testing.T) *testCLI {
	t.Helper()
	root := tempDir(t)
	src := filepath.Join("..", "testdata", "fixtures", "keystore-v1")
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		r, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(root, r), 0o700)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(root, r), data, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	return &testCLI{t: t, root: root, keystore: filepath.Join(root, "keystore"),
		account: filepath.Join(root, "account"), machine: filepath.Join(root, "machine")}
}

// TestErrorLogEscaped: `keytree errorlog` prints the log from disk with its
// control and bidirectional formatting characters replaced.
func TestErrorLogEscaped(t *testing.T) {
	c := newTestCLI(t)
	log := "2026-01-01T00:00:00Z \x1b]0;pwned\x07 \u009b2J svc\u202egnp.exe \u2067x\u2069\n"
	if err := os.WriteFile(c.path("keystore", "errorlog"), []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := c.run("", "errorlog")
	if code != 0 || !strings.Contains(stdout, "pwned") || rawUnsafe(stdout) {
		t.Fatalf("exit %d %q\n%s", code, stdout, stderr)
	}
}

// TestPrintList: a listing is a JSON array, [] when empty, or a table of
// escaped cells under its header.
func TestPrintList(t *testing.T) {
	type item struct{ Name string }
	toJSON := func(s string) item { return item{Name: s} }
	row := func(s string) []string { return []string{s, "x"} }
	for _, tc := range []struct {
		items  []string
		asJSON bool
		want   string
	}{
		{nil, true, "[]\n"},
		{nil, false, "NAME  \n"},
		{[]string{"a", "b\x1b[2J"}, true, "[\n  {\n    \"Name\": \"a\"\n  },\n  {\n    \"Name\": \"b\\u001b[2J\"\n  }\n]\n"},
		{[]string{"long-name", "b\x1b[2J"}, false, "NAME       \nlong-name  x\nb\\x1b[2J   x\n"},
	} {
		var out bytes.Buffer
		if err := printList(&out, tc.asJSON, tc.items, []string{"NAME", ""}, toJSON, row); err != nil || out.String() != tc.want {
			t.Errorf("%q (JSON %v): %v\n got %q\nwant %q", tc.items, tc.asJSON, err, out.String(), tc.want)
		}
	}
}
