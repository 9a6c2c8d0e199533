package commands

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/keystore"
)

// Many credentials or secrets in one command: credential import and secret
// import (one batch, all or nothing), and credential get and secret get of
// several names (one walk of the key hierarchy, JSON out).

const (
	flagFormat = "format"

	formatEnv  = "env"
	formatJSON = "json"
)

func formatFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: flagFormat, Usage: "the file's format, `env` or json (default: json for a file named *.json, else env)"}
}

func (e *env) credentialImportCommand(runF func(*importOptions) error) *cli.Command {
	return &cli.Command{
		Name:  "import",
		Usage: "create or replace many credentials at once, from an env or JSON file",
		UsageText: `keytree credential import --file F [--format env|json] [--identity ID]

Sets every credential the file names, all in one change: either all of them
are set or, if anything is wrong (a bad name, a value too large, keytree
stopped halfway), none is.

An env file holds NAME=VALUE lines (see "Env files" in keytree's
documentation: # comments, optional export, "double" quotes with \n \t \"
\\ escapes, 'single' quotes, quoted values over several lines). A JSON file
holds an array of objects as keytree credential get --json prints them:
name, identity, value and valueEncoding ("text", the default, or "base64");
a single object is fine too.

A credential that exists keeps its identity unless the file or --identity
gives one; a new one needs one of them.

Examples:
   keytree credential import --file creds.env --identity svc_app
   keytree credential get a b c --json > creds.json   # on another machine:
   keytree credential import --file creds.json`,
		Flags: []cli.Flag{
			fileFlag("read the credentials from `FILE` (- for standard input)"),
			formatFlag(),
			&cli.StringFlag{Name: flagIdentity, Usage: "`ID`, the identity of every credential the file gives none"},
		},
		Action: keystoreAction(e, parseImport, runF, e.credentialImportRun),
	}
}

func (e *env) secretImportCommand(runF func(*importOptions) error) *cli.Command {
	return &cli.Command{
		Name:  "import",
		Usage: "create or replace many secrets of a database at once, from an env or JSON file",
		UsageText: `keytree secret import DB --file F [--format env|json] [--open-password-file P]

Sets every secret the file names in database DB, all in one change: either
all of them are set or, if anything is wrong, none is.

An env file holds NAME=VALUE lines (see keytree credential import --help). A
JSON file holds an array of objects as keytree secret get --json prints
them: name, value and valueEncoding ("text" or "base64"); their database, if
given, is not looked at: the secrets go to DB.

Examples:
   keytree secret import payroll --file payroll.env
   keytree secret get old/a old/b --json | keytree secret import new --file - --format json`,
		Flags:  []cli.Flag{fileFlag("read the secrets from `FILE` (- for standard input)"), formatFlag(), openPasswordFlag()},
		Action: keystoreAction(e, parseImport, runF, e.secretImportRun),
	}
}

type importOptions struct {
	DB               string // secret import
	File             string
	Format           string // "" (by the file's name), env or json
	Identity         string
	OpenPasswordFile *string
}

func parseImport(a *argv) *importOptions {
	opts := &importOptions{File: a.fileOrStdio(), Format: a.string(flagFormat)}
	if cmdName(a.c) == "secret import" {
		opts.DB = a.oneArg("a database DB")
		a.check(func() error { return keystore.ValidName("database", opts.DB) })
		opts.OpenPasswordFile = a.optional(flagOpenPass)
		a.check(func() error {
			var stdin []string
			if opts.File == "-" {
				stdin = append(stdin, flagFile)
			}
			if p := opts.OpenPasswordFile; p != nil && *p == "-" {
				stdin = append(stdin, flagOpenPass)
			}
			return stdinOnce(stdin)
		})
	} else {
		a.noArgs()
		opts.Identity = a.string(flagIdentity)
		a.check(func() error {
			if a.c.IsSet(flagIdentity) {
				if err := formats.ValidateIdentity(opts.Identity); err != nil {
					return usagef("--%s: %v", flagIdentity, err)
				}
			}
			return nil
		})
	}
	a.check(func() error {
		switch opts.Format {
		case "":
			opts.Format = formatEnv
			if strings.EqualFold(filepath.Ext(opts.File), ".json") {
				opts.Format = formatJSON
			}
		case formatEnv, formatJSON:
		default:
			return usagef("--%s is env or json, not %q", flagFormat, opts.Format)
		}
		return nil
	})
	return opts
}

