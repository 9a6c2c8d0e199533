package formats

import (
	"fmt"
	"strconv"
	"strings"
)

// Blob names. An encrypted value is stored as NAME.R.G.age: revision R of
// the value, encrypted under generation G of its master key. Metadata names
// R (the item's .toml file) and G (smk.toml or the database's database.toml), so
// a reader opens exactly one file and never lists a directory, and a file
// whose R or G committed metadata does not name is a leftover.

// BlobName returns the file name of revision rev of base encrypted under
// generation gen.
func BlobName(base string, rev, gen int) string {
	return base + "." + strconv.Itoa(rev) + "." + strconv.Itoa(gen) + ".age"
}

// ParseBlobName splits a name made by BlobName. The revision and generation
// are the last two dot-separated fields, so base may contain dots.
func ParseBlobName(name string) (base string, rev, gen int, ok bool) {
	rest, found := strings.CutSuffix(name, ".age")
	if !found {
		return "", 0, 0, false
	}
	i := strings.LastIndexByte(rest, '.')
	if i < 0 {
		return "", 0, 0, false
	}
	gen, err := parseCounter(rest[i+1:])
	if err != nil {
		return "", 0, 0, false
	}
	rest = rest[:i]
	j := strings.LastIndexByte(rest, '.')
	if j < 0 {
		return "", 0, 0, false
	}
	rev, err = parseCounter(rest[j+1:])
	if err != nil || j == 0 {
		return "", 0, 0, false
	}
	return rest[:j], rev, gen, true
}

func parseCounter(s string) (int, error) {
	if s == "" || s[0] == '0' || len(s) > 15 {
		return 0, fmt.Errorf("bad counter")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("bad counter")
		}
	}
	return strconv.Atoi(s)
}

// MetaName returns the metadata file name of an item.
func MetaName(name string) string { return name + ".toml" }

// TempPrefix starts the name of every file keytree writes before renaming it
// into place. No valid name starts with a dot, so a temporary file can never
// be mistaken for an item.
const TempPrefix = ".tmp-"
