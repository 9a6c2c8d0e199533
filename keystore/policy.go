package keystore

import (
	"os/user"
	"regexp"
	"strings"
	"sync"
	"unicode"
)

// Password policy (P14), as SQL Server applies the Windows policy to backup
// and master key passwords: at least 8 characters, at most 128, three of four
// character classes, not the account's name, not a well-known password.
const (
	minPasswordLength = 8
	maxPasswordLength = 128
)

// CheckPassword applies the password policy to a new password.
func CheckPassword(password []byte) error {
	return checkPassword(password, accountName())
}

func checkPassword(password []byte, account string) error {
	pw := string(password)
	n := len([]rune(pw))
	if n < minPasswordLength {
		return policyError(MsgPasswordShort, "too short", "use at least 8 characters")
	}
	if n > maxPasswordLength {
		return policyError(MsgPasswordLong, "too long", "use at most 128 characters")
	}
	var upper, lower, digit, other bool
	for _, r := range pw {
		switch {
		case unicode.IsUpper(r):
			upper = true
		case unicode.IsLower(r):
			lower = true
		case unicode.IsDigit(r):
			digit = true
		default:
			other = true
		}
	}
	classes := 0
	for _, b := range []bool{upper, lower, digit, other} {
		if b {
			classes++
		}
	}
	if classes < 3 {
		return policyError(MsgPasswordComplex, "not complex enough", "use three of: upper-case letters, lower-case letters, digits, symbols")
	}
	low := strings.ToLower(pw)
	if account != "" && len(account) >= 3 && strings.Contains(low, strings.ToLower(account)) {
		return policyError(MsgPasswordComplex, "not complex enough", "it contains the account's name")
	}
	if wellKnown(low) {
		return policyError(MsgPasswordComplex, "not complex enough", "it is a well-known password")
	}
	return nil
}

func policyError(number int, why, detail string) error {
	return &Error{
		Number: number,
		Text:   "Password validation failed. The password does not meet the operating system policy requirements because it is " + why + ".",
		Detail: []string{detail},
		Hint:   "choose a stronger password, or pass --no-password-policy to accept this one",
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

// commonPasswords are passwords that meet the complexity rules and top the
// lists of leaked passwords; seasonal passwords are caught by a pattern. Both
// are built on first use, not at start-up: most commands never check a
// password.
var commonPasswords = sync.OnceValue(func() map[string]bool {
	m := map[string]bool{}
	for _, p := range strings.Fields(`password1 password1! password123 password123! p@ssw0rd p@ssw0rd1 p@ssword1 p@ssword123
		passw0rd passw0rd! passw0rd1 pa$$w0rd pa$$word1 welcome1 welcome1! welcome123 welcome@123 welcome2024!
		qwerty123 qwerty123! qwerty1! qwe123!@# qwerty@123 admin123 admin123! admin@123 administrator1
		abc123!@# abcd1234! abc@1234 letmein1 letmein1! letmein123 changeme1 changeme1! changeme123
		iloveyou1 iloveyou1! monkey123! dragon123! football1! baseball1! trustno1! sunshine1! princess1!
		master123! shadow123! superman1! batman123! 1qaz2wsx! 1qaz@wsx zaq12wsx! zaq1@wsx !qaz2wsx
		test1234! test@123 testing123! secret123! default1! guest1234! login123! hello123! hello@123
		company1! company123! temp1234! temppass1! newpass1! mypassword1 password@1 password#1 password!1`) {
		m[p] = true
	}
	return m
})

var seasonal = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^(spring|summer|autumn|fall|winter|january|february|march|april|may|june|july|august|september|october|november|december)[0-9]{2,4}[!@#$.?*]*$`)
})

func wellKnown(lower string) bool {
	return commonPasswords()[lower] || seasonal().MatchString(lower)
}
