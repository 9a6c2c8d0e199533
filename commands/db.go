package commands

import (
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/keystore"
)

type databaseJSON struct {
	Name          string `json:"name"`
	Thumbprint    string `json:"thumbprint"`
	Algorithm     string `json:"algorithm"`
	Generation    int    `json:"generation"`
	Created       string `json:"created"`
	SMKEncryption bool   `json:"smkEncryption"`
	Passwords     int    `json:"passwordEncryptions"`
	Secrets       int    `json:"secrets"`
}

func (e *env) dbListCommand(runF func(*reportOptions) error) *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list databases and their master keys",
		UsageText: `keytree db list [--json]

Examples:
   keytree db list
   keytree db list --json | jq -r '.[] | select(.smkEncryption | not) | .name'`,
		Flags:  []cli.Flag{jsonFlag()},
		Action: keystoreAction(e, parseReport, runF, e.dbListRun),
	}
}

func (e *env) dbListRun(in *invocation, opts *reportOptions) error {
	dbs, err := in.ks.ListDatabases()
	if err != nil {
		return err
	}
	return printList(e.stdout, opts.JSON, dbs, []string{"DATABASE", "MASTER KEY", "ALGORITHM", "BY SMK", "PASSWORDS", "SECRETS"},
		func(d *keystore.DatabaseInfo) databaseJSON {
			return databaseJSON{Name: d.Name, Thumbprint: d.Thumbprint, Algorithm: string(d.Algorithm), Generation: d.Generation,
				Created: timeString(d.Created), SMKEncryption: d.SMKEncryption, Passwords: d.Passwords, Secrets: d.Secrets}
		},
		func(d *keystore.DatabaseInfo) []string {
			smk := "no"
			if d.SMKEncryption {
				smk = "yes"
			}
			return []string{d.Name, d.Thumbprint, string(d.Algorithm), smk, strconv.Itoa(d.Passwords), strconv.Itoa(d.Secrets)}
		})
}

func (e *env) dbExportCommand(runF func(*dbExportOptions) error) *cli.Command {
	return &cli.Command{
		Name:  "export",
		Usage: "write a database to one portable file",
		UsageText: `keytree db export --db DB --file F

Writes database DB to F: a tar archive of its master key's password
encryptions and its secrets, all still encrypted, created owner-only (an
existing F is refused with error 15240). The service master key encryption
stays behind, as another keystore could not open it: after db import, the
secrets open with --open-password-file until dmk add-encryption --by smk.

Example:
   keytree db export --db payroll --file payroll.tar`,
		Flags:  []cli.Flag{dbFlag(), fileFlag("the export `FILE` to create")},
		Action: keystoreAction(e, parseDBExport, runF, e.dbExportRun),
	}
}

type dbExportOptions struct {
	DB   string
	File string
}

func parseDBExport(a *argv) *dbExportOptions {
	a.noArgs()
	db := a.db()
	return &dbExportOptions{DB: db, File: a.file()}
}

func (e *env) dbExportRun(in *invocation, opts *dbExportOptions) error {
	m, err := in.ks.ExportDatabase(opts.DB, opts.File)
	if err != nil {
		return err
	}
	e.say("Exported %s (%d secrets) to %s.", opts.DB, m.Secrets, opts.File)
	return nil
}

func (e *env) dbImportCommand(runF func(*dbImportOptions) error) *cli.Command {
	return &cli.Command{
		Name:  "import",
		Usage: "attach an exported database to this keystore",
		UsageText: `keytree db import --file F [--db NAME] [--open-password-file P]

Attaches the database in F (made by db export), under its own name or NAME.
Its master key has no service master key encryption here: open it with
--open-password-file, or add one with
keytree dmk add-encryption --db NAME --by smk --open-password-file P.

The database's metadata is signed with its master key and names the
database, so importing it under another name needs its password
(--open-password-file, or the prompt), and so does importing an export made
by keytree before format 2 into a keystore of format 2: its values are
bound to their names as they are imported.

Examples:
   keytree db import --file payroll.tar
   keytree db import --file payroll.tar --db payroll_copy --open-password-file pass.txt`,
		Flags:  []cli.Flag{fileFlag("the export `FILE`"), &cli.StringFlag{Name: flagDB, Usage: "import under this `NAME`"}, openPasswordFlag()},
		Action: keystoreAction(e, parseDBImport, runF, e.dbImportRun),
	}
}

type dbImportOptions struct {
	File             string
	DB               string // "": the exported database's own name
	OpenPasswordFile *string
}

func parseDBImport(a *argv) *dbImportOptions {
	a.noArgs()
	return &dbImportOptions{File: a.file(), DB: a.string(flagDB), OpenPasswordFile: a.optional(flagOpenPass)}
}

func (e *env) dbImportRun(in *invocation, opts *dbImportOptions) error {
	if err := existingFile(opts.File); err != nil {
		return err
	}
	var m *formats.ExportManifest
	err := in.withDMK(opts.OpenPasswordFile, func(pw []byte) (err error) {
		m, err = in.ks.ImportDatabase(opts.File, opts.DB, pw)
		return err
	})
	if err != nil {
		return err
	}
	name := opts.DB
	if name == "" {
		name = m.Database
	}
	e.say("Imported %s (%d secrets). Its master key opens by password until: keytree dmk add-encryption --db %s --by smk --open-password-file FILE", name, m.Secrets, name)
	return nil
}
