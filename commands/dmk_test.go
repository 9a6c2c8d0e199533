package commands

import (
	"testing"

	"github.com/keytree-dev/keytree/keystore"
	"github.com/keytree-dev/keytree/protect"
)

func TestParseDMKCreateDrop(t *testing.T) {
	testParse(t, (*env).dmkCreateCommand, []parseCase[dmkCreateOptions]{
		{args: "dmk create --db payroll", want: &dmkCreateOptions{DB: "payroll", Algorithm: protect.X25519}},
		{args: "dmk create --db hr --password-file - --no-smk-encryption --no-password-policy --algorithm mlkem768x25519",
			want: &dmkCreateOptions{DB: "hr", PasswordFile: "-", NoSMKEncryption: true, NoPasswordPolicy: true, Algorithm: protect.MLKEM768X25519}},
		{args: "dmk create", err: ": dmk create needs --db"},
		{args: "dmk create --db ''", err: ": dmk create needs --db"},
		{args: "dmk create --db a/b", err: `: invalid database name "a/b": it contains a path separator`},
		// --algorithm, then the arguments, then --db.
		{args: "dmk create x --algorithm rsa", err: `: unknown algorithm "rsa"`},
		{args: "dmk create x", err: ": dmk create takes no arguments (got 1)"},
	})
	testParse(t, (*env).dmkDropCommand, []parseCase[dmkDropOptions]{
		{args: "dmk drop --db scratch", want: &dmkDropOptions{DB: "scratch"}},
		{args: "dmk drop --db scratch -y", want: &dmkDropOptions{DB: "scratch", Yes: true}},
		{args: "dmk drop --yes --db=scratch", want: &dmkDropOptions{DB: "scratch", Yes: true}},
		{args: "dmk drop scratch", err: ": dmk drop takes no arguments (got 1)"},
		{args: "dmk drop", err: ": dmk drop needs --db"},
	})
}

func TestParseDMKEncryptions(t *testing.T) {
	pw, open := "new.txt", "open.txt"
	empty := ""
	testParse(t, (*env).dmkAddEncryptionCommand, []parseCase[dmkAddEncryptionOptions]{
		{args: "dmk add-encryption --db payroll --by smk", want: &dmkAddEncryptionOptions{DB: "payroll", By: keystore.BySMK}},
		{args: "dmk add-encryption --db payroll --by password --password-file new.txt --open-password-file open.txt --no-password-policy",
			want: &dmkAddEncryptionOptions{DB: "payroll", By: keystore.ByPassword, PasswordFile: &pw, OpenPasswordFile: &open, NoPasswordPolicy: true}},
		// Given empty is given: a prompt, where not given opens by the SMK.
		{args: "dmk add-encryption --db payroll --by smk --open-password-file ''",
			want: &dmkAddEncryptionOptions{DB: "payroll", By: keystore.BySMK, OpenPasswordFile: &empty}},
		// Refused only once the keystore is open, as it always was.
		{args: "dmk add-encryption --db payroll --by smk --password-file new.txt",
			want: &dmkAddEncryptionOptions{DB: "payroll", By: keystore.BySMK, PasswordFile: &pw}},
		{args: "dmk add-encryption --db payroll", err: ": dmk add-encryption needs --by smk or --by password"},
		{args: "dmk add-encryption --db payroll --by certificate", err: `: --by takes smk or password, not "certificate"`},
		{args: "dmk add-encryption x --by smk", err: ": dmk add-encryption takes no arguments (got 1)"},
		{args: "dmk add-encryption --by smk", err: ": dmk add-encryption needs --db"},
		{args: "dmk add-encryption --db payroll --by smk --yes", err: ": flag provided but not defined: -yes"},
	})
	testParse(t, (*env).dmkDropEncryptionCommand, []parseCase[dmkDropEncryptionOptions]{
		{args: "dmk drop-encryption --db payroll --by smk", want: &dmkDropEncryptionOptions{DB: "payroll", By: keystore.BySMK}},
		{args: "dmk drop-encryption --db payroll --by password --password-file old.txt -y",
			want: &dmkDropEncryptionOptions{DB: "payroll", By: keystore.ByPassword, PasswordFile: "old.txt", Yes: true}},
		{args: "dmk drop-encryption --db payroll --by ''", err: ": dmk drop-encryption needs --by smk or --by password"},
		{args: "dmk drop-encryption --by smk --db .hidden", err: `: invalid database name ".hidden"`},
		{args: "dmk drop-encryption --db payroll --by smk --open-password-file p", err: ": flag provided but not defined: -open-password-file"},
	})
}

