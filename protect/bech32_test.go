package protect

import (
	"bytes"
	"crypto/rand"
	"strings"
	"testing"

	"filippo.io/age"
)

const testCharset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"

// splitBech32 takes a valid Bech32 string apart into its human-readable part
// and its data bytes, without checking the checksum: the tests then check
// that bech32Encode computes the same checksum that the string carries.
func splitBech32(t *testing.T, s string) (string, []byte) {
	t.Helper()
	s = strings.ToLower(s)
	sep := strings.LastIndexByte(s, '1')
	if sep < 1 || len(s)-sep-1 < 6 {
		t.Fatalf("%q is not Bech32", s)
	}
	var acc, bits uint32
	var out []byte
	for _, c := range s[sep+1 : len(s)-6] {
		v := strings.IndexRune(testCharset, c)
		if v < 0 {
			t.Fatalf("%q: bad character %q", s, c)
		}
		acc = acc<<5 | uint32(v)
		bits += 5
		if bits >= 8 {
			bits -= 8
			out = append(out, byte(acc>>bits))
		}
	}
	if bits >= 5 || acc&(1<<bits-1) != 0 {
		t.Fatalf("%q: its data is not whole bytes", s)
	}
	return s[:sep], out
}

// TestBech32BIP173 encodes the data of BIP 173's valid test vectors (those
// whose data is whole bytes) and expects the vectors back, checksum and all.
func TestBech32BIP173(t *testing.T) {
	for _, v := range []string{
		"A12UEL5L",
		"a12uel5l",
		"an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs",
		"abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
		"11qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqc8247j",
		"split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w",
		"?1ezyfcl",
	} {
		hrp, data := splitBech32(t, v)
		got, err := bech32Encode(hrp, data)
		if err != nil {
			t.Fatalf("bech32Encode(%q, %x): %v", hrp, data, err)
		}
		if got != strings.ToLower(v) {
			t.Errorf("bech32Encode(%q, %x) = %q, want %q", hrp, data, got, strings.ToLower(v))
		}
		// The human-readable part is case-insensitive: upper case in, the
		// same (lower-case) encoding out.
		if up, _ := bech32Encode(strings.ToUpper(hrp), data); up != got {
			t.Errorf("upper-case hrp %q gave %q, want %q", strings.ToUpper(hrp), up, got)
		}
	}
}

// TestBech32MatchesAge checks bech32Encode against age: age's own identities
// re-encode to the same string, and an encoded seed is an identity age
// parses and prints back unchanged.
func TestBech32MatchesAge(t *testing.T) {
	for i := 0; i < 20; i++ {
		id, err := age.GenerateX25519Identity()
		if err != nil {
			t.Fatal(err)
		}
		hrp, data := splitBech32(t, id.String())
		if hrp != "age-secret-key-" || len(data) != 32 {
			t.Fatalf("age identity %q: hrp %q, %d bytes", id, hrp, len(data))
		}
		enc, err := bech32Encode("AGE-SECRET-KEY-", data)
		if err != nil {
			t.Fatal(err)
		}
		if upper(enc) != id.String() {
			t.Fatalf("re-encoding age's identity gave %q, want %q", upper(enc), id.String())
		}

		seed := make([]byte, 32)
		rand.Read(seed)
		enc, err = bech32Encode("age-secret-key-", seed)
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := age.ParseX25519Identity(upper(enc))
		if err != nil {
			t.Fatalf("age refuses the encoding of seed %x: %v", seed, err)
		}
		if parsed.String() != upper(enc) {
			t.Fatalf("age prints %q for %q", parsed.String(), upper(enc))
		}
		// x25519FromSeed is this round trip; the same seed gives the same
		// identity, another seed another one.
		fromSeed, err := x25519FromSeed(seed)
		if err != nil || fromSeed.String() != parsed.String() {
			t.Fatalf("x25519FromSeed(%x) = %v, %v; want %s", seed, fromSeed, err, parsed)
		}
		seed[1] ^= 1 // not seed[0]: X25519 clamps its low bits
		other, _ := x25519FromSeed(seed)
		if other.String() == parsed.String() || other.Recipient().String() == parsed.Recipient().String() {
			t.Fatal("two seeds gave the same identity")
		}
	}

	// The hybrid post-quantum identity uses the same Bech32, without BIP
	// 173's 90-character limit.
	h, err := age.GenerateHybridIdentity()
	if err != nil {
		t.Fatal(err)
	}
	hrp, data := splitBech32(t, h.String())
	enc, err := bech32Encode(hrp, data)
	if err != nil {
		t.Fatal(err)
	}
	if upper(enc) != h.String() {
		t.Fatalf("re-encoding age's hybrid identity gave %q, want %q", upper(enc), h.String())
	}
}

func TestConvertBits(t *testing.T) {
	in := []byte{0xff, 0x00, 0xa5, 0x5a, 0x01}
	five, err := convertBits(in, 8, 5, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range five {
		if v > 31 {
			t.Fatalf("5-bit group %d", v)
		}
	}
	back, err := convertBits(five, 5, 8, false)
	if err != nil || !bytes.Equal(back, in) {
		t.Fatalf("8→5→8 gave %x, %v; want %x", back, err, in)
	}
	// Non-zero padding, and a whole spare group, are invalid.
	if _, err := convertBits([]byte{0, 1}, 5, 8, false); err == nil {
		t.Error("non-zero padding bits accepted")
	}
	if _, err := convertBits([]byte{0, 0, 0}, 5, 8, false); err == nil {
		t.Error("a whole group of padding accepted")
	}
}
