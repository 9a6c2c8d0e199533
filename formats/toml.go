package formats

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
)

// Version is the metadata format version this keytree writes and reads.
const Version = 1

// MaxMetadataSize bounds every TOML file keytree reads: metadata is small,
// and a huge file is an attack or an accident, not a keystore.
const MaxMetadataSize = 1 << 20

// CorruptError reports a file whose content keytree cannot trust.
type CorruptError struct {
	File   string // path or name of the file, as the caller knows it
	Reason string
	// Newer: the file is of a format version above those this keytree
	// reads; a newer keytree wrote it, and nothing is damaged.
	Newer bool
}

func (e *CorruptError) Error() string {
	if e.File == "" {
		return e.Reason
	}
	return e.File + ": " + e.Reason
}

// ErrCorrupt matches every *CorruptError with errors.Is.
var ErrCorrupt = errors.New("corrupt")

func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// corrupt makes a CorruptError. The strings it quotes come from the file,
// so each is clipped: a message must stay a line, whatever the file holds.
func corrupt(format string, args ...any) error {
	for i, a := range args {
		if s, ok := a.(string); ok {
			args[i] = clip(s)
		}
	}
	return &CorruptError{Reason: fmt.Sprintf(format, args...)}
}

// maxQuoted bounds a string quoted in a message. It leaves whole the
// NameError of a name of valid length.
const maxQuoted = 256

// clip shortens s to at most maxQuoted bytes, on a UTF-8 boundary, and
// says that it did.
func clip(s string) string {
	if len(s) <= maxQuoted {
		return s
	}
	n := maxQuoted - len("...")
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// WithFile names the file in a CorruptError produced while decoding it.
func WithFile(err error, file string) error {
	var ce *CorruptError
	if errors.As(err, &ce) && ce.File == "" {
		return &CorruptError{File: file, Reason: ce.Reason, Newer: ce.Newer}
	}
	return err
}

// validator is implemented by every metadata type.
type validator interface{ Validate() error }

// decode reads one TOML document into v strictly: every key of the document
// must be a field of v, every required key must be present, and v must
// validate.
func decode(data []byte, v validator, required ...string) error {
	return decodeWithin(data, MaxMetadataSize, MaxTOMLKeys, v, required...)
}

// decodeWithin is decode for a file that may be larger, or hold more keys,
// than other metadata: pending.toml.
func decodeWithin(data []byte, maxSize, maxKeys int, v validator, required ...string) error {
	if len(data) > maxSize {
		return corrupt("file is larger than %d bytes", maxSize)
	}
	if bytes.IndexByte(data, 0) >= 0 {
		return corrupt("file contains a NUL byte")
	}
	// The decoder's work is quadratic in a key's depth; within the limits
	// scanTOML checks, it is linear in the size of the file.
	if err := scanTOMLKeys(data, maxKeys); err != nil {
		if err.limit {
			return corrupt("line %d: %s", err.line, err.reason)
		}
		return corrupt("invalid TOML: line %d: %s", err.line, err.reason)
	}
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(v)
	if err != nil {
		return corrupt("invalid TOML: %s", oneLine(err.Error()))
	}
	// The first unknown key is enough to refuse the file; a file of
	// thousands would make a message of thousands.
	if und := md.Undecoded(); len(und) > 0 {
		return corrupt("unknown key %s", und[0].String())
	}
	// The decoder matches keys to fields regardless of case, so
	// "Generation" would count as "generation", and with both present one
	// would win at random. Keys are case-sensitive in TOML and in keytree:
	// every key must be a field's exact name.
	known := fieldKeys(reflect.TypeOf(v))
	for _, k := range md.Keys() {
		if !known[k.String()] {
			return corrupt("unknown key %s", k.String())
		}
	}
	for _, k := range required {
		if !md.IsDefined(strings.Split(k, ".")...) {
			return corrupt("missing key %s", k)
		}
	}
	return v.Validate()
}

// authData appends to b what a MAC covers of one table: its name, then
// each key and value, one per line. A string is quoted (strconv.Quote), so
// no value can pass for another key or line; a time is written in UTC to
// the nanosecond, as the decoder reads it back. The encoding is keytree's
// own, not TOML's: the MAC covers the values, not how a file lays them out.
func authData(b []byte, table string, kv ...any) []byte {
	b = append(b, "["...)
	b = append(b, table...)
	b = append(b, "]\n"...)
	for i := 0; i+1 < len(kv); i += 2 {
		b = append(b, kv[i].(string)...)
		b = append(b, '=')
		switch v := kv[i+1].(type) {
		case int:
			b = strconv.AppendInt(b, int64(v), 10)
		case bool:
			b = strconv.AppendBool(b, v)
		case string:
			b = strconv.AppendQuote(b, v)
		case time.Time:
			b = v.UTC().AppendFormat(b, time.RFC3339Nano)
		default:
			panic(fmt.Sprintf("authData: %T", v))
		}
		b = append(b, '\n')
	}
	return b
}

// authRetired appends the retired entries to what a MAC covers.
func authRetired(b []byte, list []Retired) []byte {
	for _, r := range list {
		b = authData(b, "retired", "generation", r.Generation, "thumbprint", r.Thumbprint, "algorithm", r.Algorithm, "bound", r.Bound)
		for _, k := range r.Kept {
			b = authData(b, "kept", "encryption", k)
		}
	}
	return b
}

// encode writes v as TOML after validating it: keytree never writes metadata
// it would refuse to read.
func encode(v validator) ([]byte, error) {
	if err := v.Validate(); err != nil {
		return nil, fmt.Errorf("refusing to write invalid metadata: %w", err)
	}
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// fieldKeys returns the dotted TOML keys a struct type decodes, by its
// fields' toml tags; tables and arrays of tables recurse.
func fieldKeys(t reflect.Type) map[string]bool {
	keys := map[string]bool{}
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || t == reflect.TypeOf(time.Time{}) {
			return
		}
		for i := 0; i < t.NumField(); i++ {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ",")
			if name == "" || name == "-" {
				continue
			}
			keys[prefix+name] = true
			walk(t.Field(i).Type, prefix+name+".")
		}
	}
	walk(t, "")
	return keys
}

// Authenticated is the format version of smk.toml and database.toml in an
// authenticated keystore (format 2): those files carry a MAC under the key
// they describe, smk.toml a commit counter, and every value file under the
// key is bound to its place. Every other file keeps Version.
const Authenticated = 2

// checkAuthVersion checks the version of smk.toml or database.toml, which
// may be Version or Authenticated, and that a MAC is present exactly when
// the file is authenticated.
func checkAuthVersion(v int, mac string) error {
	switch v {
	case Version:
		if mac != "" {
			return corrupt("a file of format version %d has a MAC", v)
		}
		return nil
	case Authenticated:
		if !isHex(mac, 64) {
			return corrupt("mac %q is not 64 hex digits", mac)
		}
		return nil
	}
	return newerVersion(v, corrupt("format version %d is not supported (this keytree reads versions %d and %d; a newer keytree wrote this keystore)", v, Version, Authenticated))
}

// newerVersion marks the error of a version above this keytree's.
func newerVersion(v int, err error) error {
	if ce, ok := err.(*CorruptError); ok && v > Authenticated {
		ce.Newer = true
	}
	return err
}

func checkVersion(v int) error {
	if v != Version {
		return newerVersion(v, corrupt("format version %d is not supported (this keytree reads version %d)", v, Version))
	}
	return nil
}

func oneLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
