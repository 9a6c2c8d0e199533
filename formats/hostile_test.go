package formats_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/keytree-dev/keytree/formats"
)

// Hostile metadata: small files shaped to make a TOML decoder do far more
// work than their size suggests (docs/reliability.md, "Hostile metadata").

// hostileInput is one such file and the decoder keytree would give it.
type hostileInput struct {
	name   string
	data   []byte
	decode func([]byte) error
}

// repeatTo repeats unit until the result is at least size bytes.
func repeatTo(unit string, size int) string {
	return strings.Repeat(unit, (size+len(unit)-1)/len(unit))
}

func hostileInputs(t testing.TB) []hostileInput {
	database := string(mustEncode(t, validDatabase()))
	pending := string(mustEncode(t, validPending()))
	decodeDatabase := func(b []byte) error { _, err := formats.DecodeDatabase(b); return err }
	decodePending := func(b []byte) error { _, err := formats.DecodePending(b); return err }

	// a = {a = {a = ... {a = 1} ... }}: every level is a key whose full
	// path is as long as its depth.
	const levels = 40 << 10 / len("{a=}")
	nested := "a = " + strings.Repeat("{a=", levels) + "1" + strings.Repeat("}", levels) + "\n"

	// An export's database.toml followed by thousands of unknown keys,
	// each a few levels deep.
	var unknown strings.Builder
	unknown.WriteString(database)
	for i := 0; unknown.Len() < 50<<10; i++ {
		fmt.Fprintf(&unknown, "x%d = {a = {b = 1}}\n", i)
	}

	// pending.toml with one key of thousands of dotted parts.
	dotted := pending + strings.TrimSuffix(repeatTo("a.", 20<<10), ".") + " = 1\n"

	// pending.toml with arrays nested thousands deep.
	const depth = 20 << 10 / 2
	arrays := strings.Replace(pending, "sweep = ", "sweep = "+strings.Repeat("[", depth)+strings.Repeat("]", depth)+", ", 1)

	return []hostileInput{
		{"nested inline tables 40KB", []byte(database + nested), decodeDatabase},
		{"db import unknown keys 50KB", []byte(unknown.String()), decodeDatabase},
		{"pending dotted key 20KB", []byte(dotted), decodePending},
		{"pending nested arrays 20KB", []byte(arrays), decodePending},
	}
}

// BenchmarkDecodeHostile measures what each hostile file costs to refuse;
// then what the costliest file found within the limits costs (an array of
// 99,990 inline tables, which the decoder builds before it finds them the
// wrong type), and what a legitimate smk.toml at keytree's own limits does.
func BenchmarkDecodeHostile(b *testing.B) {
	s := validSMK()
	s.Generation = formats.MaxRetired + 1
	for g := 1; g <= formats.MaxRetired; g++ {
		s.Retired = append(s.Retired, formats.Retired{Generation: g, Thumbprint: thumbB, Algorithm: "x25519",
			Kept: []string{"account", "machine"}})
	}
	legit := mustEncode(b, s)
	decodePending := func(b []byte) error { _, err := formats.DecodePending(b); return err }
	cases := append(hostileInputs(b),
		hostileInput{
			name:   "pending 99990 inline tables 300KB",
			data:   []byte(strings.Replace(string(mustEncode(b, validPending())), "sweep = [", "sweep = ["+strings.Repeat("{},", 99990), 1)),
			decode: decodePending,
		},
		hostileInput{
			name: fmt.Sprintf("legit smk.toml %d retired %dKB", formats.MaxRetired, len(legit)>>10),
			data: legit,
			decode: func(b []byte) error {
				_, err := formats.DecodeSMK(b)
				return err
			},
		})
	for _, c := range cases {
		b.Run(strings.ReplaceAll(c.name, " ", "-"), func(b *testing.B) {
			b.SetBytes(int64(len(c.data)))
			for b.Loop() {
				_ = c.decode(c.data) // hostile input: refused, and timed
			}
		})
	}
}

