package commands

import "testing"

func TestParseDB(t *testing.T) {
	testParse(t, (*env).dbListCommand, []parseCase[dbListOptions]{
		{args: "db list", want: &dbListOptions{}},
		{args: "db list --json", want: &dbListOptions{JSON: true}},
		{args: "db list payroll", err: ": db list takes no arguments (got 1)"},
	})
	testParse(t, (*env).dbExportCommand, []parseCase[dbExportOptions]{
		{args: "db export --db payroll --file payroll.tar", want: &dbExportOptions{DB: "payroll", File: "payroll.tar"}},
		{args: "db export --file payroll.tar", err: ": db export needs --db"},
		{args: "db export --db payroll", err: ": db export needs --file"},
		{args: "db export --db payroll --file -", err: ": db export cannot use standard input or output"},
	})
	testParse(t, (*env).dbImportCommand, []parseCase[dbImportOptions]{
		{args: "db import --file payroll.tar", want: &dbImportOptions{File: "payroll.tar"}},
		{args: "db import --file payroll.tar --db payroll_copy", want: &dbImportOptions{File: "payroll.tar", DB: "payroll_copy"}},
		{args: "db import", err: ": db import needs --file"},
		{args: "db import payroll.tar", err: ": db import takes no arguments (got 1)"},
	})
}
