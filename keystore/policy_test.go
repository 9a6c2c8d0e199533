package keystore

import (
	"errors"
	"strings"
	"testing"
)

type passwordCase struct {
	name     string
	password string
	account  string
	related  []string
	number   int    // 0: accepted
	detail   string // part of the detail line, for a refusal
}

// passwordCases makes a case for each name and password of pairs, which
// alternate; each is refused with number and detail (0 and "": accepted).
func passwordCases(number int, detail string, pairs ...string) []passwordCase {
	var cases []passwordCase
	for i := 0; i < len(pairs); i += 2 {
		cases = append(cases, passwordCase{name: pairs[i], password: pairs[i+1], number: number, detail: detail})
	}
	return cases
}

func TestCheckPassword(t *testing.T) {
	// Generated and passphrase passwords pass, whatever their classes.
	cases := passwordCases(0, "",
		"openssl rand -hex 32", "4f9c2a7e1b3d5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8",
		"openssl rand -hex 16", "9b2e47d0c3a1f58e6b7d2c9a0e4f1b3d",
		"openssl rand -base64 24", "q3Zk8Vw1HhP0xYt7Lr2mNc5sJd9bFg6a",
		"four random words", "plank orbit velvet cactus",
		"four short random words", "dove sled mix crab",
		"four words with dashes", "acid-bath-zone-yolk",
		"the xkcd passphrase", "correct horse battery staple",
		"random mixed", "wPq3zT8xL0vB5nM1cR4y",
		"non-ASCII passphrase", "tönnchen brücke käfer wolke")
	// Trivial ones fail, though some pass the old class rules; and the
	// user's own words count for nothing: keytree here, the account and
	// the database below.
	cases = append(cases, passwordCases(MsgPasswordComplex, "guesses",
		"Aaaaaaa1", "Aaaaaaa1",
		"Password123!", "Password123!",
		"P@ssw0rd", "P@ssw0rd",
		"Welcome1", "Welcome1",
		"season and year", "Summer2024!",
		"keyboard row", "qwertyuiop",
		"keyboard walk", "1qaz2wsx3edc",
		"shifted keyboard walk", "!QAZ2wsx#EDC",
		"keyboard walk with digits", "Qwerty!2345",
		"repeat", "abcabcabcabc",
		"sequence", "abcdefgh12345678",
		"eight random characters", "x7Kp9mQ2",
		"keytree and digits", "keytree-Passw0rd1")...)
	for _, tc := range append(cases, []passwordCase{
		{name: "the scenario tests' password", password: "Str0ng!Passw0rd-one", related: []string{"app"}},
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
	}...) {
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
			if ke.Remedy.Kind != RemedyPasswordPolicy {
				t.Errorf("remedy = %+v", ke.Remedy)
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