// TestDecodeHostile checks that each hostile file is refused as corrupt,
// with a message of one short line. (How fast: BenchmarkDecodeHostile.)
func TestDecodeHostile(t *testing.T) {
	for _, c := range hostileInputs(t) {
		t.Run(c.name, func(t *testing.T) {
			err := c.decode(c.data)
			wantCorrupt(t, err, c.name)
			if msg := err.Error(); len(msg) > 200 || strings.Contains(msg, "\n") {
				t.Errorf("message of %d bytes: %.300q", len(msg), msg)
			}
		})
	}
}

// TestDecodeReportsFirstUnknownKey: thousands of unknown keys make a
// message about the first one only (they follow database.toml's last
// [[retired]] table).
func TestDecodeReportsFirstUnknownKey(t *testing.T) {
	in := hostileInputs(t)[1]
	err := in.decode(in.data)
	if err == nil || err.Error() != "unknown key retired.x0" {
		t.Fatalf("got %v, want unknown key retired.x0", err)
	}
}

// TestDecodeLongValues: a value as long as the file allows is quoted in a
// message only in part.
func TestDecodeLongValues(t *testing.T) {
	long := strings.Repeat("é", 300<<10)
	db := mustEncode(t, validDatabase())
	for key, decode := range map[string]func([]byte) error{
		"name":       func(b []byte) error { _, err := formats.DecodeDatabase(b); return err },
		"thumbprint": func(b []byte) error { _, err := formats.DecodeDatabase(b); return err },
		"algorithm":  func(b []byte) error { _, err := formats.DecodeDatabase(b); return err },
		"version":    func(b []byte) error { _, err := formats.DecodeDatabase(b); return err },
	} {
		err := decode(setKey(t, db, key, `"`+long+`"`))
		wantCorrupt(t, err, key)
		if len(err.Error()) > 500 {
			t.Errorf("%s: message of %d bytes: %.300q", key, len(err.Error()), err)
		}
	}
	// Not TOML, with the offending word as long as the file: the
	// decoder's own message quotes it.
	_, err := formats.DecodePending(setKey(t, mustEncode(t, validPending()), "operation", strings.Repeat("x", 500<<10)))
	wantCorrupt(t, err, "bare word")
	if len(err.Error()) > 500 {
		t.Errorf("bare word: message of %d bytes: %.300q", len(err.Error()), err)
	}
}

// TestDecodeAtKeytreesLimits: the largest files keytree itself writes, and
// the hand-written forms of its tables, are within the decoding limits.
func TestDecodeAtKeytreesLimits(t *testing.T) {
	ids := func(n, offset int) []string {
		var list []string
		for i := range n {
			list = append(list, fmt.Sprintf("%016x", offset+i))
		}
		return list
	}

	s := validSMK()
	s.Generation = formats.MaxRetired + 1
	for g := 1; g <= formats.MaxRetired; g++ {
		s.Retired = append(s.Retired, formats.Retired{Generation: g, Thumbprint: thumbB, Algorithm: "x25519",
			Kept: []string{"account", "machine"}})
	}
	if _, err := formats.DecodeSMK(mustEncode(t, s)); err != nil {
		t.Errorf("smk.toml with %d retired generations: %v", formats.MaxRetired, err)
	}

	d := validDatabase()
	d.Generation = formats.MaxRetired + 1
	d.Passwords = nil
	for _, id := range ids(formats.MaxPasswords, 0) {
		d.Passwords = append(d.Passwords, formats.PasswordEncryption{ID: id, Created: t0})
	}
	d.Retired = nil
	for g := 1; g <= formats.MaxRetired; g++ {
		// As many kept encryptions as still fit in MaxMetadataSize.
		d.Retired = append(d.Retired, formats.Retired{Generation: g, Thumbprint: thumbB, Algorithm: "x25519",
			Kept: ids(30, g)})
	}
	data := mustEncode(t, d)
	if len(data) > formats.MaxMetadataSize {
		t.Fatalf("test database.toml is %d bytes", len(data))
	}
	if _, err := formats.DecodeDatabase(data); err != nil {
		t.Errorf("database.toml with %d passwords and %d retired generations: %v", formats.MaxPasswords, formats.MaxRetired, err)
	}

	p := validPending()
	for i := range 20000 {
		p.Candidates = append(p.Candidates, fmt.Sprintf("databases/payroll/secrets/s%d.1.%d.age", i, i))
	}
	if _, err := formats.DecodePending(mustEncode(t, p)); err != nil {
		t.Errorf("pending.toml with %d candidates: %v", len(p.Candidates), err)
	}

	// A person editing by hand may write [[password]] and [[retired]] as
	// arrays of inline tables, across lines, with comments.
	smk := string(mustEncode(t, validSMK()))
	smk = strings.Replace(smk, "generation = 1", "generation = 3", 1)
	smk += `retired = [ # earlier keys
	{ generation = 1, thumbprint = "` + thumbA + `", algorithm = "x25519", kept_encryptions = ["account"] },
	{ generation = 2, thumbprint = "` + thumbB + `", algorithm = "x25519", kept_encryptions = [
		"account", # the old account
		"machine",
	] },
]
`
	if got, err := formats.DecodeSMK([]byte(smk)); err != nil || len(got.Retired) != 2 || len(got.Retired[1].Kept) != 2 {
		t.Errorf("retired as inline tables: %+v, %v", got, err)
	}
	hand := "version = 1\nname = \"payroll\"\ngeneration = 1\nthumbprint = \"" + thumbA + "\"\nalgorithm = \"x25519\"\n" +
		"created = 2026-11-22T10:00:00Z\nsmk_encryption = true\n" +
		"password = [{id = \"0123456789abcdef\", created = 2026-11-22 10:00:00Z}]\n"
	if got, err := formats.DecodeDatabase([]byte(hand)); err != nil || len(got.Passwords) != 1 {
		t.Errorf("password as an inline table: %+v, %v", got, err)
	}
}

