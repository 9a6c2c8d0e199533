package formats

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// KeyFile is the plaintext of every encryption of a master key, and of a
// master key backup: an age identity file, which the stock age CLI reads with
// -i, preceded by comment lines that say what the key is.
//
//	# keytree key file
//	# format: 1
//	# kind: smk
//	# thumbprint: 3f1c...
//	# algorithm: x25519
//	# created: 2026-11-22T10:00:00Z
//	# backup: 2026-11-23T09:00:00Z      (backups only)
//	# database: payroll                 (DMK backups only)
//	AGE-SECRET-KEY-1...
//
// keytree checks, whenever it opens one, that the kind is the one it expects
// and that the thumbprint and algorithm are those of the identity below them.
type KeyFile struct {
	Kind       string // "smk" or "dmk"
	Thumbprint string
	Algorithm  string
	Created    time.Time
	Backup     time.Time // zero unless the file is a backup
	Database   string    // DMK backups: the database's name when backed up
	Secret     string    // the age identity
}

const keyFileMagic = "# keytree key file"

// MaxKeyFileSize bounds a key file (an ML-KEM identity is the largest key).
const MaxKeyFileSize = 16 << 10

func (k *KeyFile) Validate() error {
	if k.Kind != "smk" && k.Kind != "dmk" {
		return corrupt("unknown key kind %q", k.Kind)
	}
	if !isHex(k.Thumbprint, 40) {
		return corrupt("thumbprint is not 40 hex digits")
	}
	if k.Algorithm != "x25519" && k.Algorithm != "mlkem768x25519" {
		return corrupt("unknown algorithm %q", k.Algorithm)
	}
	if k.Database != "" {
		if err := ValidateName("database", k.Database); err != nil {
			return corrupt("%s", err.Error())
		}
	}
	if !strings.HasPrefix(k.Secret, "AGE-SECRET-KEY-") || strings.ContainsAny(k.Secret, " \t\r\n#") {
		return corrupt("no age identity")
	}
	return nil
}

// Encode writes the key file. The result holds the key in clear: callers
// only ever encrypt it.
func (k *KeyFile) Encode() ([]byte, error) {
	if err := k.Validate(); err != nil {
		return nil, err
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s\n# format: %d\n# kind: %s\n# thumbprint: %s\n# algorithm: %s\n# created: %s\n",
		keyFileMagic, Version, k.Kind, k.Thumbprint, k.Algorithm, k.Created.UTC().Format(keyFileTime))
	if !k.Backup.IsZero() {
		fmt.Fprintf(&sb, "# backup: %s\n", k.Backup.UTC().Format(keyFileTime))
	}
	if k.Database != "" {
		fmt.Fprintf(&sb, "# database: %s\n", k.Database)
	}
	sb.WriteString(k.Secret)
	sb.WriteString("\n")
	return []byte(sb.String()), nil
}

// keyFileTime is the one way a key file writes a time: UTC, whole seconds.
const keyFileTime = "2006-01-02T15:04:05Z"

func parseKeyFileTime(s string) (time.Time, error) {
	t, err := time.Parse(keyFileTime, s)
	if err != nil || t.Format(keyFileTime) != s {
		return time.Time{}, fmt.Errorf("not a time of the form %s", keyFileTime)
	}
	return t, nil
}

// DecodeKeyFile parses a key file strictly.
func DecodeKeyFile(data []byte) (*KeyFile, error) {
	if len(data) > MaxKeyFileSize {
		return nil, corrupt("key file is larger than %d bytes", MaxKeyFileSize)
	}
	text := string(data)
	if !strings.HasSuffix(text, "\n") {
		return nil, corrupt("key file is truncated")
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 2 || lines[0] != keyFileMagic {
		return nil, corrupt("not a keytree key file")
	}
	k := &KeyFile{}
	seen := map[string]bool{}
	for _, line := range lines[1 : len(lines)-1] {
		key, value, ok := strings.Cut(strings.TrimPrefix(line, "# "), ": ")
		if !strings.HasPrefix(line, "# ") || !ok {
			return nil, corrupt("key file: malformed line")
		}
		if seen[key] {
			return nil, corrupt("key file: repeated field %q", key)
		}
		seen[key] = true
		var err error
		switch key {
		case "format":
			if value != strconv.Itoa(Version) {
				err = fmt.Errorf("format %q is not supported (this keytree reads format %d)", value, Version)
			}
		case "kind":
			k.Kind = value
		case "thumbprint":
			k.Thumbprint = value
		case "algorithm":
			k.Algorithm = value
		case "created":
			k.Created, err = parseKeyFileTime(value)
		case "backup":
			k.Backup, err = parseKeyFileTime(value)
		case "database":
			k.Database = value
		default:
			return nil, corrupt("key file: unknown field %q", key)
		}
		if err != nil {
			return nil, corrupt("key file: field %q: %s", key, err.Error())
		}
	}
	for _, f := range []string{"format", "kind", "thumbprint", "algorithm", "created"} {
		if !seen[f] {
			return nil, corrupt("key file: missing field %q", f)
		}
	}
	k.Secret = lines[len(lines)-1]
	return k, k.Validate()
}
