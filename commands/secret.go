package commands

import (
	"encoding/base64"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"github.com/keytree-dev/keytree/formats"

	"github.com/keytree-dev/keytree/keystore"
)

func (e *env) secretSetCommand(runF func(*secretSetOptions) error) *cli.Command {
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
		Flags:  []cli.Flag{fileFlag("read the value from `FILE` instead of standard input (- for standard input)"), openPasswordFlag(), allowEmptyFlag()},
		Action: keystoreAction(e, parseSecretSet, runF, e.secretSetRun),
	}
}

type secretSetOptions struct {
	DB, Name         string
	File             string // the value's; "" or "-": standard input
	OpenPasswordFile *string
	AllowEmpty       bool
}

func parseSecretSet(a *argv) *secretSetOptions {
	db, name := a.secretPath()
	return &secretSetOptions{DB: db, Name: name, File: a.string(flagFile),
		OpenPasswordFile: a.optional(flagOpenPass), AllowEmpty: a.bool(flagAllowEmpty)}
}

func (e *env) secretSetRun(in *invocation, opts *secretSetOptions) error {
	what := "secret " + opts.DB + "/" + opts.Name
	value, err := e.readValue(opts.File, what, &in.stdin)
	if err != nil {
		return err
	}
	if err := checkValue(opts.AllowEmpty, value, what); err != nil {
		return err
	}
	var created bool
	err = in.withDMK(opts.OpenPasswordFile, func(pw []byte) error {
		created, err = in.ks.SetSecret(opts.DB, opts.Name, value, pw)
		return err
	})
	if err != nil {
		return err
	}
	if created {
		e.say("Created secret %s/%s.", opts.DB, opts.Name)
	} else {
		e.say("Replaced secret %s/%s.", opts.DB, opts.Name)
	}
	return nil
}

func (e *env) secretGetCommand(runF func(*secretGetOptions) error) *cli.Command {
	return &cli.Command{
		Name:  "get",
		Usage: "print a secret's value",
		UsageText: `keytree secret get DB/NAME... [--json] [--open-password-file P]

Writes the value to standard output exactly as it was stored, with no newline
added. On a terminal, a value that is not text is refused (redirect or pipe
it), and text gets a final newline.

With --json it writes one JSON object instead: database, name, value and
valueEncoding ("text" when the value is valid UTF-8, else "base64"). Several
names need --json, and get an array of such objects, in the order given, all
read in one pass that opens each database's master key once: if any is
missing, nothing is printed and keytree exits 4, naming every missing one.
keytree secret import reads that array back. --open-password-file is for
secrets of one database; for several, see keytree run and keytree inject,
which take --open-password-file DB=FILE.

Examples:
   keytree secret get payroll/api-token
   keytree secret get hr/ssh-key --open-password-file - > id_ed25519 < pass.txt
   keytree secret get payroll/api-token payroll/signing-key --json`,
		Flags:  []cli.Flag{&cli.BoolFlag{Name: flagJSON, Usage: "print the value as JSON"}, openPasswordFlag()},
		Action: keystoreAction(e, parseSecretGet, runF, e.secretGetRun),
	}
}

type secretGetOptions struct {
	Secrets          []keystore.Ref
	JSON             bool
	OpenPasswordFile *string
}

func parseSecretGet(a *argv) *secretGetOptions {
	opts := &secretGetOptions{JSON: a.bool(flagJSON), OpenPasswordFile: a.optional(flagOpenPass)}
	args := a.c.Args().Slice()
	a.check(func() error { return manyArgs(a, args, "a secret DB/NAME", opts.JSON) })
	for _, p := range args {
		a.check(func() error {
			db, name, err := formats.SplitSecretPath(p)
			if err != nil {
				return &keystore.Error{Text: err.Error(), Kind: keystore.ErrInvalid}
			}
			if opts.OpenPasswordFile != nil && len(opts.Secrets) > 0 && opts.Secrets[0].DB != db {
				return usagef("--%s opens one database; %s and %s are two (keytree inject takes --%s DB=FILE for each)",
					flagOpenPass, opts.Secrets[0].DB, db, flagOpenPass)
			}
			opts.Secrets = append(opts.Secrets, keystore.Ref{Kind: keystore.RefSecret, DB: db, Name: name})
			return nil
		})
	}
	return opts
}

// secretValueJSON is secret get --json: as credentialValueJSON.
type secretValueJSON struct {
	Database      string `json:"database"`
	Name          string `json:"name"`
	Value         string `json:"value"`
	ValueEncoding string `json:"valueEncoding"`
}

