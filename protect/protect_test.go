package protect

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"filippo.io/age"
)

func TestMain(m *testing.M) {
	SetScryptWorkFactorForTesting(10)
	m.Run()
}

func roundTrip(t *testing.T, wrap, unwrap Protector) ([]byte, error) {
	t.Helper()
	want := []byte("top secret \x00\xff value")
	ct, err := Seal(wrap, want)
	if err != nil {
		t.Fatalf("seal with %s: %v", wrap.Kind(), err)
	}
	got, err := Open(unwrap, ct, 1<<20)
	if err == nil && !bytes.Equal(got, want) {
		t.Fatalf("round trip through %s: got %q, want %q", wrap.Kind(), got, want)
	}
	return got, err
}

func TestAccountProtector(t *testing.T) {
	s1, err := GenerateAccountSecret()
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := GenerateAccountSecret()
	a1, err := Account(s1)
	if err != nil {
		t.Fatal(err)
	}
	a1again, _ := Account(s1)
	a2, _ := Account(s2)
	if _, err := roundTrip(t, a1, a1again); err != nil {
		t.Fatalf("same account secret: %v", err)
	}
	if _, err := roundTrip(t, a1, a2); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("another account's secret opened the file: err = %v", err)
	}
	if _, err := Account(nil); err == nil {
		t.Fatal("an empty account secret accepted")
	}
	if _, err := Account(s1[:len(s1)/2]); err == nil {
		t.Fatal("a truncated account secret accepted")
	}
}

func TestMachineProtector(t *testing.T) {
	ms, err := GenerateMachineSecret()
	if err != nil {
		t.Fatal(err)
	}
	ms2, _ := GenerateMachineSecret()
	e1, _ := GenerateEntropy()
	e2, _ := GenerateEntropy()
	m1, err := Machine(ms, e1)
	if err != nil {
		t.Fatal(err)
	}
	m1again, _ := Machine(ms, e1)
	if _, err := roundTrip(t, m1, m1again); err != nil {
		t.Fatalf("same machine and entropy: %v", err)
	}
	otherEntropy, _ := Machine(ms, e2)
	if _, err := roundTrip(t, m1, otherEntropy); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("other keystore's entropy opened the file: err = %v", err)
	}
	if MachineSecretName != "" { // Unix: the machine secret is a file.
		otherMachine, _ := Machine(ms2, e1)
		if _, err := roundTrip(t, m1, otherMachine); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("other machine's secret opened the file: err = %v", err)
		}
	}
	if _, err := Machine(ms, e1[:255]); err == nil {
		t.Fatal("short entropy accepted")
	}
}

func TestKeys(t *testing.T) {
	for _, alg := range Algorithms {
		t.Run(string(alg), func(t *testing.T) {
			k, err := GenerateKey(KindSMK, alg)
			if err != nil {
				t.Fatal(err)
			}
			if k.Algorithm() != alg {
				t.Fatalf("algorithm %s, want %s", k.Algorithm(), alg)
			}
			parsed, err := ParseKey(KindSMK, k.Secret())
			if err != nil {
				t.Fatal(err)
			}
			if !parsed.Equal(k) || parsed.Algorithm() != alg || len(k.Thumbprint()) != 40 {
				t.Fatalf("parsed key differs: %s/%s vs %s/%s", parsed.Thumbprint(), parsed.Algorithm(), k.Thumbprint(), alg)
			}
			if _, err := roundTrip(t, k, parsed); err != nil {
				t.Fatal(err)
			}
			other, _ := GenerateKey(KindSMK, alg)
			if other.Equal(k) {
				t.Fatal("two generated keys are equal")
			}
			if _, err := roundTrip(t, k, other); !errors.Is(err, ErrDecrypt) {
				t.Fatalf("another key opened the file: %v", err)
			}
		})
	}
	if _, err := ParseKey(KindSMK, "AGE-SECRET-KEY-1QQQ"); err == nil {
		t.Fatal("malformed key accepted")
	}
	if _, err := ParseKey(KindSMK, "hello"); err == nil {
		t.Fatal("junk accepted as a key")
	}
}

func TestPassword(t *testing.T) {
	p, err := NewPassword([]byte("Correct-Horse-9"))
	if err != nil {
		t.Fatal(err)
	}
	same, _ := NewPassword([]byte("Correct-Horse-9"))
	wrong, _ := NewPassword([]byte("Correct-Horse-8"))
	if _, err := roundTrip(t, p, same); err != nil {
		t.Fatal(err)
	}
	if _, err := roundTrip(t, p, wrong); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := NewPassword(nil); err == nil {
		t.Fatal("empty password accepted")
	}
}

// TestScryptFloor checks that a password file asking for less scrypt work
// than keytree writes is refused, even with the right password.
func TestScryptFloor(t *testing.T) {
	r, _ := age.NewScryptRecipient("Correct-Horse-9")
	r.SetWorkFactor(scryptFloor - 1)
	ct, err := Seal(r, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := NewPassword([]byte("Correct-Horse-9"))
	_, err = Open(p, ct, 10)
	if !errors.Is(err, ErrWeakScrypt) || !errors.Is(err, ErrDecrypt) {
		t.Fatalf("weak scrypt file: err = %v, want ErrWeakScrypt", err)
	}
}

func TestOpenLimit(t *testing.T) {
	k, _ := GenerateKey(KindDMK, X25519)
	ct, _ := Seal(k, bytes.Repeat([]byte("a"), 100))
	if _, err := Open(k, ct, 99); err == nil || !strings.Contains(err.Error(), "more than 99 bytes") {
		t.Fatalf("oversized plaintext: err = %v", err)
	}
	if _, err := Open(k, ct[:len(ct)-1], 1000); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("truncated file: err = %v", err)
	}
}

func TestFake(t *testing.T) {
	f := NewFake(KindAccount)
	if _, err := roundTrip(t, f, f); err != nil {
		t.Fatal(err)
	}
	f.Broken = true
	if _, err := roundTrip(t, f, f); err == nil {
		t.Fatal("broken fake opened a file")
	}
}
