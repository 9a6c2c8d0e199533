package commands

import (
	"slices"
	"strings"
	"testing"
)

// TestPermuteArgs: permuteArgs puts global flags first, then the command
// path, the command's flags with their values, and "--" before the
// positional arguments, which keep their order; what it does not know it
// leaves for urfave/cli to report.
func TestPermuteArgs(t *testing.T) {
	app := (&env{}).newApp()
	for _, tc := range []struct{ in, want string }{
		{"keytree", "keytree"},
		{"keytree status", "keytree status"},
		{"keytree --keystore K status", "keytree --keystore K status"},
		// Flags after positional arguments.
		{"keytree credential set NAME --identity ID", "keytree credential set --identity ID -- NAME"},
		{"keytree credential set --identity ID NAME", "keytree credential set --identity ID -- NAME"},
		{"keytree credential get NAME --json", "keytree credential get --json -- NAME"},
		// Global flags given after the command move to the front, in order.
		{"keytree credential list --keystore K --json --machine-dir=M", "keytree --keystore K --machine-dir=M credential list --json"},
		{"keytree smk --allow-other-owner verify", "keytree --allow-other-owner smk verify"},
		// A flag's value is never a command or an argument, even "-" or
		// one that starts with a dash.
		{"keytree smk backup --file smk", "keytree smk backup --file smk"},
		{"keytree keystore backup --file -", "keytree keystore backup --file -"},
		{"keytree credential set --identity -x NAME", "keytree credential set --identity -x -- NAME"},
		{"keytree smk backup --file=x.age --password-file -", "keytree smk backup --file=x.age --password-file -"},
		// After "--" every word is an argument; positional arguments keep
		// their order.
		{"keytree credential set --identity x -- -dash", "keytree credential set --identity x -- -dash"},
		{"keytree secret list a --json b", "keytree secret list --json -- a b"},
		{"keytree credential get -- --json", "keytree credential get -- --json"},
		// Once an argument is given, a command's name is an argument.
		{"keytree credential get list", "keytree credential get -- list"},
		// An unknown flag stays, and takes no value.
		{"keytree credential get NAME --nope X", "keytree credential get --nope -- NAME X"},
		{"keytree --nope status", "keytree --nope status"},
		// An unknown verb is an argument of its group, which reports it.
		{"keytree smk bakcup --file F", "keytree smk --file -- bakcup F"},
		// help: what follows names the command to describe.
		{"keytree help smk backup", "keytree help -- smk backup"},
		{"keytree smk help backup", "keytree smk help -- backup"},
		{"keytree smk backup --help", "keytree smk backup --help"},
		{"keytree smk backup -h --file f", "keytree smk backup -h --file f"},
		// A global flag's value at the top is not a command.
		{"keytree --keystore secret --lock-timeout 5 status", "keytree --keystore secret --lock-timeout 5 status"},
	} {
		got := permuteArgs(app, strings.Fields(tc.in))
		if want := strings.Fields(tc.want); !slices.Equal(got, want) {
			t.Errorf("%s:\n got %q\nwant %q", tc.in, got, want)
		}
	}
}
