package keystore

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckPassword(t *testing.T) {
	for _, tc := range []struct {
		name     string
		password string
		account  string
		related  []string
		number   int    // 0: accepted
		detail   string // part of the detail line, for a refusal
	}{
		// Generated and passphrase passwords pass, whatever their classes.
		{name: "openssl rand -hex 32", password: "4f9c2a7e1b3d5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8"},
		{name: "openssl rand -hex 16", password: "9b2e47d0c3a1f58e6b7d2c9a0e4f1b3d"},
		{name: "openssl rand -base64 24", password: "q3Zk8Vw1HhP0xYt7Lr2mNc5sJd9bFg6a"},
		{name: "four random words", password: "plank orbit velvet cactus"},
		{name: "four short random words", password: "dove sled mix crab"},
		{name: "four words with dashes", password: "acid-bath-zone-yolk"},
		{name: "the xkcd passphrase", password: "correct horse battery staple"},
		{name: "random mixed", password: "wPq3zT8xL0vB5nM1cR4y"},
		{name: "non-ASCII passphrase", password: "tönnchen brücke käfer wolke"},
		{name: "the scenario tests' password", password: "Str0ng!Passw0rd-one", related: []string{"app"}},

		// Trivial ones fail, though some pass the old class rules.
		{name: "Aaaaaaa1", password: "Aaaaaaa1", number: MsgPasswordComplex, detail: "guesses"},
		{name: "Password123!", password: "Password123!", number: MsgPasswordComplex, detail: "guesses"},
		{name: "P@ssw0rd", password: "P@ssw0rd", number: MsgPasswordComplex, detail: "guesses"},
		{name: "Welcome1", password: "Welcome1", number: MsgPasswordComplex, detail: "guesses"},
		{name: "season and year", password: "Summer2024!", number: MsgPasswordComplex, detail: "guesses"},
		{name: "keyboard row", password: "qwertyuiop", number: MsgPasswordComplex, detail: "guesses"},
		{name: "keyboard walk", password: "1qaz2wsx3edc", number: MsgPasswordComplex, detail: "guesses"},
		{name: "shifted keyboard walk", password: "!QAZ2wsx#EDC", number: MsgPasswordComplex, detail: "guesses"},
		{name: "keyboard walk with digits", password: "Qwerty!2345", number: MsgPasswordComplex, detail: "guesses"},
		{name: "repeat", password: "abcabcabcabc", number: MsgPasswordComplex, detail: "guesses"},
		{name: "sequence", password: "abcdefgh12345678", number: MsgPasswordComplex, detail: "guesses"},
		{name: "eight random characters", password: "x7Kp9mQ2", number: MsgPasswordComplex, detail: "guesses"},

		// The user's own words count for nothing: the account, the
		// database, keytree.
		{name: "keytree and digits", password: "keytree-Passw0rd1", number: MsgPasswordComplex, detail: "guesses"},
		{name: "database name", password: "payrollpayroll2024", related: []string{"payroll"}, number: MsgPasswordComplex, detail: "guesses"},
		{name: "database name is ordinary otherwise", password: "zorbulax-quendi-4471", related: []string{"app"}},
		{name: "database name known", password: "zorbulax-quendi-4471", related: []string{"zorbulax-quendi"}, number: MsgPasswordComplex, detail: "guesses"},

		// The account name rule, whatever the strength.
		{name: "account name", password: "plank orbit alice velvet", account: "alice", number: MsgPasswordComplex, detail: "account's name"},
		{name: "account name any case", password: "plank orbit ALICE velvet", account: "alice", number: MsgPasswordComplex, detail: "account's name"},
		{name: "short account name ignored", password: "plank orbit velvet cactus", account: "an"},

		// Length.
		{name: "too short", password: "Ab1!xyz", number: MsgPasswordShort, detail: "at least 8"},
		{name: "counted in characters", password: "ßßßßßßß", number: MsgPasswordShort, detail: "at least 8"},
		{name: "too long", password: strings.Repeat("k7#Qw9!z", 17), number: MsgPasswordLong, detail: "at most 128"},
		{name: "128 characters", password: strings.Repeat("k7#Qw9!zR2", 12) + "Lp4$Xv8^"},

		{name: "not UTF-8", password: "\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\xf7\xf6", number: MsgPasswordComplex, detail: "UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkPassword([]byte(tc.password), tc.account, tc.related...)
			if tc.number == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var ke *Error
			if !errors.As(err, &ke) {
				t.Fatalf("err = %v, want error %d", err, tc.number)
			}
			if ke.Number != tc.number || !errors.Is(err, ErrRefused) {
				t.Fatalf("err = %v (kind %v), want error %d, refused", err, ke.Kind, tc.number)
			}
			if len(ke.Detail) != 1 || !strings.Contains(ke.Detail[0], tc.detail) {
				t.Errorf("detail = %q, want it to mention %q", ke.Detail, tc.detail)
			}
			if strings.Contains(err.Error(), tc.password) || strings.Contains(ke.Hint, tc.password) || strings.Contains(ke.Detail[0], tc.password) {
				t.Errorf("the error shows the password: %v", err)
			}
			if !strings.Contains(ke.Hint, "random words") || !strings.Contains(ke.Hint, "openssl rand -base64 24") || !strings.Contains(ke.Hint, "--no-password-policy") {
				t.Errorf("hint = %q", ke.Hint)
			}
		})
	}
}

// TestCheckPasswordPlainWords: a weak password's first line says so in plain
// words before SQL Server's text.
func TestCheckPasswordPlainWords(t *testing.T) {
	err := checkPassword([]byte("Aaaaaaa1"), "")
	want := "error 15118: password too easy to guess: Password validation failed. The password does not meet the operating system policy requirements because it is not complex enough."
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
	err = checkPassword([]byte("plank orbit alice velvet"), "alice")
	if err == nil || !strings.HasPrefix(err.Error(), "error 15118: password contains the account's name: ") {
		t.Fatalf("err = %v", err)
	}
}
