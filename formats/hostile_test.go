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
// the last case, a legitimate smk.toml at keytree's own limits, what the
// checks cost a file that passes them.
func BenchmarkDecodeHostile(b *testing.B) {
	s := validSMK()
	s.Generation = formats.MaxRetired + 1
	for g := 1; g <= formats.MaxRetired; g++ {
		s.Retired = append(s.Retired, formats.Retired{Generation: g, Thumbprint: thumbB, Algorithm: "x25519",
			Kept: []string{"account", "machine"}})
	}
	legit := mustEncode(b, s)
	cases := append(hostileInputs(b), hostileInput{
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
				c.decode(c.data)
			}
		})
	}
}
