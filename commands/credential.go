package commands

import (
	"encoding/base64"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"github.com/keytree-dev/keytree/keystore"
)

const flagIdentity = "identity"

func (e *env) credentialSetCommand(runF func(*credentialSetOptions) error) *cli.Command {
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
		Action: keystoreAction(e, parseCredentialSet, runF, e.credentialSetRun),
	}
}

type credentialSetOptions struct {
	Name       string
	Identity   string
	File       string // the value's; "" or "-": standard input
	AllowEmpty bool
}

func parseCredentialSet(a *argv) *credentialSetOptions {
	name := a.oneArg("a credential NAME")
	a.check(func() error {
		if !a.c.IsSet(flagIdentity) {
			return usagef("credential set needs --identity")
		}
		return nil
	})
	return &credentialSetOptions{Name: name, Identity: a.string(flagIdentity), File: a.string(flagFile),
		AllowEmpty: a.bool(flagAllowEmpty)}
}

func (e *env) credentialSetRun(in *invocation, opts *credentialSetOptions) error {
	what := "credential " + opts.Name
	value, err := e.readValue(opts.File, what, &in.stdin)
	if err != nil {
		return err
	}
	if err := checkValue(opts.AllowEmpty, value, what); err != nil {
		return err
	}
	created, err := in.ks.SetCredential(opts.Name, opts.Identity, value)
	if err != nil {
		return err
	}
	if created {
		e.say("Created credential %s.", opts.Name)
	} else {
		e.say("Replaced credential %s.", opts.Name)
	}
	return nil
}

func (e *env) credentialGetCommand(runF func(*credentialGetOptions) error) *cli.Command {
	return &cli.Command{
		Name:  "get",
		Usage: "print a credential's value",
		UsageText: `keytree credential get NAME... [--json]

Writes the value to standard output exactly as it was stored, with no newline
added. On a terminal, a value that is not text is refused (redirect or pipe
it), and text gets a final newline.

With --json it writes one JSON object instead: name, identity, value and
valueEncoding, which is "text" when the value is valid UTF-8 (value is then
the text itself) and "base64" otherwise (value is its standard base64).
Several names need --json, and get an array of such objects, in the order
given, all read in one pass: if any is missing, nothing is printed and
keytree exits 4, naming every missing one. keytree credential import reads
that array back.

Examples:
   keytree credential get backup-db
   keytree credential get backup-db --json | jq -r .identity
   keytree credential get backup-db mail-relay --json > creds.json`,
		Flags:  []cli.Flag{&cli.BoolFlag{Name: flagJSON, Usage: "print the identity and the value as JSON"}},
		Action: keystoreAction(e, parseCredentialGet, runF, e.credentialGetRun),
	}
}

type credentialGetOptions struct {
	Names []string
	JSON  bool
}

func parseCredentialGet(a *argv) *credentialGetOptions {
	opts := &credentialGetOptions{Names: a.c.Args().Slice(), JSON: a.bool(flagJSON)}
	a.check(func() error { return manyArgs(a, opts.Names, "a credential NAME", opts.JSON) })
	return opts
}

func (e *env) credentialGetRun(in *invocation, opts *credentialGetOptions) error {
	if len(opts.Names) > 1 {
		refs := make([]keystore.Ref, 0, 2*len(opts.Names))
		for _, n := range opts.Names {
			refs = append(refs, keystore.Ref{Kind: keystore.RefCredential, Name: n}, keystore.Ref{Kind: keystore.RefCredentialIdentity, Name: n})
		}
		values, err := in.resolve(refs, nil)
		if err != nil {
			return err
		}
		out := make([]credentialValueJSON, len(opts.Names))
		for i, n := range opts.Names {
			out[i] = newCredentialValueJSON(&keystore.Credential{Name: n, Identity: string(values[2*i+1])}, values[2*i])
		}
		return writeJSON(e.stdout, out)
	}
	name := opts.Names[0]
	cred, value, err := in.ks.GetCredential(name)
	if err != nil {
		return err
	}
	if opts.JSON {
		return writeJSON(e.stdout, newCredentialValueJSON(cred, value))
	}
	return e.writeValue(value, "keytree credential get "+name)
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
	// IdentityUnchecked: the identity could not be checked against the
	// value it was stored with (keystore.Credential.Unchecked).
	IdentityUnchecked bool `json:"identityUnchecked,omitempty"`
	orphanJSONFields
}

func (e *env) credentialListCommand(runF func(*reportOptions) error) *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list credentials (names and identities, never values)",
		UsageText: `keytree credential list [--json]

Lists every credential's name, identity and last update. It opens the
service master key and checks each identity against the value it was stored
with, as credential get does: an edited identity is reported as damage
(exit status 6), never listed. While no encryption of the service master key
opens, it lists the identities unchecked, and says so in the last column
("identity unchecked"; "identityUnchecked": true in --json); an orphaned
credential's identity is unchecked too.

Examples:
   keytree credential list
   keytree credential list --json | jq -r '.[].name'`,
		Flags:  []cli.Flag{jsonFlag()},
		Action: keystoreAction(e, parseReport, runF, e.credentialListRun),
	}
}

func (e *env) credentialListRun(in *invocation, opts *reportOptions) error {
	creds, err := in.ks.ListCredentials()
	if err != nil {
		return err
	}
	return printList(e.stdout, opts.JSON, creds, []string{"NAME", "IDENTITY", "UPDATED", ""},
		func(cr *keystore.Credential) credentialJSON {
			return credentialJSON{Name: cr.Name, Identity: cr.Identity, Created: timeString(cr.Created), Updated: timeString(cr.Updated),
				IdentityUnchecked: cr.Unchecked, orphanJSONFields: orphanFields(cr.Orphan)}
		},
		func(cr *keystore.Credential) []string {
			state := orphanState(cr.Orphan)
			if state == "" && cr.Unchecked {
				state = "identity unchecked: the service master key does not open"
			}
			return []string{cr.Name, cr.Identity, timeString(cr.Updated), state}
		})
}

func (e *env) credentialRmCommand(runF func(*credentialRmOptions) error) *cli.Command {
	return &cli.Command{
		Name:  "rm",
		Usage: "remove a credential",
		UsageText: `keytree credential rm NAME [--yes]

On a terminal, asks "Remove credential NAME? [y/N]" first; --yes (-y) skips
the question. Off a terminal (a script, cron) it does not ask.

Examples:
   keytree credential rm backup-db
   keytree credential rm backup-db --yes`,
		Flags:  []cli.Flag{yesFlag()},
		Action: keystoreAction(e, parseCredentialRm, runF, e.credentialRmRun),
	}
}

type credentialRmOptions struct {
	Name string
	Yes  bool
}

func parseCredentialRm(a *argv) *credentialRmOptions {
	name := a.oneArg("a credential NAME")
	a.check(func() error { return keystore.ValidName("credential", name) })
	return &credentialRmOptions{Name: name, Yes: a.bool(flagYes)}
}

func (e *env) credentialRmRun(in *invocation, opts *credentialRmOptions) error {
	return e.remove(opts.Yes, "Remove credential "+opts.Name+"?", func() error { return in.ks.RemoveCredential(opts.Name) },
		"Removed credential "+opts.Name+".")
}
