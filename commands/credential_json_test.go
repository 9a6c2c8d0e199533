package commands

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

// TestCredentialGetJSON: credential get --json prints one object, the
// identity and the value, on a terminal or not; a value that is valid UTF-8
// is a string that decodes to the same bytes, any other is base64, and
// valueEncoding says which.
func TestCredentialGetJSON(t *testing.T) {
	c := newTestCLI(t)
	for _, tc := range []struct {
		value, encoding string
	}{
		{"hunter2", "text"},
		{"line one\nline two\n", "text"},
		{"nul \x00 esc \x1b c1 \u009b rlo \u202e é 日本", "text"},
		{"\xff\xfe binary", "base64"},
		{"a\xc3", "base64"},
	} {
		if code, _, stderr := c.run(tc.value, "credential", "set", "c", "--identity", "svc\u00e9", "--allow-empty"); code != 0 {
			t.Fatalf("credential set: exit %d\n%s", code, stderr)
		}
		for _, tty := range []bool{false, true} {
			var stdout, stderr bytes.Buffer
			e := &env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, stdoutTTY: tty}
			if code := c.runWith(e, "credential", "get", "c", "--json"); code != 0 || stderr.Len() != 0 {
				t.Fatalf("%q (terminal %v): exit %d\n%s", tc.value, tty, code, stderr.String())
			}
			out := stdout.String()
			if strings.ContainsAny(out, "\x00\x1b\u009b\u202e") {
				t.Errorf("%q: control or bidi characters written raw: %q", tc.value, out)
			}
			var got map[string]any
			dec := json.NewDecoder(strings.NewReader(out))
			if err := dec.Decode(&got); err != nil || dec.More() {
				t.Fatalf("%q: not one JSON object (%v): %q", tc.value, err, out)
			}
			if len(got) != 4 || got["name"] != "c" || got["identity"] != "svc\u00e9" || got["valueEncoding"] != tc.encoding {
				t.Errorf("%q: %v", tc.value, got)
			}
			v, _ := got["value"].(string)
			if tc.encoding == "base64" {
				b, err := base64.StdEncoding.DecodeString(v)
				if err != nil {
					t.Fatalf("%q: %v", tc.value, err)
				}
				v = string(b)
			}
			if v != tc.value {
				t.Errorf("the value: got %q, want %q", v, tc.value)
			}
		}
	}
}
