package protect

import (
	"bytes"
	"errors"
	"strconv"
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

// withWorkFactor rewrites the work factor in an age file's scrypt stanza.
func withWorkFactor(ct []byte, logN string) []byte {
	lines := strings.SplitN(string(ct), "\n", 3)
	f := strings.Fields(lines[1])
	f[3] = logN
	lines[1] = strings.Join(f, " ")
	return []byte(strings.Join(lines, "\n"))
}

func countScrypts(t *testing.T) *int {
	n := new(int)
	SetScryptHookForTesting(func(int) { *n++ })
	t.Cleanup(func() { SetScryptHookForTesting(nil) })
	return n
}

// TestScryptCeiling checks that a file asking for more than the ceiling is
// refused before scrypt runs, and that damage is not a wrong password.
func TestScryptCeiling(t *testing.T) {
	p, _ := NewPassword([]byte("Correct-Horse-9"))
	ct, err := Seal(p, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	runs := countScrypts(t)
	_, err = Open(p, withWorkFactor(ct, strconv.Itoa(scryptCeiling+1)), 10)
	if !errors.Is(err, ErrCostlyScrypt) || !errors.Is(err, ErrDecrypt) || *runs != 0 {
		t.Fatalf("file over the ceiling: err = %v after %d scrypts, want ErrCostlyScrypt before any", err, *runs)
	}
	x, _ := age.GenerateX25519Identity()
	notScrypt, _ := Seal(x.Recipient(), []byte("x"))
	if _, err := Open(p, notScrypt, 10); !errors.Is(err, ErrDamaged) {
		t.Fatalf("a file for an X25519 recipient: err = %v, want ErrDamaged", err)
	}
	wrong, _ := NewPassword([]byte("Correct-Horse-8"))
	if _, err := Open(wrong, ct, 10); !errors.Is(err, ErrDecrypt) || errors.Is(err, ErrDamaged) {
		t.Fatalf("wrong password: err = %v, want ErrDecrypt only", err)
	}
}

// TestPasswordRemembers checks that a Password runs scrypt once per file,
// within its limit, and not at all while held.
func TestPasswordRemembers(t *testing.T) {
	p, _ := NewPassword([]byte("Correct-Horse-9"))
	ct1, _ := Seal(p, []byte("one"))
	ct2, _ := Seal(p, []byte("two"))
	wrong, _ := NewPassword([]byte("Correct-Horse-8"))
	runs := countScrypts(t)
	for range 2 {
		if _, err := Open(wrong, ct1, 10); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("wrong password: %v", err)
		}
	}
	if *runs != 1 || wrong.Spent() != 1<<scryptWrite {
		t.Fatalf("a wrong password tried twice on one file: %d scrypts, %d spent", *runs, wrong.Spent())
	}
	wrong.Hold(true)
	if _, err := Open(wrong, ct1, 10); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("known file while held: %v", err)
	}
	if _, err := Open(wrong, ct2, 10); !errors.Is(err, ErrScryptDeferred) || errors.Is(err, ErrDecrypt) {
		t.Fatalf("new file while held: %v", err)
	}
	wrong.Hold(false)
	wrong.LimitScrypt(wrong.Spent())
	if _, err := Open(wrong, ct2, 10); !errors.Is(err, ErrScryptBudget) || *runs != 1 {
		t.Fatalf("over the limit: %v after %d scrypts", err, *runs)
	}
}

// TestPasswordTag checks that a tag depends on the password, the context
// and the id, and that its scrypt runs once per context.
func TestPasswordTag(t *testing.T) {
	p, _ := NewPassword([]byte("Correct-Horse-9"))
	q, _ := NewPassword([]byte("Correct-Horse-9"))
	other, _ := NewPassword([]byte("Correct-Horse-8"))
	runs := countScrypts(t)
	a, _ := p.Tag("thumb", scryptWrite, "id1")
	b, _ := p.Tag("thumb", scryptWrite, "id2")
	if *runs != 1 || !p.KnowsTag("thumb", scryptWrite) || p.KnowsTag("other", scryptWrite) {
		t.Fatalf("%d scrypts for two tags of one context", *runs)
	}
	again, _ := q.Tag("thumb", scryptWrite, "id1")
	c, _ := p.Tag("other", scryptWrite, "id1")
	d, _ := other.Tag("thumb", scryptWrite, "id1")
	if a != again || len(a) != 2*TagSize || a == b || a == c || a == d {
		t.Fatalf("tags %s %s %s %s %s", a, again, b, c, d)
	}
	if _, err := p.Tag("thumb", scryptCeiling+1, "id1"); !errors.Is(err, ErrCostlyScrypt) {
		t.Fatalf("tag over the ceiling: %v", err)
	}
}
