package commands

import "testing"

// TestAgeVersion: doctor reads age --version and compares it with the
// release that recovery needs.
func TestAgeVersion(t *testing.T) {
	for in, want := range map[string][3]int{
		"v1.3.1":           {1, 3, 1},
		"1.2.0\n":          {1, 2, 0},
		"v1.3.0-rc.1":      {1, 3, 0},
		"v1.10.2+dirty":    {1, 10, 2},
		"v1.1.1 (windows)": {1, 1, 1},
	} {
		if got, ok := parseAgeVersion(in); !ok || got != want {
			t.Errorf("%q: got %v, %v; want %v", in, got, ok, want)
		}
	}
	for _, in := range []string{"(devel)", "", "v1.3", "v1.x.0", "age 1.2.3", "v-1.2.3"} {
		if got, ok := parseAgeVersion(in); ok {
			t.Errorf("%q: got %v, want not a version", in, got)
		}
	}
	if !versionLess([3]int{1, 2, 9}, [3]int{1, 3, 0}) || versionLess([3]int{1, 3, 0}, [3]int{1, 3, 0}) || versionLess([3]int{2, 0, 0}, [3]int{1, 9, 9}) {
		t.Error("versionLess")
	}
}
