//go:build windows

package fsio

import (
	"slices"
	"testing"

	"golang.org/x/sys/windows"
)

func testUserSID(t *testing.T) *windows.SID {
	t.Helper()
	sid, err := CurrentUserSID()
	if err != nil {
		t.Fatal(err)
	}
	return sid
}

// TestOthersAllowed checks the reading of DACLs on security descriptors
// built from SDDL: only access granted to someone other than the owner,
// the user, SYSTEM and Administrators counts.
func TestOthersAllowed(t *testing.T) {
	me := testUserSID(t).String()
	other := "S-1-5-21-1-2-3-1001"
	for _, tc := range []struct {
		sddl string
		want []string
	}{
		{"O:" + me + PrivateSDDL(testUserSID(t), false), nil},
		{"O:" + me + PrivateSDDL(testUserSID(t), true), nil},
		{"O:" + me + "D:(A;;FA;;;" + me + ")(A;;FR;;;WD)", []string{"S-1-1-0"}},
		{"O:" + me + "D:(A;;FA;;;" + me + ")(A;;FR;;;BU)(A;;FA;;;AU)", []string{"S-1-5-32-545", "S-1-5-11"}},
		{"O:" + me + "D:(A;;FA;;;" + me + ")(A;;0x1;;;" + other + ")", []string{other}},
		// The owner is let in, as the file's uid is on Unix.
		{"O:" + other + "D:(A;;FA;;;" + other + ")(A;;FA;;;SY)", nil},
		// Deny entries and entries for what is created inside grant nothing.
		{"O:" + me + "D:(D;;FA;;;WD)(A;OICIIO;FA;;;CO)(A;;FA;;;" + me + ")", nil},
		// An empty DACL lets no one in.
		{"O:" + me + "D:", nil},
	} {
		sd, err := windows.SecurityDescriptorFromString(tc.sddl)
		if err != nil {
			t.Fatalf("%s: %v", tc.sddl, err)
		}
		got, err := OthersAllowed(sd)
		if err != nil {
			t.Fatalf("%s: %v", tc.sddl, err)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: others %q, want %q", tc.sddl, got, tc.want)
		}
	}
	// A NULL DACL, or none, lets everyone in. (Wine's SDDL parser does not
	// make one from "D:NO_ACCESS_CONTROL": it is built here.)
	for _, present := range []bool{true, false} {
		sd, err := windows.NewSecurityDescriptor()
		if err != nil {
			t.Fatal(err)
		}
		if err := sd.SetOwner(testUserSID(t), false); err != nil {
			t.Fatal(err)
		}
		if err := sd.SetDACL(nil, present, false); err != nil {
			t.Fatal(err)
		}
		got, err := OthersAllowed(sd)
		if err != nil || !slices.Equal(got, []string{"everyone (it has no DACL)"}) {
			t.Errorf("NULL DACL (present %v): others %q, %v", present, got, err)
		}
	}
}
