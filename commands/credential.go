package commands

import (
	"encoding/base64"
	"fmt"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"github.com/keytree-dev/keytree/keystore"
)

const flagIdentity = "identity"

func (e *env) credentialCommand() *cli.Command {
	return group("credential", "keep secrets under the service master key",
		e.credentialSetCommand(),
		e.credentialGetCommand(),
		e.credentialListCommand(),
		e.credentialRmCommand(),
	)
}

func (e *env) credentialSetCommand() *cli.Command {
	return &cli.Command{
		Name:  "set",
		Usage: "create or replace a credential",
		UsageText: `keytree credential set NAME --identity ID [--file F] [--allow-empty]

Stores a credential: an identity (a user name, say) and a secret value read
byte for byte from --file or standard input. The value is encrypted by the
service master key. An empty value is refused unless --allow-empty.

On a terminal the value is asked for without echo and may span several lines
(a pasted PEM key): end it with Ctrl-D on a new line. The final line end is
not part of the value; use --file for a value that must be exact to the byte.
Passwords and values are never taken as arguments (no --password, no --value).

Examples:
   printf '%s' "$PASSWORD" | keytree credential set backup-db --identity svc_backup
   keytree credential set tls-key --identity web01 --file server.key`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: flagIdentity, Usage: "the identity the secret belongs to (required)"},
			&cli.StringFlag{Name: flagFile, Usage: "read the value from `FILE` instead of standard input (- for standard input)"},
			allowEmptyFlag(),
		},
		Action: func(c *cli.Context) error {
			name, err := oneArg(c, "a credential NAME")
			if err != nil {
				return err
			}
			if !c.IsSet(flagIdentity) {
				return usagef("credential set needs --identity")
			}
			in, err := e.start(c, needs{args: true})
			if err != nil {
				return err
			}
			ks := in.ks
			value, err := e.readValue(c.String(flagFile), "credential "+name, &in.stdin)
			if err != nil {
				return err
			}
			if err := checkValue(c.Bool(flagAllowEmpty), value, "credential "+name); err != nil {
				return err
			}
			created, err := ks.SetCredential(name, c.String(flagIdentity), value)
			if err != nil {
				return err
			}
			if created {
				e.say("Created credential %s.", name)
			} else {
				e.say("Replaced credential %s.", name)
			}
			return nil
		},
	}
}

func (e *env) credentialGetCommand() *cli.Command {
	return &cli.Command{
		Name:  "get",
		Usage: "print a credential's value",
		UsageText: `keytree credential get NAME [--json]

Writes the value to standard output exactly as it was stored, with no newline
added. On a terminal, a value that is not text is refused (redirect or pipe
it), and text gets a final newline.

With --json it writes one JSON object instead: name, identity, value and
valueEncoding, which is "text" when the value is valid UTF-8 (value is then
the text itself) and "base64" otherwise (value is its standard base64).

Examples:
   keytree credential get backup-db
   PGPASSWORD=$(keytree credential get backup-db) pg_dump ...
   keytree credential get backup-db --json | jq -r .identity`,
		Flags: []cli.Flag{&cli.BoolFlag{Name: flagJSON, Usage: "print the identity and the value as JSON"}},
		Action: func(c *cli.Context) error {
			name, err := oneArg(c, "a credential NAME")
			if err != nil {
				return err
			}
			in, err := e.start(c, needs{args: true})
			if err != nil {
				return err
			}
			ks := in.ks
			cred, value, err := ks.GetCredential(name)
			if err != nil {
				return err
			}
			if c.Bool(flagJSON) {
				return writeJSON(e.stdout, newCredentialValueJSON(cred, value))
			}
			return e.writeValue(value, "keytree credential get "+name)
		},
	}
}

// credentialValueJSON is credential get --json. A value that is valid
// UTF-8 is a JSON string, which writeJSON escapes where it holds control or
// bidirectional formatting characters, and which decodes to the same bytes;
// any other value would be mangled by JSON (invalid UTF-8 becomes U+FFFD),
// so it is written in base64, and valueEncoding says which.
type credentialValueJSON struct {
	Name          string `json:"name"`
	Identity      string `json:"identity"`
	Value         string `json:"value"`
	ValueEncoding string `json:"valueEncoding"`
}

func newCredentialValueJSON(cred *keystore.Credential, value []byte) credentialValueJSON {
	j := credentialValueJSON{Name: cred.Name, Identity: cred.Identity, Value: string(value), ValueEncoding: "text"}
	if !utf8.Valid(value) {
		j.Value, j.ValueEncoding = base64.StdEncoding.EncodeToString(value), "base64"
	}
	return j
}

type credentialJSON struct {
	Name     string `json:"name"`
	Identity string `json:"identity"`
	Created  string `json:"created"`
	Updated  string `json:"updated"`
	Orphaned bool   `json:"orphaned"`
	NeedsKey string `json:"needsKey,omitempty"`
}

func (e *env) credentialListCommand() *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list credentials (names and identities, never values)",
		UsageText: `keytree credential list [--json]

Examples:
   keytree credential list
   keytree credential list --json | jq -r '.[].name'`,
		Flags: []cli.Flag{jsonFlag()},
		Action: func(c *cli.Context) error {
			in, err := e.start(c, needs{})
			if err != nil {
				return err
			}
			ks := in.ks
			creds, err := ks.ListCredentials()
			if err != nil {
				return err
			}
			if c.Bool(flagJSON) {
				out := []credentialJSON{}
				for _, cr := range creds {
					j := credentialJSON{Name: cr.Name, Identity: cr.Identity, Created: timeString(cr.Created), Updated: timeString(cr.Updated)}
					if cr.Orphan != nil {
						j.Orphaned, j.NeedsKey = true, cr.Orphan.Thumbprint
					}
					out = append(out, j)
				}
				return writeJSON(e.stdout, out)
			}
			var rows [][]string
			for _, cr := range creds {
				state := ""
				if cr.Orphan != nil {
					state = "orphaned: needs key " + cr.Orphan.Thumbprint
				}
				rows = append(rows, []string{cr.Name, cr.Identity, timeString(cr.Updated), state})
			}
			return table(e.stdout, []string{"NAME", "IDENTITY", "UPDATED", ""}, rows)
		},
	}
}

func (e *env) credentialRmCommand() *cli.Command {
	return &cli.Command{
		Name:  "rm",
		Usage: "remove a credential",
		UsageText: `keytree credential rm NAME [--yes]

On a terminal, asks "Remove credential NAME? [y/N]" first; --yes (-y) skips
the question. Off a terminal (a script, cron) it does not ask.

Examples:
   keytree credential rm backup-db
   keytree credential rm backup-db --yes`,
		Flags: []cli.Flag{yesFlag()},
		Action: func(c *cli.Context) error {
			name, err := oneArg(c, "a credential NAME")
			if err != nil {
				return err
			}
			if err := keystore.ValidName("credential", name); err != nil {
				return err
			}
			in, err := e.start(c, needs{args: true})
			if err != nil {
				return err
			}
			if err := e.confirm(c.Bool(flagYes), fmt.Sprintf("Remove credential %s?", name)); err != nil {
				return err
			}
			ks := in.ks
			if err := ks.RemoveCredential(name); err != nil {
				return err
			}
			e.say("Removed credential %s.", name)
			return nil
		},
	}
}