func newSecretValueJSON(r keystore.Ref, value []byte) secretValueJSON {
	j := secretValueJSON{Database: r.DB, Name: r.Name, Value: string(value), ValueEncoding: "text"}
	if !utf8.Valid(value) {
		j.Value, j.ValueEncoding = base64.StdEncoding.EncodeToString(value), "base64"
	}
	return j
}

func (e *env) secretGetRun(in *invocation, opts *secretGetOptions) error {
	if len(opts.Secrets) > 1 {
		var open []dbFile
		if opts.OpenPasswordFile != nil {
			open = []dbFile{{DB: opts.Secrets[0].DB, File: *opts.OpenPasswordFile}}
		}
		values, err := in.resolve(opts.Secrets, open)
		if err != nil {
			return err
		}
		out := make([]secretValueJSON, len(values))
		for i, v := range values {
			out[i] = newSecretValueJSON(opts.Secrets[i], v)
		}
		return writeJSON(e.stdout, out)
	}
	r := opts.Secrets[0]
	var value []byte
	err := in.withDMK(opts.OpenPasswordFile, func(pw []byte) (err error) {
		value, err = in.ks.GetSecret(r.DB, r.Name, pw)
		return err
	})
	if err != nil {
		return err
	}
	if opts.JSON {
		return writeJSON(e.stdout, newSecretValueJSON(r, value))
	}
	return e.writeValue(value, "keytree secret get "+r.DB+"/"+r.Name)
}

type secretJSON struct {
	Database string `json:"database"`
	Name     string `json:"name"`
	Created  string `json:"created"`
	Updated  string `json:"updated"`
	orphanJSONFields
}

func (e *env) secretListCommand(runF func(*secretListOptions) error) *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list secrets (names, never values)",
		UsageText: `keytree secret list [DB] [--json]

Lists the secrets of database DB, or of every database.

Examples:
   keytree secret list
   keytree secret list payroll --json`,
		Flags:  []cli.Flag{jsonFlag()},
		Action: keystoreAction(e, parseSecretList, runF, e.secretListRun),
	}
}

type secretListOptions struct {
	DB   string // "": every database
	JSON bool
}

func parseSecretList(a *argv) *secretListOptions {
	a.check(func() error {
		if a.c.Args().Len() > 1 {
			return usagef("secret list takes at most one database name")
		}
		return nil
	})
	return &secretListOptions{DB: a.c.Args().First(), JSON: a.bool(flagJSON)}
}

func (e *env) secretListRun(in *invocation, opts *secretListOptions) error {
	secrets, err := in.ks.ListSecrets(opts.DB)
	if err != nil {
		return err
	}
	return printList(e.stdout, opts.JSON, secrets, []string{"SECRET", "UPDATED", ""},
		func(s *keystore.Secret) secretJSON {
			return secretJSON{Database: s.Database, Name: s.Name, Created: timeString(s.Created), Updated: timeString(s.Updated),
				orphanJSONFields: orphanFields(s.Orphan)}
		},
		func(s *keystore.Secret) []string {
			return []string{s.Database + "/" + s.Name, timeString(s.Updated), orphanState(s.Orphan)}
		})
}

func (e *env) secretRmCommand(runF func(*secretRmOptions) error) *cli.Command {
	return &cli.Command{
		Name:  "rm",
		Usage: "remove a secret",
		UsageText: `keytree secret rm DB/NAME [--yes]

On a terminal, asks "Remove secret DB/NAME? [y/N]" first; --yes (-y) skips
the question. Off a terminal (a script, cron) it does not ask.

Examples:
   keytree secret rm payroll/api-token
   keytree secret rm payroll/api-token -y`,
		Flags:  []cli.Flag{yesFlag()},
		Action: keystoreAction(e, parseSecretRm, runF, e.secretRmRun),
	}
}

type secretRmOptions struct {
	DB, Name string
	Yes      bool
}

func parseSecretRm(a *argv) *secretRmOptions {
	db, name := a.secretPath()
	return &secretRmOptions{DB: db, Name: name, Yes: a.bool(flagYes)}
}

func (e *env) secretRmRun(in *invocation, opts *secretRmOptions) error {
	path := opts.DB + "/" + opts.Name
	return e.remove(opts.Yes, "Remove secret "+path+"?", func() error { return in.ks.RemoveSecret(opts.DB, opts.Name) },
		"Removed secret "+path+".")
}
