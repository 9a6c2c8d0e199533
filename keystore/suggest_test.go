package keystore

import "testing"

func TestNearestName(t *testing.T) {
	names := []string{"payroll", "hr", "backup-db", "app", "Billing"}
	for _, tc := range []struct{ name, want string }{
		{"payrol", "payroll"},   // one deleted
		{"payrolll", "payroll"}, // one added
		{"pyaroll", "payroll"},  // two swapped
		{"backup-bd", "backup-db"},
		{"billing", "Billing"}, // case only
		{"ap", "app"},          // a short name: one edit
		{"zzz", ""},
		{"payroll", ""}, // the name itself is not a suggestion
		{"h", "hr"},
		{"xy", ""}, // two edits in a short name is another name
		{"totally-different", ""},
	} {
		if got := NearestName(tc.name, names); got != tc.want {
			t.Errorf("NearestName(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestNameSuggestion(t *testing.T) {
	for _, tc := range []struct {
		name  string
		names []string
		want  string
	}{
		{"x", nil, "there are no credentials"},
		{"payrol", []string{"payroll", "hr"}, "did you mean 'payroll'?"},
		{"zzz", []string{"b", "a", "c"}, "the credentials are: 'a', 'b', 'c'"},
		{"zzz", []string{"a1", "a2", "a3", "a4", "a5", "a6"}, ""},
	} {
		if got := nameSuggestion(tc.name, tc.names, "credentials"); got != tc.want {
			t.Errorf("nameSuggestion(%q, %q) = %q, want %q", tc.name, tc.names, got, tc.want)
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"a", "", 1}, {"kitten", "sitting", 3}, {"payroll", "payrol", 1}, {"é", "e", 1}, {"abc", "abc", 0},
		{"gte", "get", 1}, {"bakcup", "backup", 1}, {"ca", "abc", 3},
	} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
