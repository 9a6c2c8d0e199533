//go:build windows

package keystore

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/sys/windows"
)

// A keystore owned by another account is refused on Windows as on Unix.
// Wine reports every file as owned by the account running it, so the
// refusal is tested through dirOwner, the one place the owner is read.

func sid(t *testing.T, s string) *windows.SID {
	t.Helper()
	v, err := windows.StringToSid(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestOwnerAccepted(t *testing.T) {
	user := sid(t, "S-1-5-21-1-2-3-1001")
	other := sid(t, "S-1-5-21-1-2-3-1002")
	admins := sid(t, "S-1-5-32-544")
	for _, c := range []struct {
		name                string
		owner, defaultOwner *windows.SID
		want                bool
	}{
		{"the account", user, user, true},
		{"an elevated administrator's Administrators group", admins, admins, true},
		{"the account, elevated", user, admins, true},
		{"Administrators, not elevated", admins, user, false},
		{"another account", other, user, false},
		{"another account, elevated", other, admins, false},
		{"no owner", nil, user, false},
	} {
		if got := ownerAccepted(c.owner, user, c.defaultOwner); got != c.want {
			t.Errorf("%s: accepted %v, want %v", c.name, got, c.want)
		}
	}
}

func TestOpenOwnKeystoreOnWindows(t *testing.T) {
	d := testDirs(t)
	initTestKeystore(t, d)
	owner, err := dirOwner(d.Keystore)
	if err != nil {
		t.Fatal(err)
	}
	user := testUserSID(t)
	def, err := tokenDefaultOwner()
	if err != nil {
		t.Fatal(err)
	}
	if !owner.Equals(user) && !owner.Equals(def) {
		t.Fatalf("a keystore keytree created is owned by %s, not by %s or %s", owner, user, def)
	}
}

func TestOtherOwnerRefusedOnWindows(t *testing.T) {
	d := testDirs(t)
	initTestKeystore(t, d)
	other := sid(t, "S-1-5-21-1-2-3-4242")
	saved := dirOwner
	dirOwner = func(string) (*windows.SID, error) { return other, nil }
	t.Cleanup(func() { dirOwner = saved })

	_, err := Open(Options{Dirs: d})
	if !errors.Is(err, ErrPermissions) || !strings.Contains(err.Error(), "S-1-5-21-1-2-3-4242") {
		t.Fatalf("open of a keystore owned by another account: %v", err)
	}
	var ke *Error
	if !errors.As(err, &ke) || ke.Remedy.Kind != RemedyAllowOtherOwner {
		t.Fatalf("no remedy to allow it: %#v", err)
	}
	ks, err := Open(Options{Dirs: d, AllowOtherOwner: true})
	if err != nil {
		t.Fatalf("open allowed explicitly: %v", err)
	}
	if _, err := ks.Status(); err != nil {
		t.Fatalf("status allowed explicitly: %v", err)
	}
}
