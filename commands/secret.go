package commands

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/keystore"
)

func (e *env) secretCommand() *cli.Command {
	return group("secret", "keep secrets in databases, under their master keys",
		e.secretSetCommand(),
		e.secretGetCommand(),
		e.secretListCommand(),
		e.secretRmCommand(),
	)
}

func secretPath(c *cli.Context) (db, name string, err error) {
	p, err := oneArg(c, "a secret DB/NAME")
	if err != nil {
		return "", "", err
	}
	db, name, err = formats.SplitSecretPath(p)
	if err != nil {
		return "", "", &keystore.Error{Text: err.Error(), Kind: keystore.ErrInvalid}
	}
	return db, name, nil
}

func (e *env) secretSetCommand() *cli.Command {
	return &cli.Command{
		Name:  "set",
		Usage: "create or replace a secret",
		UsageText: `keytree secret set DB/NAME [--file F] [--open-password-file P] [--allow-empty]

Stores a secret in database DB, encrypted by its master key. The value is read
byte for byte from --file or standard input; any bytes are fine, but an empty
value is refused unless --allow-empty.

On a terminal the value is asked for without echo and may span several lines
(a pasted PEM key): end it with Ctrl-D on a new line. The final line end is
not part of the value; use --file for a value that must be exact to the byte.

Examples:
   keytree secret set payroll/signing-key --file signing.pem
   printf '%s' "$TOKEN" | keytree secret set payroll/api-token`,
		Flags: []cli.Flag{fileFlag("read the value from `FILE` instead of standard input (- for standard input)"), openPasswordFlag(), allowEmptyFlag()},
		Action: func(c *cli.Context) error {
			db, name, err := secretPath(c)
			if err != nil {
				return err
			}
			in, err := e.start(c, needs{args: true})
			if err != nil {
				return err
			}
			ks := in.ks
			value, err := e.readValue(c.String(flagFile), "secret "+db+"/"+name, &in.stdin)
			if err != nil {
				return err
			}
			if err := checkValue(c, value, "secret "+db+"/"+name); err != nil {
				return err
			}
			var created bool
			err = in.withDMK(func(pw []byte) error {
				created, err = ks.SetSecret(db, name, value, pw)
				return err
			})
			if err != nil {
				return err
			}
			if created {
				e.say("Created secret %s/%s.", db, name)
			} else {
				e.say("Replaced secret %s/%s.", db, name)
			}
			return nil
		},
	}
}

func (e *env) secretGetCommand() *cli.Command {
	return &cli.Command{
		Name:  "get",
		Usage: "print a secret's value",
		UsageText: `keytree secret get DB/NAME [--open-password-file P]

Writes the value to standard output exactly as it was stored, with no newline
added. On a terminal, a value that is not text is refused (redirect or pipe
it), and text gets a final newline.

Examples:
   keytree secret get payroll/api-token
   keytree secret get hr/ssh-key --open-password-file - > id_ed25519 < pass.txt`,
		Flags: []cli.Flag{openPasswordFlag()},
		Action: func(c *cli.Context) error {
			db, name, err := secretPath(c)
			if err != nil {
				return err
			}
			in, err := e.start(c, needs{args: true})
			if err != nil {
				return err
			}
			ks := in.ks
			var value []byte
			err = in.withDMK(func(pw []byte) error {
				value, err = ks.GetSecret(db, name, pw)
				return err
			})
			if err != nil {
				return err
			}
			return e.writeValue(value, "keytree secret get "+db+"/"+name)
		},
	}
}

type secretJSON struct {
	Database string `json:"database"`
	Name     string `json:"name"`
	Created  string `json:"created"`
	Updated  string `json:"updated"`
	Orphaned bool   `json:"orphaned"`
	NeedsKey string `json:"needsKey,omitempty"`
}

func (e *env) secretListCommand() *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list secrets (names, never values)",
		UsageText: `keytree secret list [DB] [--json]

Lists the secrets of database DB, or of every database.

Examples:
   keytree secret list
   keytree secret list payroll --json`,
		Flags: []cli.Flag{jsonFlag()},
		Action: func(c *cli.Context) error {
			db := ""
			switch c.Args().Len() {
			case 0:
			case 1:
				db = c.Args().First()
			default:
				return usagef("secret list takes at most one database name")
			}
			in, err := e.start(c, needs{args: true})
			if err != nil {
				return err
			}
			ks := in.ks
			secrets, err := ks.ListSecrets(db)
			if err != nil {
				return err
			}
			if c.Bool(flagJSON) {
				out := []secretJSON{}
				for _, s := range secrets {
					j := secretJSON{Database: s.Database, Name: s.Name, Created: timeString(s.Created), Updated: timeString(s.Updated)}
					if s.Orphan != nil {
						j.Orphaned, j.NeedsKey = true, s.Orphan.Thumbprint
					}
					out = append(out, j)
				}
				return writeJSON(e.stdout, out)
			}
			var rows [][]string
			for _, s := range secrets {
				state := ""
				if s.Orphan != nil {
					state = "orphaned: needs key " + s.Orphan.Thumbprint
				}
				rows = append(rows, []string{s.Database + "/" + s.Name, timeString(s.Updated), state})
			}
			return table(e.stdout, []string{"SECRET", "UPDATED", ""}, rows)
		},
	}
}

func (e *env) secretRmCommand() *cli.Command {
	return &cli.Command{
		Name:  "rm",
		Usage: "remove a secret",
		UsageText: `keytree secret rm DB/NAME [--yes]

On a terminal, asks "Remove secret DB/NAME? [y/N]" first; --yes (-y) skips
the question. Off a terminal (a script, cron) it does not ask.

Examples:
   keytree secret rm payroll/api-token
   keytree secret rm payroll/api-token -y`,
		Flags: []cli.Flag{yesFlag()},
		Action: func(c *cli.Context) error {
			db, name, err := secretPath(c)
			if err != nil {
				return err
			}
			in, err := e.start(c, needs{args: true})
			if err != nil {
				return err
			}
			if err := e.confirm(c, fmt.Sprintf("Remove secret %s/%s?", db, name)); err != nil {
				return err
			}
			ks := in.ks
			if err := ks.RemoveSecret(db, name); err != nil {
				return err
			}
			e.say("Removed secret %s/%s.", db, name)
			return nil
		},
	}
}