func (e *env) credentialImportRun(in *invocation, opts *importOptions) error {
	items, err := e.readImport(in, opts)
	if err != nil {
		return err
	}
	for i := range items {
		if items[i].Identity == "" {
			items[i].Identity = opts.Identity
		}
	}
	res, err := in.ks.ImportCredentials(items)
	clearItems(items)
	if err != nil {
		return err
	}
	e.say("Imported %s: %d created, %d replaced.", plural(len(items), "credential"), res.Created, res.Replaced)
	return nil
}

func (e *env) secretImportRun(in *invocation, opts *importOptions) error {
	items, err := e.readImport(in, opts)
	if err != nil {
		return err
	}
	for _, it := range items {
		if it.Identity != "" {
			return usagef("secret %s: a secret has no identity", it.Name)
		}
	}
	var res keystore.ImportResult
	err = in.withDMK(opts.OpenPasswordFile, func(pw []byte) (err error) {
		res, err = in.ks.ImportSecrets(opts.DB, items, pw)
		return err
	})
	clearItems(items)
	if err != nil {
		return err
	}
	e.say("Imported %s into %s: %d created, %d replaced.", plural(len(items), "secret"), opts.DB, res.Created, res.Replaced)
	return nil
}

func clearItems(items []keystore.ImportItem) {
	for _, it := range items {
		clear(it.Value)
	}
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// readImport reads the items of an import file.
func (e *env) readImport(in *invocation, opts *importOptions) ([]keystore.ImportItem, error) {
	data, err := e.readInputFile(flagFile, opts.File, formats.MaxEnvFileSize, &in.stdin)
	if err != nil {
		return nil, err
	}
	defer clear(data)
	name := opts.File
	if name == "-" {
		name = "standard input"
	}
	var items []keystore.ImportItem
	if opts.Format == formatJSON {
		items, err = parseImportJSON(data)
	} else {
		var entries []formats.EnvEntry
		entries, err = formats.ParseEnvFile(data)
		for _, en := range entries {
			items = append(items, keystore.ImportItem{Name: en.Name, Value: []byte(en.Value)})
		}
	}
	if err != nil {
		return nil, &keystore.Error{Text: fmt.Sprintf("%s: %v", name, err), Kind: keystore.ErrInvalid}
	}
	return items, nil
}

// importJSON is one object of an import's JSON file: what credential get
// --json and secret get --json print.
type importJSON struct {
	Name          string  `json:"name"`
	Identity      string  `json:"identity"`
	Database      string  `json:"database"`
	Value         *string `json:"value"`
	ValueEncoding string  `json:"valueEncoding"`
}

// parseImportJSON reads an array of importJSON, or one. Errors name the
// item by its place and name, never a value.
func parseImportJSON(data []byte) ([]keystore.ImportItem, error) {
	// The decoder would turn bytes that are not UTF-8 into U+FFFD, and
	// import a value that is not the one in the file.
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("the file is not valid UTF-8: a value that is not text goes in base64, with \"valueEncoding\": \"base64\"")
	}
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '{' {
		data = append(append([]byte{'['}, trimmed...), ']')
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var objs []importJSON
	if err := dec.Decode(&objs); err != nil {
		return nil, fmt.Errorf("not a JSON array of {\"name\", \"value\", ...} objects: %s", jsonErrorText(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("more than one JSON value")
	}
	// It also takes the last of two fields of the same name, and a field
	// by its name in any case ("Value"): another tool reading the file
	// would see other values.
	if err := checkImportKeys(data); err != nil {
		return nil, err
	}
	// It turns half a UTF-16 surrogate pair ("\ud800") into U+FFFD too.
	if loneSurrogate(data) {
		return nil, fmt.Errorf("a \\u escape is half of a UTF-16 surrogate pair without the other half, which is no character: a value that is not text goes in base64, with \"valueEncoding\": \"base64\"")
	}
	items := make([]keystore.ImportItem, len(objs))
	for i, o := range objs {
		where := fmt.Sprintf("item %d", i+1)
		if o.Name != "" {
			where += " (" + o.Name + ")"
		}
		if o.Value == nil {
			return nil, fmt.Errorf("%s has no value", where)
		}
		value := []byte(*o.Value)
		switch o.ValueEncoding {
		case "", "text":
		case "base64":
			v, err := base64.StdEncoding.DecodeString(*o.Value)
			if err != nil {
				return nil, fmt.Errorf("%s: the value is not valid base64", where)
			}
			value = v
		default:
			return nil, fmt.Errorf("%s: valueEncoding is \"text\" or \"base64\"", where)
		}
		items[i] = keystore.ImportItem{Name: o.Name, Identity: o.Identity, Value: value}
	}
	return items, nil
}

// checkImportKeys refuses, in data, an array of objects that decodes as
// []importJSON, a field given twice in one object or named in another case
// than importJSON's.
func checkImportKeys(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	var keys []string // of the current object; nil outside one
	item, inKey := 0, false
	for {
		t, err := dec.Token()
		if err != nil {
			return nil // io.EOF: the decoder has seen the rest
		}
		switch t {
		case json.Delim('{'):
			item++
			keys, inKey = []string{}, true
			continue
		case json.Delim('}'):
			keys = nil
			continue
		}
		if keys == nil {
			continue
		}
		if !inKey { // a value: the fields are strings, never objects
			inKey = true
			continue
		}
		k, _ := t.(string)
		switch k {
		case "name", "identity", "database", "value", "valueEncoding":
		default:
			return fmt.Errorf("item %d: unknown field %q", item, k)
		}
		if slices.Contains(keys, k) {
			return fmt.Errorf("item %d: the field %q is given twice", item, k)
		}
		keys, inKey = append(keys, k), false
	}
}

// loneSurrogate reports whether data, valid JSON, holds a \u escape of one
// half of a UTF-16 surrogate pair (U+D800 to U+DFFF) without the other. In
// valid JSON every \ begins an escape inside a string.
func loneSurrogate(data []byte) bool {
	hex4 := func(i int) int {
		if i+4 > len(data) {
			return -1
		}
		n, err := strconv.ParseUint(string(data[i:i+4]), 16, 16)
		if err != nil {
			return -1
		}
		return int(n)
	}
	for i := 0; i < len(data); i++ {
		if data[i] != '\\' {
			continue
		}
		if i+1 < len(data) && data[i+1] == 'u' {
			switch r := hex4(i + 2); {
			case r >= 0xd800 && r < 0xdc00:
				if i+8 > len(data) || data[i+6] != '\\' || data[i+7] != 'u' {
					return true
				}
				if lo := hex4(i + 8); lo < 0xdc00 || lo > 0xdfff {
					return true
				}
				i += 11 // the pair, less the increment of the loop
				continue
			case r >= 0xdc00 && r <= 0xdfff:
				return true
			}
		}
		i++ // the escaped character
	}
	return false
}

// jsonErrorText says what is wrong with JSON without quoting it: a
// json.UnmarshalTypeError names a field and types, a syntax error an
// offset; neither holds a value.
func jsonErrorText(err error) string {
	switch e := err.(type) {
	case *json.SyntaxError:
		return fmt.Sprintf("invalid JSON at byte %d", e.Offset)
	case *json.UnmarshalTypeError:
		if e.Field == "" {
			// The whole file, or an item, is not what it should be; its
			// Go type means nothing to the user.
			return fmt.Sprintf("found a JSON %s where an object or an array of objects belongs", e.Value)
		}
		return fmt.Sprintf("%s should be %s", e.Field, e.Type)
	}
	if strings.HasPrefix(err.Error(), "json: unknown field ") {
		return strings.TrimPrefix(err.Error(), "json: ")
	}
	return "invalid JSON"
}
