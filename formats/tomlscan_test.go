package formats

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// FuzzScanTOML checks scanTOML against the decoder it guards:
//
//   - it never panics;
//   - a file it calls invalid TOML, the decoder refuses too, so the scanner
//     is never stricter than TOML where it does not mean to be;
//   - a file it lets through decodes (if at all) within its limits, so it
//     never reads as text what the decoder reads as structure: keys, key
//     paths and key parts no longer, arrays no larger and values no deeper
//     than the limits allow. Within them the decoder's work is linear.
func FuzzScanTOML(f *testing.F) {
	// Every TOML file of the fixtures of released formats.
	err := filepath.WalkDir("../testdata/fixtures", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".toml") {
			if data, err := os.ReadFile(p); err == nil {
				f.Add(data)
			}
		}
		return nil
	})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		"a = 1\n", "[t]\nk = 'v'\n", "[[t]]\n[[t]]\nk.l = 2\n", "a = [[1], [2, [3]]]\n",
		"a = {b = {c = 1}}\n", "a = {a = {a = {a = {a = 1}}}}\n", "a = [[[[[1]]]]]\n",
		"a = [ # c\n 1, # d\n]\n", "a = {\n b = 1, # c\n}\n", "a = {b = 1,}\n",
		"a = \"[[[\\\"{{{\"\n", "a = '[[[\\'\nb = [[[[[1]]]]]\n",
		"a = \"\"\"x\n]]]\"\"\"\"\"\n", "a = '''x''''''\n", "a = \"\"\"\\\"\"\"\"\"\"\n",
		"\"k.[\" = 1\n'k]' = 2\n", "a.\"b\".'c' = 1\n", "[ a . b ]\n", "d = 1979-05-27 07:32:00Z\n",
		"d = 1979-05-27T07:32:00.5-07:00\nf = -inf\nx = 0x1f\n", "\xef\xbb\xbfa = 1\n", "a = 1\r\nb = 2\r\n",
		"a = 1\rb = 2\n", "a = \"\x01\"\n", "a = \"\xff\"\n", "a.. = 1\n", "= 1\n", "[[a]\n", "a = [1 2]\n",
		"a = \"\"\"\n", "a = 1 # [[[\n", strings.Repeat("a.", 10) + "a = 1\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		serr := scanTOML(data)
		if serr != nil && serr.limit {
			return
		}
		var v map[string]any
		md, err := toml.Decode(string(data), &v)
		if serr != nil {
			if err == nil {
				t.Fatalf("scanner: line %d: %s; the decoder accepts %q", serr.line, serr.reason, data)
			}
			return
		}
		if err != nil {
			return
		}
		keys := md.Keys()
		if len(keys) > MaxTOMLKeys {
			t.Fatalf("%d keys passed the scanner: %q", len(keys), data)
		}
		for _, k := range keys {
			if len(k) > MaxTOMLKeyDepth {
				t.Fatalf("key %s passed the scanner: %q", k, data)
			}
			for _, part := range k {
				// A key part as written is at least as long as the
				// string it stands for.
				if len(part) > MaxTOMLKeyLength {
					t.Fatalf("key part of %d bytes passed the scanner: %q", len(part), data)
				}
			}
		}
		// Arrays of tables are arrays of values here and keys to the
		// scanner; every table, inline or not, is at most MaxTOMLKeyDepth
		// levels into the document.
		values := 0
		var walk func(x any, depth int)
		walk = func(x any, depth int) {
			if depth > MaxTOMLKeyDepth+MaxTOMLNesting {
				t.Fatalf("a value %d levels deep passed the scanner: %q", depth, data)
			}
			switch x := x.(type) {
			case map[string]any:
				for _, e := range x {
					walk(e, depth+1)
				}
			case []map[string]any:
				values += len(x)
				for _, e := range x {
					walk(e, depth+1)
				}
			case []any:
				values += len(x)
				for _, e := range x {
					walk(e, depth+1)
				}
			}
		}
		walk(v, 0)
		if values > MaxTOMLArrayValues+MaxTOMLKeys {
			t.Fatalf("%d array values passed the scanner: %q", values, data)
		}
	})
}

// TestScanTOMLErrors checks that the scanner tells limits from syntax, and
// counts lines.
func TestScanTOMLErrors(t *testing.T) {
	for in, want := range map[string]scanError{
		"a = 1\nb = [[[[[1]]]]]\n":  {limit: true, line: 2},
		"a = 1\n\nb = [1,,2]\n":     {limit: false, line: 3},
		"a = \"x\n":                 {limit: false, line: 1},
		"a = '''\n\n":               {limit: false, line: 3},
		"\xef\xbb\xbf[a.b.c.d.e]\n": {limit: true, line: 1},
	} {
		got := scanTOML([]byte(in))
		if got == nil || got.limit != want.limit || got.line != want.line {
			t.Errorf("scanTOML(%q) = %+v, want limit %v at line %d", in, got, want.limit, want.line)
		}
	}
	if err := scanTOML(nil); err != nil {
		t.Errorf("empty file: %+v", err)
	}
}
