package commands

import "testing"

func TestParseCredential(t *testing.T) {
	testParse(t, (*env).credentialSetCommand, []parseCase[credentialSetOptions]{
		{args: "credential set backup-db --identity svc_backup", want: &credentialSetOptions{Name: "backup-db", Identity: "svc_backup"}},
		// Flags before or after the name, and a name that starts with a dash after --.
		{args: "credential set --identity web01 --file server.key --allow-empty tls-key",
			want: &credentialSetOptions{Name: "tls-key", Identity: "web01", File: "server.key", AllowEmpty: true}},
		{args: "credential set --identity x -- -dash", want: &credentialSetOptions{Name: "-dash", Identity: "x"}},
		// An empty identity is given: the keystore refuses it.
		{args: "credential set c --identity ''", want: &credentialSetOptions{Name: "c"}},
		{args: "credential set c", err: ": credential set needs --identity"},
		{args: "credential set --identity x", err: ": credential set needs a credential NAME"},
		{args: "credential set a b", err: ": credential set takes a single argument, a credential NAME (got 2)"},
		{args: "credential set c --identity x --password hunter2", err: ": keytree never takes a password or secret as a command-line argument: there is no --password"},
	})
	testParse(t, (*env).credentialGetCommand, []parseCase[credentialGetOptions]{
		{args: "credential get backup-db", want: &credentialGetOptions{Name: "backup-db"}},
		{args: "credential get --json backup-db", want: &credentialGetOptions{Name: "backup-db", JSON: true}},
		{args: "credential get", err: ": credential get needs a credential NAME"},
	})
	testParse(t, (*env).credentialListCommand, []parseCase[credentialListOptions]{
		{args: "credential list", want: &credentialListOptions{}},
		{args: "credential list --json", want: &credentialListOptions{JSON: true}},
		{args: "credential list backup-db", err: ": credential list takes no arguments (got 1)"},
	})
	testParse(t, (*env).credentialRmCommand, []parseCase[credentialRmOptions]{
		{args: "credential rm backup-db", want: &credentialRmOptions{Name: "backup-db"}},
		{args: "credential rm -y backup-db", want: &credentialRmOptions{Name: "backup-db", Yes: true}},
		// The name is checked before anything is opened or asked.
		{args: "credential rm ../x", err: `: invalid credential name "../x"`},
		{args: "credential rm", err: ": credential rm needs a credential NAME"},
	})
}
