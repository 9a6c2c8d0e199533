package formats_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/keytree-dev/keytree/formats"
)

func TestValidateNameAccepts(t *testing.T) {
	for _, name := range []string{
		"a", "Z", "0", "db1", "payroll", "Payroll-2026",
		"user@example.com", "a+b", "a-b_c.d", "x.y.z",
		"1.0", "v1.2.3-rc.1", "a..b",
		// Close to, but not, Windows device names.
		"COM", "LPT", "CON1", "console", "nul2", "auxiliary", "prnt", "COM10", "LPT10", "COMA", "com1a",
		"conn.txt", "my.con", "x.nul",
		strings.Repeat("a", formats.MaxNameLength),
		"A" + strings.Repeat("-", formats.MaxNameLength-1),
	} {
		if err := formats.ValidateName("credential", name); err != nil {
			t.Errorf("ValidateName(%q) = %v, want nil", name, err)
		}
	}
}

func TestValidateNameRejects(t *testing.T) {
	cases := []struct{ name, why string }{
		{"", "empty"},
		{"a/b", "slash"},
		{"/etc", "leading slash"},
		{"a\\b", "backslash"},
		{"..", "dot dot"},
		{"../x", "parent path"},
		{"x/../y", "parent path inside"},
		{".", "dot"},
		{".hidden", "leading dot"},
		{"-rf", "leading dash"},
		{"_x", "leading underscore"},
		{"@x", "leading at"},
		{"+x", "leading plus"},
		{"x.", "trailing dot"},
		{"a..", "trailing dots"},
		{"\x00", "NUL"},
		{"a\x00b", "NUL inside"},
		{"a\x00", "trailing NUL"},
		{"a\tb", "tab"},
		{"a\nb", "newline"},
		{"a\rb", "carriage return"},
		{"a\x1bb", "escape"},
		{"a\x1f", "unit separator"},
		{"a\x7fb", "DEL"},
		{"é", "non-ASCII"},
		{"naïve", "non-ASCII inside"},
		{"a\xffb", "invalid UTF-8"},
		{"a\u2215b", "division slash"},
		{"a b", "space"},
		{"a ", "trailing space"},
		{"a:b", "colon"},
		{"C:x", "drive"},
		{"a*b", "star"},
		{"a?b", "question mark"},
		{"a\"b", "quote"},
		{"a<b", "less than"},
		{"a>b", "greater than"},
		{"a|b", "pipe"},
		{"a%b", "percent"},
		{"a$b", "dollar"},
		{"a~", "tilde"},
		{strings.Repeat("a", formats.MaxNameLength+1), "129 characters"},
	}
	// Windows device names, in any case, bare and with extensions.
	for _, dev := range []string{"CON", "PRN", "AUX", "NUL", "COM1", "COM9", "LPT1", "LPT9", "COM0", "LPT0"} {
		lower := strings.ToLower(dev)
		mixed := strings.ToUpper(dev[:1]) + lower[1:]
		for _, n := range []string{dev, lower, mixed, lower + ".txt", dev + ".TXT", mixed + ".tar.gz", lower + ".1.age"} {
			cases = append(cases, struct{ name, why string }{n, "Windows device " + dev})
		}
	}
	for _, c := range cases {
		for _, what := range []string{"credential", "database", "secret"} {
			err := formats.ValidateName(what, c.name)
			if err == nil {
				t.Errorf("ValidateName(%q) accepted a name with %s", c.name, c.why)
				continue
			}
			var ne *formats.NameError
			if !errors.As(err, &ne) {
				t.Fatalf("ValidateName(%q): %v is a %T, want *formats.NameError", c.name, err, err)
			}
			if ne.What != what || ne.Name != c.name || ne.Reason == "" {
				t.Errorf("ValidateName(%q) error = %#v", c.name, ne)
			}
			if !strings.Contains(err.Error(), what) {
				t.Errorf("message %q does not say what was being named (%s)", err, what)
			}
		}
	}
}

// TestValidateNameLengthBoundary checks 128 against 129 characters with
// every allowed character class at the end, not only letters.
func TestValidateNameLengthBoundary(t *testing.T) {
	for _, tail := range []string{"a", "Z", "9", "_", "-", "@", "+"} {
		ok := strings.Repeat("b", formats.MaxNameLength-1) + tail
		if err := formats.ValidateName("secret", ok); err != nil {
			t.Errorf("%d-character name ending in %q refused: %v", len(ok), tail, err)
		}
		if err := formats.ValidateName("secret", "b"+ok); err == nil {
			t.Errorf("%d-character name accepted", len(ok)+1)
		}
	}
}

func TestSplitSecretPath(t *testing.T) {
	good := []struct{ in, db, name string }{
		{"db/name", "db", "name"},
		{"payroll/api.key", "payroll", "api.key"},
		{"a/b", "a", "b"},
		{"DB-1/x@y+z", "DB-1", "x@y+z"},
	}
	for _, g := range good {
		db, name, err := formats.SplitSecretPath(g.in)
		if err != nil || db != g.db || name != g.name {
			t.Errorf("SplitSecretPath(%q) = %q, %q, %v; want %q, %q", g.in, db, name, err, g.db, g.name)
		}
	}
	bad := []string{
		"", "db", "/", "/name", "db/", "db/a/b", "../name", "db/..", "db/../x",
		"..//x", "db\\name", "CON/x", "db/nul", "db/NUL.txt", ".db/x", "db/.x", "db/x.",
		"d\x00b/x", "db/x\n", "db /x", strings.Repeat("d", 129) + "/x", "db/" + strings.Repeat("n", 129),
	}
	for _, in := range bad {
		db, name, err := formats.SplitSecretPath(in)
		if err == nil {
			t.Errorf("SplitSecretPath(%q) = %q, %q, accepted", in, db, name)
		} else if db != "" || name != "" {
			t.Errorf("SplitSecretPath(%q) failed but returned %q, %q", in, db, name)
		}
	}
	// The error names which half is wrong.
	_, _, err := formats.SplitSecretPath("db/CON")
	var ne *formats.NameError
	if !errors.As(err, &ne) || ne.What != "secret" {
		t.Errorf("db/CON: error %v does not blame the secret name", err)
	}
	_, _, err = formats.SplitSecretPath("CON/x")
	if !errors.As(err, &ne) || ne.What != "database" {
		t.Errorf("CON/x: error %v does not blame the database name", err)
	}
}