// TestDecodeLimits checks each limit at its value and one past it.
func TestDecodeLimits(t *testing.T) {
	pending := string(mustEncode(t, validPending()))
	decode := func(extra string) error {
		_, err := formats.DecodePending([]byte(pending + extra))
		return err
	}
	nest := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	inline := func(n int) string { return strings.Repeat("{a=", n) + "1" + strings.Repeat("}", n) }
	dotted := func(n int) string { return strings.TrimSuffix(strings.Repeat("a.", n), ".") }
	var keys, values strings.Builder
	// pending.toml has 5 keys, and may hold more than other files (a
	// batch): MaxPendingKeys; TestDecodeKeysLimit checks MaxTOMLKeys.
	for i := range formats.MaxPendingKeys - 5 {
		fmt.Fprintf(&keys, "k%d = 1\n", i)
	}
	values.WriteString("x = [")
	for range formats.MaxTOMLArrayValues - 5 { // pending.toml has 5
		values.WriteString("1,")
	}
	cases := []struct {
		name     string
		at, over string
	}{
		{"nested arrays", "x = " + nest(formats.MaxTOMLNesting), "x = " + nest(formats.MaxTOMLNesting+1)},
		// Each inline table adds a part to its keys' paths.
		{"nested inline tables", "x = " + inline(formats.MaxTOMLKeyDepth-1), "x = " + inline(formats.MaxTOMLKeyDepth)},
		{"arrays in inline tables", "x = {a = " + nest(formats.MaxTOMLNesting-1) + "}", "x = {a = " + nest(formats.MaxTOMLNesting) + "}"},
		{"dotted key", dotted(formats.MaxTOMLKeyDepth) + " = 1", dotted(formats.MaxTOMLKeyDepth+1) + " = 1"},
		{"table name", "[" + dotted(formats.MaxTOMLKeyDepth) + "]", "[[" + dotted(formats.MaxTOMLKeyDepth+1) + "]]"},
		{"key in a table", "[" + dotted(formats.MaxTOMLKeyDepth-1) + "]\na = 1", "[" + dotted(formats.MaxTOMLKeyDepth-1) + "]\na.a = 1"},
		{"key in inline tables", "x = {a = {a.a = 1}}", "x = {a = {a = {a.a = 1}}}"},
		{"bare key", strings.Repeat("k", formats.MaxTOMLKeyLength) + " = 1", strings.Repeat("k", formats.MaxTOMLKeyLength+1) + " = 1"},
		{"quoted key", `"` + strings.Repeat("k", formats.MaxTOMLKeyLength-2) + `" = 1`, `'` + strings.Repeat("k", formats.MaxTOMLKeyLength-1) + `' = 1`},
		{"keys", keys.String(), keys.String() + "k = 1"},
		{"array values", values.String() + "]", values.String() + "1]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// At the limit the scanner lets the file through, and the
			// decoder refuses it for what it is: not keytree's.
			err := decode(c.at + "\n")
			wantCorrupt(t, err, "at the limit")
			if strings.Contains(err.Error(), "more than") {
				t.Errorf("at the limit: %v", err)
			}
			err = decode(c.over + "\n")
			wantCorrupt(t, err, "over the limit")
			if !strings.Contains(err.Error(), "more than") {
				t.Errorf("over the limit: %v", err)
			}
		})
	}
}

