package formats_test

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keytree-dev/keytree/formats"
)

// Values that every metadata test starts from: valid, and written by the
// same Encode that keytree uses, so a test that edits one line of their
// encoding edits a real file.

const (
	thumbA = "0123456789abcdef0123456789abcdef01234567"
	thumbB = "fedcba9876543210fedcba9876543210fedcba98"
	thumbC = "00112233445566778899aabbccddeeff00112233"
	testID = "0123456789abcdef0123456789abcdef"
)

var (
	t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	t1 = time.Date(2026, 11, 23, 9, 30, 15, 0, time.UTC)
)

func validKeystore() *formats.Keystore {
	return &formats.Keystore{Version: formats.Version, ID: testID, Created: t0}
}

func validSMK() *formats.SMK {
	return &formats.SMK{
		Version:           formats.Version,
		Generation:        1,
		Thumbprint:        thumbA,
		Algorithm:         "x25519",
		Created:           t0,
		MachineProtection: true,
	}
}

// validSMKRetired is an SMK after two --force regenerations: generations 1
// and 2 still hold orphans.
func validSMKRetired() *formats.SMK {
	s := validSMK()
	s.Generation = 3
	s.Thumbprint = thumbC
	s.Algorithm = "mlkem768x25519"
	s.MachineProtection = false
	s.Retired = []formats.Retired{
		{Generation: 1, Thumbprint: thumbA, Algorithm: "x25519"},
		{Generation: 2, Thumbprint: thumbB, Algorithm: "mlkem768x25519"},
	}
	return s
}

func validCredential() *formats.Credential {
	return &formats.Credential{
		Version:  formats.Version,
		Name:     "payroll.db-admin",
		Identity: "CORP\\svc_payroll <ops@example.com> ünïcode",
		Revision: 3,
		Created:  t0,
		Updated:  t1,
	}
}

func validPending() *formats.Pending {
	return &formats.Pending{
		Version:    formats.Version,
		Operation:  "smk regenerate",
		Started:    t1,
		Candidates: []string{"smk/account.2.age", "smk/machine.2.age", "credentials/foo.1.2.age"},
		Sweep:      []string{"credentials", "databases/*"},
	}
}

type encoder interface{ Encode() ([]byte, error) }

// anyDecoder is decode with its result as an any.
func anyDecoder[T any](decode func([]byte) (T, error)) func([]byte) (any, error) {
	return func(b []byte) (any, error) { return decode(b) }
}

// roundTrip encodes v and checks that decoding the encoding gives v back,
// and that encoding that gives the same bytes again. It returns the
// encoding.
func roundTrip(t *testing.T, v encoder, decode func([]byte) (any, error)) []byte {
	t.Helper()
	data := mustEncode(t, v)
	got, err := decode(data)
	if err != nil {
		t.Fatalf("decode of own encoding: %v\n%s", err, data)
	}
	if !sameValue(v, got) {
		t.Fatalf("round trip changed the value:\n%#v\n%#v", v, got)
	}
	if again := mustEncode(t, got.(encoder)); !bytes.Equal(data, again) {
		t.Errorf("re-encoding differs:\n%s\n%s", data, again)
	}
	return data
}

func mustEncode(t testing.TB, v encoder) []byte {
	t.Helper()
	data, err := v.Encode()
	if err != nil {
		t.Fatalf("encode %T: %v", v, err)
	}
	return data
}

// wantCorrupt checks that err reports damage the way every decoder must:
// as a *formats.CorruptError that matches formats.ErrCorrupt.
func wantCorrupt(t testing.TB, err error, what string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: decoded without error", what)
	}
	var ce *formats.CorruptError
	if !errors.As(err, &ce) {
		t.Fatalf("%s: error %v (%T) is not a *formats.CorruptError", what, err, err)
	}
	if !errors.Is(err, formats.ErrCorrupt) {
		t.Fatalf("%s: error %v does not match formats.ErrCorrupt", what, err)
	}
}

// dropKey removes the top-level "key = ..." line from a TOML encoding.
func dropKey(t testing.TB, data []byte, key string) []byte {
	t.Helper()
	lines := strings.Split(string(data), "\n")
	out := lines[:0]
	found := false
	for _, l := range lines {
		if strings.HasPrefix(l, key+" = ") {
			found = true
			continue
		}
		out = append(out, l)
	}
	if !found {
		t.Fatalf("no line %q in\n%s", key+" = ", data)
	}
	return []byte(strings.Join(out, "\n"))
}

// setKey replaces the value of the top-level key in a TOML encoding.
func setKey(t testing.TB, data []byte, key, value string) []byte {
	t.Helper()
	lines := strings.Split(string(data), "\n")
	found := false
	for i, l := range lines {
		if strings.HasPrefix(l, key+" = ") {
			lines[i] = key + " = " + value
			found = true
		}
	}
	if !found {
		t.Fatalf("no line %q in\n%s", key+" = ", data)
	}
	return []byte(strings.Join(lines, "\n"))
}

// sameValue compares two decoded values field by field, treating times as
// equal when they are the same instant and nil and empty slices as equal:
// those are the only differences an encode/decode round trip may make.
func sameValue(a, b any) bool {
	return sameReflect(reflect.ValueOf(a), reflect.ValueOf(b))
}

var timeType = reflect.TypeOf(time.Time{})

func sameReflect(a, b reflect.Value) bool {
	if a.Type() != b.Type() {
		return false
	}
	if a.Type() == timeType {
		return a.Interface().(time.Time).Equal(b.Interface().(time.Time))
	}
	switch a.Kind() {
	case reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return sameReflect(a.Elem(), b.Elem())
	case reflect.Struct:
		for i := 0; i < a.NumField(); i++ {
			if !sameReflect(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Slice:
		if a.Len() != b.Len() {
			return false
		}
		for i := 0; i < a.Len(); i++ {
			if !sameReflect(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.String:
		return a.String() == b.String()
	case reflect.Int, reflect.Int64:
		return a.Int() == b.Int()
	case reflect.Bool:
		return a.Bool() == b.Bool()
	}
	panic("sameValue: unhandled kind " + a.Kind().String())
}

func TestSameValue(t *testing.T) {
	// The comparator the round-trip tests rely on must see a difference in
	// every field, or they would prove nothing.
	base := validSMKRetired()
	if !sameValue(base, validSMKRetired()) {
		t.Fatal("equal values compare different")
	}
	edits := []func(*formats.SMK){
		func(s *formats.SMK) { s.Version++ },
		func(s *formats.SMK) { s.Generation++ },
		func(s *formats.SMK) { s.Thumbprint = thumbB },
		func(s *formats.SMK) { s.Algorithm = "x25519" },
		func(s *formats.SMK) { s.Created = s.Created.Add(time.Nanosecond) },
		func(s *formats.SMK) { s.MachineProtection = !s.MachineProtection },
		func(s *formats.SMK) { s.Retired = s.Retired[:1] },
		func(s *formats.SMK) { s.Retired[1].Thumbprint = thumbC },
	}
	for i, edit := range edits {
		v := validSMKRetired()
		edit(v)
		if sameValue(base, v) {
			t.Errorf("edit %d not detected", i)
		}
	}
	v := validSMK()
	v.Created = v.Created.In(time.FixedZone("X", 3600))
	v.Retired = []formats.Retired{}
	if !sameValue(validSMK(), v) {
		t.Error("same instant in another zone, or empty vs nil slice, compares different")
	}
}
