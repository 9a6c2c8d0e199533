package commands

import (
	"testing"
	"time"
)

// TestParseLockTimeout: --lock-timeout and KEYTREE_LOCK_TIMEOUT take plain
// seconds as well as Go durations, and refuse what is neither.
func TestParseLockTimeout(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"":      0,
		"0":     0,
		"30":    30 * time.Second,
		"2.5":   2500 * time.Millisecond,
		"10s":   10 * time.Second,
		"500ms": 500 * time.Millisecond,
		"2m":    2 * time.Minute,
		"1h30m": 90 * time.Minute,
	} {
		if got, err := parseLockTimeout(in); err != nil || got != want {
			t.Errorf("%q: got %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"-5", "-1s", "soon", "1e3", "0x10", "inf", "NaN", "1.2.3", ".", "30 s", "99999999999999999999"} {
		// A usage error is exit status 2 (report).
		if got, err := parseLockTimeout(in); err == nil {
			t.Errorf("%q: got %v, want an error", in, got)
		} else if _, ok := err.(*usageError); !ok {
			t.Errorf("%q: %T %v, want a usage error", in, err, err)
		}
	}
}