// TestDecodeKeysLimit: any metadata file but pending.toml holds at most
// MaxTOMLKeys keys.
func TestDecodeKeysLimit(t *testing.T) {
	for _, n := range []int{formats.MaxTOMLKeys, formats.MaxTOMLKeys + 1} {
		var b strings.Builder
		for i := range n - 2 { // and a header and a key below
			fmt.Fprintf(&b, "k%d = 1\n", i)
		}
		b.WriteString("[password]\nid = 1\n")
		_, err := formats.DecodeKeystore([]byte(b.String()))
		wantCorrupt(t, err, fmt.Sprint(n, " keys"))
		if over := strings.Contains(err.Error(), "more than"); over != (n > formats.MaxTOMLKeys) {
			t.Errorf("%d keys: %v", n, err)
		}
	}
}

// TestDecodeScansStrings: brackets in strings and comments are text, and
// a string ends where TOML says, so brackets after it are counted.
func TestDecodeScansStrings(t *testing.T) {
	pending := string(dropKey(t, mustEncode(t, validPending()), "operation"))
	text := map[string]string{
		`"[[[[[{{{{{"`:             "[[[[[{{{{{",
		`"\"[[[[[\\"`:              `"[[[[[\`,
		`'[[[[[\'`:                 `[[[[[\`,
		`"""[[[[[` + "\n" + `]"""`: "[[[[[\n]",
		`"""[[[[["""""`:            `[[[[[""`,
		`"""\"""[[[[["""`:          `"""[[[[[`,
		`'''[[[[[''''`:             `[[[[['`,
		`'''""" [[[[['''`:          `""" [[[[[`,
		`"#[[[[[" # [[[[[`:         "#[[[[[",
		`"a'[[[[["`:                "a'[[[[[",
		`'a"[[[[['`:                `a"[[[[[`,
	}
	for value, want := range text {
		p, err := formats.DecodePending([]byte(pending + "operation = " + value + "\n"))
		if err != nil || p.Operation != want {
			t.Errorf("operation = %s: got %+v, %v; want %q", value, p, err, want)
		}
	}
	deep := "x = [[[[[1]]]]]\n"
	hidden := []string{
		`operation = "\\"` + "\n" + deep,
		`operation = 'a\'` + "\n" + deep,
		`operation = """a""""` + "\n" + deep,
		`operation = """a\\"""` + "\n" + deep,
		`operation = '''a\'''` + "\n" + deep,
		`operation = "a" # """` + "\n" + deep,
		"# '''\n" + `operation = "a"` + "\n" + deep,
		`operation = "a"` + "\r\n" + deep,
		`operation = "a"` + "\nx = [ # ]]]]]\n[[[[1]]]]]\n",
		`operation = "a"` + "\n" + `"a'" = [[[[[1]]]]]` + "\n",
		`operation = "a"` + "\n" + `'a"' = [[[[[1]]]]]` + "\n",
	}
	for _, in := range hidden {
		_, err := formats.DecodePending([]byte(pending + in))
		if err == nil || !strings.Contains(err.Error(), "nested more than") {
			t.Errorf("%q: got %v, want the nesting refused", in, err)
		}
	}
}
