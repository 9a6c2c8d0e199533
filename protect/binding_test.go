package protect

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"filippo.io/age"
)

func TestBinding(t *testing.T) {
	for _, alg := range Algorithms {
		t.Run(string(alg), func(t *testing.T) {
			k, err := GenerateKey(KindSMK, alg)
			if err != nil {
				t.Fatal(err)
			}
			value := []byte("value \x00\n")
			a, err := SealBound(k, []byte("credential\x00a"), value)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := SealBound(k, []byte("credential\x00b"), []byte("other"))

			got, err := OpenBound(k, a, 1<<10, []byte("credential\x00a"), true)
			if err != nil || !bytes.Equal(got, value) {
				t.Fatalf("own place: %q, %v", got, err)
			}
			// The stock age library, which the age CLI is, ignores the
			// binding stanza and decrypts the value (P15).
			r, err := age.Decrypt(bytes.NewReader(a), k.identity)
			if err != nil {
				t.Fatalf("age.Decrypt of a bound file: %v", err)
			}
			if plain, _ := io.ReadAll(r); !bytes.Equal(plain, value) {
				t.Fatalf("age.Decrypt: %q", plain)
			}

			// b read in a's place: the error names b's binding.
			_, err = OpenBound(k, b, 1<<10, []byte("credential\x00a"), true)
			var be *BindingError
			if !errors.As(err, &be) || string(be.Found) != "credential\x00b" || !errors.Is(err, ErrDamaged) {
				t.Fatalf("swapped file: %v", err)
			}

			// An unbound file: refused when a binding is required.
			plain, _ := Seal(k, value)
			if _, err := OpenBound(k, plain, 1<<10, []byte("credential\x00a"), true); !errors.Is(err, ErrUnbound) {
				t.Fatalf("unbound file, required: %v", err)
			}
			if got, err := OpenBound(k, plain, 1<<10, []byte("credential\x00a"), false); err != nil || !bytes.Equal(got, value) {
				t.Fatalf("unbound file, format 1: %q, %v", got, err)
			}

			// Someone who holds no key re-encrypts another value to the
			// key (the recipient is public) with a's binding stanza
			// copied in: the MAC covers the file key, so it fails.
			forged := forge(t, k, a, []byte("attacker's value"))
			if _, err := OpenBound(k, forged, 1<<10, []byte("credential\x00a"), true); !errors.As(err, &be) || be.Found != nil {
				t.Fatalf("forged file: %v", err)
			}

			// Another key's binding does not verify under this one.
			k2, _ := GenerateKey(KindSMK, alg)
			c, _ := SealBound(k2, []byte("credential\x00a"), value)
			if _, err := OpenBound(k, c, 1<<10, []byte("credential\x00a"), true); err == nil {
				t.Fatal("another key's file opened")
			}
		})
	}
}

// forge builds a file encrypted to k's recipient with a fresh file key,
// carrying the binding stanza of the bound file src.
func forge(t *testing.T, k *Key, src, value []byte) []byte {
	t.Helper()
	var stolen *age.Stanza
	grab := &stanzaGrabber{k: k, got: &stolen}
	if _, err := age.Decrypt(bytes.NewReader(src), grab); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, &appendStanza{r: k.recipient, s: stolen})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(value); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type stanzaGrabber struct {
	k   *Key
	got **age.Stanza
}

func (g *stanzaGrabber) Unwrap(stanzas []*age.Stanza) ([]byte, error) {
	for _, s := range stanzas {
		if s.Type == bindingStanzaType {
			*g.got = s
		}
	}
	return g.k.Unwrap(stanzas)
}

type appendStanza struct {
	r age.Recipient
	s *age.Stanza
}

func (a *appendStanza) Wrap(fileKey []byte) ([]*age.Stanza, error) {
	st, err := a.r.Wrap(fileKey)
	return append(st, a.s), err
}

func TestMetadataMAC(t *testing.T) {
	k, _ := GenerateKey(KindSMK, X25519)
	k2, _ := GenerateKey(KindSMK, X25519)
	if bytes.Equal(k.MAC([]byte("a")), k.MAC([]byte("b"))) || bytes.Equal(k.MAC([]byte("a")), k2.MAC([]byte("a"))) {
		t.Fatal("MAC does not depend on its data and key")
	}
	again, _ := ParseKey(KindSMK, k.Secret())
	if !bytes.Equal(k.MAC([]byte("a")), again.MAC([]byte("a"))) {
		t.Fatal("MAC is not a function of the key")
	}
	// The metadata key is not the bindings' key.
	if bytes.Equal(k.MAC([]byte("x")), k.bindingMACKey()) {
		t.Fatal("keys coincide")
	}
}

// BenchmarkRekeyItem is what a regenerate does per item: open a value
// and seal it again, unbound (format 1) or bound (format 2). The difference
// is the binding's cost per item: two HMACs (one checked, one made) and a
// stanza.
//
//	go test -run '^$' -bench RekeyItem ./protect
func BenchmarkRekeyItem(b *testing.B) {
	k, _ := GenerateKey(KindSMK, X25519)
	value := make([]byte, 256)
	binding := []byte("keytree/2\x00credential\x000123456789abcdef0123456789abcdef\x00backup-db\x00svc_backup\x003")
	plain, _ := Seal(k, value)
	bound, _ := SealBound(k, binding, value)
	b.Run("format1", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			v, err := Open(k, plain, 1<<20)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := Seal(k, v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("mac", func(b *testing.B) {
		fileKey := make([]byte, 16)
		for i := 0; i < b.N; i++ {
			bindingMAC(k, binding, fileKey)
		}
	})
	b.Run("format2", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			v, err := OpenBound(k, bound, 1<<20, binding, true)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := SealBound(k, binding, v); err != nil {
				b.Fatal(err)
			}
		}
	})
}
