package formats

import (
	"fmt"
	"strings"
)

// MaxNameLength bounds the names of credentials, databases and secrets. Names
// become file names, and file names must fit every filesystem keytree runs on.
const MaxNameLength = 128

// ValidateName checks a credential, database or secret name. A name is
// 1 to 128 characters from A-Z a-z 0-9 . _ - @ +, starts with a letter or a
// digit, does not end with a dot, and is not a name Windows reserves (CON,
// NUL, COM1, ...). That rules out /, \, .., NUL, control characters and
// everything else that could escape the keystore or mean something else on
// another system. what is "credential", "database" or "secret", for the
// message.
func ValidateName(what, name string) error {
	bad := func(reason string) error {
		return &NameError{What: what, Name: name, Reason: reason}
	}
	if name == "" {
		return bad("it is empty")
	}
	if len(name) > MaxNameLength {
		return bad(fmt.Sprintf("it is longer than %d characters", MaxNameLength))
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.' || c == '_' || c == '-' || c == '@' || c == '+':
			if i == 0 {
				return bad("it must start with a letter or a digit")
			}
		case c == '/' || c == '\\':
			return bad("it contains a path separator")
		case c < 0x20 || c == 0x7f:
			return bad("it contains a control character")
		case c >= 0x80:
			return bad("it contains a non-ASCII character")
		default:
			return bad(fmt.Sprintf("it contains %q; use letters, digits and . _ - @ +", string(rune(c))))
		}
	}
	if strings.HasSuffix(name, ".") {
		return bad("it ends with a dot")
	}
	if isWindowsReserved(name) {
		return bad("Windows reserves it as a device name")
	}
	return nil
}

// IsControlOrBidi reports whether r is a C0 or C1 control character, DEL,
// or a Unicode bidirectional formatting character (U+061C, U+200E, U+200F,
// U+202A to U+202E, U+2066 to U+2069). Printed raw, a control character
// drives the terminal (ESC starts its escape sequences, U+009B is a one-byte
// CSI) and a bidirectional one reorders what the terminal shows, so that
// text reads as other text (Trojan Source, CVE-2021-42574). keytree refuses
// them in new names and identities, and escapes them wherever it prints
// text that came from disk.
func IsControlOrBidi(r rune) bool {
	switch {
	case r < 0x20, r == 0x7f, 0x80 <= r && r <= 0x9f:
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f, 0x202a <= r && r <= 0x202e, 0x2066 <= r && r <= 0x2069:
		return true
	}
	return false
}

// NameError reports an invalid name.
type NameError struct {
	What, Name, Reason string
}

func (e *NameError) Error() string {
	return fmt.Sprintf("invalid %s name %q: %s", e.What, e.Name, e.Reason)
}

func isWindowsReserved(name string) bool {
	base := strings.ToUpper(name)
	if i := strings.IndexByte(base, '.'); i >= 0 {
		base = base[:i]
	}
	switch base {
	case "CON", "PRN", "AUX", "NUL":
		return true
	}
	if len(base) == 4 && (strings.HasPrefix(base, "COM") || strings.HasPrefix(base, "LPT")) {
		return base[3] >= '0' && base[3] <= '9'
	}
	return false
}

// SplitSecretPath splits "DB/NAME" and validates both names.
func SplitSecretPath(p string) (db, name string, err error) {
	db, name, ok := strings.Cut(p, "/")
	if !ok {
		return "", "", fmt.Errorf("invalid secret path %q: want DB/NAME", p)
	}
	if err := ValidateName("database", db); err != nil {
		return "", "", err
	}
	if err := ValidateName("secret", name); err != nil {
		return "", "", err
	}
	return db, name, nil
}
