package commands

import (
	"testing"

	"github.com/keytree-dev/keytree/protect"
)

func TestParseSMKBackupRestore(t *testing.T) {
	testParse(t, (*env).smkBackupCommand, []parseCase[smkBackupOptions]{
		{args: "smk backup --file smk.age", want: &smkBackupOptions{File: "smk.age"}},
		{args: "smk backup --file smk.age --password-file - --no-password-policy",
			want: &smkBackupOptions{File: "smk.age", PasswordFile: "-", NoPasswordPolicy: true}},
		{args: "smk backup --password-file pw.txt --file=smk.age", want: &smkBackupOptions{File: "smk.age", PasswordFile: "pw.txt"}},
		{args: "smk backup", err: ": smk backup needs --file"},
		{args: "smk backup --file -", err: ": smk backup cannot use standard input or output: --file - is for values"},
		{args: "smk backup --file .", err: ": the file given to --file is a directory"},
		{args: "smk backup --file smk.age extra", err: ": smk backup takes no arguments (got 1)"},
		{args: "smk backup --force --file smk.age", err: ": flag provided but not defined: -force"},
	})
	testParse(t, (*env).smkRestoreCommand, []parseCase[smkRestoreOptions]{
		{args: "smk restore --file smk.age", want: &smkRestoreOptions{File: "smk.age"}},
		{args: "smk restore --file smk.age --password-file pw.txt --force",
			want: &smkRestoreOptions{File: "smk.age", PasswordFile: "pw.txt", Force: true}},
		{args: "smk restore --force", err: ": smk restore needs --file"},
		{args: "smk restore --file -", err: ": smk restore cannot use standard input or output"},
		{args: "smk restore --file smk.age --no-password-policy", err: ": flag provided but not defined: -no-password-policy"},
	})
}

func TestParseSMKRegenerateRecover(t *testing.T) {
	testParse(t, (*env).smkRegenerateCommand, []parseCase[smkRegenerateOptions]{
		// Without --algorithm, the current key's.
		{args: "smk regenerate", want: &smkRegenerateOptions{}},
		{args: "smk regenerate --force --algorithm mlkem768x25519", want: &smkRegenerateOptions{Force: true, Algorithm: protect.MLKEM768X25519}},
		{args: "smk regenerate --algorithm x25519", want: &smkRegenerateOptions{Algorithm: protect.X25519}},
		{args: "smk regenerate --algorithm ''", err: `: unknown algorithm ""`},
		// --algorithm is checked before the arguments.
		{args: "smk regenerate now --algorithm dsa", err: `: unknown algorithm "dsa"`},
		{args: "smk regenerate now", err: ": smk regenerate takes no arguments (got 1)"},
	})
	testParse(t, (*env).smkRecoverCommand, []parseCase[smkRecoverOptions]{
		{args: "smk recover", want: &smkRecoverOptions{}},
		{args: "smk recover --file old.age", want: &smkRecoverOptions{File: "old.age"}},
		{args: "smk recover --file old.age --password-file -", want: &smkRecoverOptions{File: "old.age", PasswordFile: "-"}},
		{args: "smk recover --password-file pw.txt", err: ": --password-file is the password of a backup: give --file too"},
		{args: "smk recover --password-file ''", err: ": --password-file is the password of a backup: give --file too"},
		{args: "smk recover --file -", err: ": smk recover cannot use standard input or output"},
		{args: "smk recover --file .", err: ": the file given to --file is a directory"},
		{args: "smk recover x --file -", err: ": smk recover cannot use standard input or output"},
		{args: "smk recover x", err: ": smk recover takes no arguments (got 1)"},
	})
}

func TestParseSMKAlterVerifyMachineProtection(t *testing.T) {
	testParse(t, (*env).smkAlterCommand, []parseCase[smkAlterOptions]{
		{args: "smk alter --old-account-dir old", want: &smkAlterOptions{OldAccountDir: "old"}},
		{args: "smk alter --new-account-dir new", want: &smkAlterOptions{NewAccountDir: "new"}},
		{args: "smk alter", err: ": smk alter needs exactly one of --old-account-dir and --new-account-dir"},
		{args: "smk alter --old-account-dir old --new-account-dir new", err: ": smk alter needs exactly one of"},
		{args: "smk alter --old-account-dir ''", err: ": smk alter needs exactly one of"},
		{args: "smk alter x --old-account-dir old", err: ": smk alter takes no arguments (got 1)"},
	})
	testParse(t, (*env).smkVerifyCommand, []parseCase[smkVerifyOptions]{
		{args: "smk verify", want: &smkVerifyOptions{}},
		{args: "smk verify --json", want: &smkVerifyOptions{JSON: true}},
		{args: "smk verify all", err: ": smk verify takes no arguments (got 1)"},
	})
	testParse(t, (*env).smkMachineProtectionCommand, []parseCase[smkMachineProtectionOptions]{
		{args: "smk machine-protection on", want: &smkMachineProtectionOptions{On: true}},
		{args: "smk machine-protection off", want: &smkMachineProtectionOptions{On: false}},
		{args: "smk machine-protection", err: ": smk machine-protection needs off or on"},
		{args: "smk machine-protection on off", err: ": smk machine-protection takes a single argument, off or on (got 2)"},
		{args: "smk machine-protection ON", err: `: machine-protection takes off or on, not "ON"`},
		{args: "smk machine-protection -- -on", err: `: machine-protection takes off or on, not "-on"`},
	})
}
