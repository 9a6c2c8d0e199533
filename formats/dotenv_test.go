package formats_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/keytree-dev/keytree/formats"
)

func TestParseEnvFile(t *testing.T) {
	in := "\ufeff# comment\n\n  # indented comment\r\nA=plain value  \nexport B = spaced # kept\n" +
		"C=\"esc \\n\\t\\\" \\\\ end\" # comment\nD='single \\n $x'\nE=\nF=\"two\nlines\"\r\nG='x\r\ny'\nexport=1\nH=a=b\n"
	got, err := formats.ParseEnvFile([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []formats.EnvEntry{
		{"A", "plain value", 4},
		{"B", "spaced # kept", 5},
		{"C", "esc \n\t\" \\ end", 6},
		{"D", "single \\n $x", 7},
		{"E", "", 8},
		{"F", "two\nlines", 9},
		{"G", "x\ny", 11},
		{"export", "1", 13},
		{"H", "a=b", 14},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestParseEnvFileRefused(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"A=1\nnoequals\n", "line 2: no ="},
		{"=v\n", "line 1: nothing before"},
		{"A B=v\n", "line 1: the name holds a space"},
		{"A=1\nA=2\n", "line 2: A is given twice (first on line 1)"},
		{"A=\"open\nstill\n", "line 1: the \" that opens the value is never closed"},
		{"A='secret-value' trailing\n", "line 1: text after the closing quote"},
		{"A=\"\\q\"\n", "unknown escape"},
		{"A=\"ends \\", "a \\ at the end of a line"},
		{"A=x\x00y\n", "NUL"},
	} {
		_, err := formats.ParseEnvFile([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.in, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret-value") {
			t.Errorf("%q: the error repeats the value: %v", tc.in, err)
		}
	}
}

// FuzzParseEnvFile: any input parses or is refused, without panicking;
// what parses has unique, non-empty names without spaces, in line order.
func FuzzParseEnvFile(f *testing.F) {
	for _, s := range []string{"A=1\n", "export B='x\ny'\n", "C=\"\\n\\\"\" # c\r\n", "#\n\nD=\n", "E=\"", "F='", "=", "G=a=b"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := formats.ParseEnvFile(data)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		line := 0
		for _, e := range entries {
			if e.Name == "" || strings.ContainsAny(e.Name, " \t\"'=\n") || seen[e.Name] || e.Line <= line {
				t.Fatalf("entry %+v (previous line %d) from %q", e, line, data)
			}
			seen[e.Name], line = true, e.Line
		}
	})
}
