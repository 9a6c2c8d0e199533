package commands

import "testing"

func TestParseSecret(t *testing.T) {
	open := "open.txt"
	testParse(t, (*env).secretSetCommand, []parseCase[secretSetOptions]{
		{args: "secret set payroll/api-token", want: &secretSetOptions{DB: "payroll", Name: "api-token"}},
		{args: "secret set payroll/key --file key.pem --open-password-file open.txt --allow-empty",
			want: &secretSetOptions{DB: "payroll", Name: "key", File: "key.pem", OpenPasswordFile: &open, AllowEmpty: true}},
		{args: "secret set --file - payroll/key", want: &secretSetOptions{DB: "payroll", Name: "key", File: "-"}},
		{args: "secret set", err: ": secret set needs a secret DB/NAME"},
		{args: "secret set payroll/a payroll/b", err: ": secret set takes a single argument, a secret DB/NAME (got 2)"},
		{args: "secret set payroll", err: `: invalid secret path "payroll": want DB/NAME`},
		{args: "secret set payroll/.key", err: `: invalid secret name ".key"`},
		{args: "secret set payroll/key --value hunter2", err: ": keytree never takes a password or secret as a command-line argument: there is no --value"},
	})
	testParse(t, (*env).secretGetCommand, []parseCase[secretGetOptions]{
		{args: "secret get payroll/api-token", want: &secretGetOptions{DB: "payroll", Name: "api-token"}},
		{args: "secret get hr/ssh-key --open-password-file open.txt", want: &secretGetOptions{DB: "hr", Name: "ssh-key", OpenPasswordFile: &open}},
		{args: "secret get", err: ": secret get needs a secret DB/NAME"},
		{args: "secret get hr/ssh-key --json", err: ": flag provided but not defined: -json"},
	})
	testParse(t, (*env).secretListCommand, []parseCase[secretListOptions]{
		{args: "secret list", want: &secretListOptions{}},
		{args: "secret list payroll --json", want: &secretListOptions{DB: "payroll", JSON: true}},
		{args: "secret list payroll hr", err: ": secret list takes at most one database name"},
	})
	testParse(t, (*env).secretRmCommand, []parseCase[secretRmOptions]{
		{args: "secret rm payroll/api-token", want: &secretRmOptions{DB: "payroll", Name: "api-token"}},
		{args: "secret rm payroll/api-token -y", want: &secretRmOptions{DB: "payroll", Name: "api-token", Yes: true}},
		{args: "secret rm", err: ": secret rm needs a secret DB/NAME"},
	})
}
