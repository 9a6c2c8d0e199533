package commands

import (
	"strings"
	"testing"
)

// TestParseImportJSON: the JSON that get --json prints reads back, one
// object or an array; anything else is refused with a message that names
// the item or the field, never a value.
func TestParseImportJSON(t *testing.T) {
	items, err := parseImportJSON([]byte(` {"name": "a", "identity": "i", "value": "x\n", "valueEncoding": "text"}`))
	if err != nil || len(items) != 1 || items[0].Name != "a" || items[0].Identity != "i" || string(items[0].Value) != "x\n" {
		t.Fatalf("one object: %+v, %v", items, err)
	}
	if items, err := parseImportJSON([]byte("\ufeff[{\"name\": \"bom\", \"value\": \"v\"}]")); err != nil || len(items) != 1 || items[0].Name != "bom" {
		t.Fatalf("a file that starts with a byte order mark: %+v, %v", items, err)
	}
	items, err = parseImportJSON([]byte(`[{"name": "b", "value": "AP8K", "valueEncoding": "base64"}, {"database": "d", "name": "c", "value": ""}]`))
	if err != nil || len(items) != 2 || string(items[0].Value) != "\x00\xff\n" || items[1].Name != "c" || len(items[1].Value) != 0 {
		t.Fatalf("array: %+v, %v", items, err)
	}
	// A whole pair is one character; an escaped backslash before u is
	// no escape.
	items, err = parseImportJSON([]byte(`{"name": "a", "value": "\ud83d\ude00 \\ud800 \u00e9"}`))
	if err != nil || string(items[0].Value) != "\U0001F600 \\ud800 \u00e9" {
		t.Fatalf("surrogate pair: %q, %v", items, err)
	}
	for _, tc := range []struct{ in, want string }{
		{`[{"name": "a"}]`, "item 1 (a) has no value"},
		{`[{"name": "a", "value": "sekrit", "extra": 1}]`, `unknown field "extra"`},
		{`[{"name": "a", "value": "sekrit", "valueEncoding": "hex"}]`, `item 1 (a): valueEncoding is "text" or "base64"`},
		{`[{"name": "a", "value": "sekrit!", "valueEncoding": "base64"}]`, "not valid base64"},
		{`[{"name": "a", "value": 5}]`, "value should be string"},
		{`[{"name": "a", "value": "sekrit"`, "not a JSON array"},
		{`[] []`, "more than one JSON value"},
		{`"sekrit"`, "found a JSON string where an object or an array of objects belongs"},
		{`[["sekrit"]]`, "found a JSON array where an object"},
		{`[{"name": "a", "value": "x"}, 5]`, "found a JSON number where an object"},
		{strings.Repeat("[", 100000), "not a JSON array"},
		{"[{\"name\": \"a\", \"value\": \"sekrit\xff\"}]", "not valid UTF-8"},
		// a field given twice, or in another case, would be read as the
		// decoder likes
		{`[{"name": "a", "value": "sekrit", "value": "other"}]`, `item 1: the field "value" is given twice`},
		{`[{"name": "a", "value": "x"}, {"name": "b", "name": "c", "value": "sekrit"}]`, `item 2: the field "name" is given twice`},
		{`{"name": "a", "Value": "sekrit"}`, `item 1: unknown field "Value"`},
		{`{"name": "a", "value": "sekrit", "valueEncoding": "text", "VALUEENCODING": "base64"}`, `unknown field "VALUEENCODING"`},
		// half a surrogate pair would be read as U+FFFD
		{`[{"name": "a", "value": "sekrit\ud800"}]`, "surrogate"},
		{`[{"name": "a", "value": "sekrit\udc00\ud800"}]`, "surrogate"},
		{`[{"name": "a", "value": "sekrit\ud800\u0041"}]`, "surrogate"},
		{`[{"name": "a", "value": "sekrit", "identity": "\\\ud83d"}]`, "surrogate"},
	} {
		_, err := parseImportJSON([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%.40q: %v, want %q", tc.in, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "sekrit") {
			t.Errorf("%.40q: the error repeats the value: %v", tc.in, err)
		}
	}
}
