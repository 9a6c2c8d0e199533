package commands

import (
	"strconv"

	"github.com/urfave/cli/v2"
)

func (e *env) dbCommand() *cli.Command {
	return group("db", "list, export and import databases",
		e.dbListCommand(),
		e.dbExportCommand(),
		e.dbImportCommand(),
	)
}

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

func (e *env) dbListCommand() *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list databases and their master keys",
		UsageText: `keytree db list [--json]

Examples:
   keytree db list
   keytree db list --json | jq -r '.[] | select(.smkEncryption | not) | .name'`,
		Flags: []cli.Flag{jsonFlag()},
		Action: func(c *cli.Context) error {
			in, err := e.start(c, needs{})
			if err != nil {
				return err
			}
			ks := in.ks
			dbs, err := ks.ListDatabases()
			if err != nil {
				return err
			}
			if c.Bool(flagJSON) {
				out := []databaseJSON{}
				for _, d := range dbs {
					out = append(out, databaseJSON{Name: d.Name, Thumbprint: d.Thumbprint, Algorithm: string(d.Algorithm),
						Generation: d.Generation, Created: timeString(d.Created), SMKEncryption: d.SMKEncryption, Passwords: d.Passwords, Secrets: d.Secrets})
				}
				return writeJSON(e.stdout, out)
			}
			var rows [][]string
			for _, d := range dbs {
				smk := "no"
				if d.SMKEncryption {
					smk = "yes"
				}
				rows = append(rows, []string{d.Name, d.Thumbprint, string(d.Algorithm), smk, strconv.Itoa(d.Passwords), strconv.Itoa(d.Secrets)})
			}
			return table(e.stdout, []string{"DATABASE", "MASTER KEY", "ALGORITHM", "BY SMK", "PASSWORDS", "SECRETS"}, rows)
		},
	}
}

func (e *env) dbExportCommand() *cli.Command {
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
		Flags: []cli.Flag{dbFlag(), fileFlag("the export `FILE` to create")},
		Action: func(c *cli.Context) error {
			in, err := e.start(c, needs{db: true, file: true})
			if err != nil {
				return err
			}
			ks, db, file := in.ks, in.db, in.file
			m, err := ks.ExportDatabase(db, file)
			if err != nil {
				return err
			}
			e.say("Exported %s (%d secrets) to %s.", db, m.Secrets, file)
			return nil
		},
	}
}

func (e *env) dbImportCommand() *cli.Command {
	return &cli.Command{
		Name:  "import",
		Usage: "attach an exported database to this keystore",
		UsageText: `keytree db import --file F [--db NAME]

Attaches the database in F (made by db export), under its own name or NAME.
Its master key has no service master key encryption here: open it with
--open-password-file, or add one with
keytree dmk add-encryption --db NAME --by smk --open-password-file P.

Examples:
   keytree db import --file payroll.tar
   keytree db import --file payroll.tar --db payroll_copy`,
		Flags: []cli.Flag{fileFlag("the export `FILE`"), &cli.StringFlag{Name: flagDB, Usage: "import under this `NAME`"}},
		Action: func(c *cli.Context) error {
			in, err := e.start(c, needs{file: true})
			if err != nil {
				return err
			}
			ks, file := in.ks, in.file
			if err := existingFile(file); err != nil {
				return err
			}
			m, err := ks.ImportDatabase(file, c.String(flagDB))
			if err != nil {
				return err
			}
			name := c.String(flagDB)
			if name == "" {
				name = m.Database
			}
			e.say("Imported %s (%d secrets). Its master key opens by password until: keytree dmk add-encryption --db %s --by smk --open-password-file FILE", name, m.Secrets, name)
			return nil
		},
	}
}
