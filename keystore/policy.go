package keystore

import (
	"fmt"
	"math"
	"os/user"
	"strings"
	"unicode/utf8"

	"github.com/keytree-dev/keytree/keystore/internal/zxcvbn"
)

// Password policy (P14). SQL Server applies the Windows policy to backup and
// master key passwords and reports it with messages 15116-15118; keytree
// keeps those numbers and the rule about the account's name, but judges
// strength with zxcvbn, an estimator of how many guesses a password falls
// to. Hand-written rules (three of four character classes, a list of
// well-known passwords) refuse `openssl rand -hex 32` and four random words
// while they let `Aaaaaaa1` through; an estimator that knows dictionaries,
// keyboard walks, dates, repeats and l33t substitutions gets both right.
const (
	minPasswordLength = 8
	maxPasswordLength = 128

	// minGuessesLog10: at least 10^10 guesses, zxcvbn's score 4, "very
	// unguessable". A backup file or a password encryption is attacked
	// offline, at the cost of one scrypt per guess, which is zxcvbn's
	// "offline, slow hash" case; score 3 (10^8) lets keyboard walks such as
	// `!QAZ2wsx#EDC` through.
	minGuessesLog10 = 10
)

// CheckPassword applies the password policy to a new password. related are
// words the password should not be built from besides the account's name
// and "keytree": the database's name, for a master key's password.
func CheckPassword(password []byte, related ...string) error {
	return checkPassword(password, accountName(), related...)
}

func checkPassword(password []byte, account string, related ...string) error {
	pw := string(password)
	n := utf8.RuneCountInString(pw)
	if n < minPasswordLength {
		return policyError(MsgPasswordShort, "", "too short", "use at least 8 characters")
	}
	if n > maxPasswordLength {
		return policyError(MsgPasswordLong, "", "too long", "use at most 128 characters")
	}
	if len(account) >= 3 && strings.Contains(strings.ToLower(pw), strings.ToLower(account)) {
		return policyError(MsgPasswordComplex, "password contains the account's name", "not complex enough", "it contains the account's name")
	}
	if !utf8.ValidString(pw) {
		// zxcvbn judges text; bytes that are not UTF-8 would get score 0
		// without a word of why.
		return policyError(MsgPasswordComplex, "password too easy to guess", "not complex enough",
			"it is not valid UTF-8 text, which the strength estimate cannot judge")
	}
	inputs := []string{"keytree"}
	if account != "" {
		inputs = append(inputs, account)
	}
	for _, r := range related {
		if r != "" {
			inputs = append(inputs, r)
		}
	}
	res := zxcvbn.PasswordStrength(pw, inputs)
	if res.Guesses < math.Pow10(minGuessesLog10) {
		return policyError(MsgPasswordComplex, "password too easy to guess", "not complex enough",
			fmt.Sprintf("a strength estimate (zxcvbn) puts it within about 10^%d guesses; keytree asks for at least 10^%d", guessesLog10(res.Guesses), minGuessesLog10))
	}
	return nil
}

// guessesLog10 rounds the estimate down to a power of ten: the order of
// magnitude is all the user needs, and says less about the password.
func guessesLog10(guesses float64) int {
	if guesses < 1 {
		return 0
	}
	return int(math.Floor(math.Log10(guesses)))
}

func policyError(number int, plain, why, detail string) error {
	return &Error{
		Number: number,
		Plain:  plain,
		Text:   "Password validation failed. The password does not meet the operating system policy requirements because it is " + why + ".",
		Detail: []string{detail},
		Remedy: Remedy{Kind: RemedyPasswordPolicy},
		Kind:   ErrRefused,
	}
}

func accountName() string {
	u, err := user.Current()
	if err != nil {
		return ""
	}
	name := u.Username
	if i := strings.LastIndexByte(name, '\\'); i >= 0 {
		name = name[i+1:]
	}
	return name
}