func TestParseDMKRekeys(t *testing.T) {
	open := "open.txt"
	testParse(t, (*env).dmkRegenerateCommand, []parseCase[dmkRegenerateOptions]{
		{args: "dmk regenerate --db payroll", want: &dmkRegenerateOptions{DB: "payroll"}},
		{args: "dmk regenerate --db payroll --password-file new.txt --open-password-file open.txt --force --no-password-policy --algorithm mlkem768x25519",
			want: &dmkRegenerateOptions{DB: "payroll", PasswordFile: "new.txt", OpenPasswordFile: &open, Force: true, NoPasswordPolicy: true, Algorithm: protect.MLKEM768X25519}},
		{args: "dmk regenerate --db payroll --algorithm aes", err: `: unknown algorithm "aes"`},
		{args: "dmk regenerate --algorithm aes", err: `: unknown algorithm "aes"`},
		{args: "dmk regenerate", err: ": dmk regenerate needs --db"},
	})
	testParse(t, (*env).dmkBackupCommand, []parseCase[dmkBackupOptions]{
		{args: "dmk backup --db payroll --file dmk.age", want: &dmkBackupOptions{DB: "payroll", File: "dmk.age"}},
		{args: "dmk backup --db payroll --file dmk.age --password-file pw --open-password-file open.txt --no-password-policy",
			want: &dmkBackupOptions{DB: "payroll", File: "dmk.age", PasswordFile: "pw", OpenPasswordFile: &open, NoPasswordPolicy: true}},
		// --db before --file.
		{args: "dmk backup", err: ": dmk backup needs --db"},
		{args: "dmk backup --db payroll", err: ": dmk backup needs --file"},
		{args: "dmk backup --db payroll --file -", err: ": dmk backup cannot use standard input or output"},
		{args: "dmk backup --db payroll --file .", err: ": the file given to --file is a directory"},
	})
	testParse(t, (*env).dmkRestoreCommand, []parseCase[dmkRestoreOptions]{
		{args: "dmk restore --db payroll --file dmk.age", want: &dmkRestoreOptions{DB: "payroll", File: "dmk.age"}},
		{args: "dmk restore --db payroll --file dmk.age --password-file pw --new-password-file open.txt --force --no-password-policy",
			want: &dmkRestoreOptions{DB: "payroll", File: "dmk.age", PasswordFile: "pw", NewPasswordFile: &open, Force: true, NoPasswordPolicy: true}},
		{args: "dmk restore --db payroll --file dmk.age --open-password-file open.txt",
			want: &dmkRestoreOptions{DB: "payroll", File: "dmk.age", OpenPasswordFile: &open}},
		{args: "dmk restore --file dmk.age", err: ": dmk restore needs --db"},
		{args: "dmk restore --db payroll", err: ": dmk restore needs --file"},
	})
	testParse(t, (*env).dmkRecoverCommand, []parseCase[dmkRecoverOptions]{
		{args: "dmk recover --db payroll", want: &dmkRecoverOptions{DB: "payroll"}},
		{args: "dmk recover --db payroll --password-file old.txt", want: &dmkRecoverOptions{DB: "payroll", PasswordFile: "old.txt"}},
		{args: "dmk recover --db payroll --file old.age --password-file pw --open-password-file open.txt",
			want: &dmkRecoverOptions{DB: "payroll", File: "old.age", PasswordFile: "pw", OpenPasswordFile: &open}},
		// --file - is refused once the keystore is open, as it always was.
		{args: "dmk recover --db payroll --file -", want: &dmkRecoverOptions{DB: "payroll", File: "-"}},
		{args: "dmk recover", err: ": dmk recover needs --db"},
		{args: "dmk recover --db payroll x", err: ": dmk recover takes no arguments (got 1)"},
	})
}
