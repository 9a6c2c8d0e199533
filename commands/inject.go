package commands

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"text/template"
	tparse "text/template/parse"

	"github.com/urfave/cli/v2"

	"github.com/keytree-dev/keytree/keystore"
)

const (
	flagInput  = "input"
	flagOutput = "output"
)

// maxTemplateSize bounds the template keytree inject reads.
const maxTemplateSize = 16 << 20

// refFunc is the template function that names a value.
const refFunc = "ref"

func (e *env) injectCommand(runF func(*injectOptions) error) *cli.Command {
	return &cli.Command{
		Name:  "inject",
		Usage: "write a file from a template, with the values of references filled in",
		UsageText: `keytree inject -i TEMPLATE [-o FILE] [--open-password-file DB=FILE]...

Renders TEMPLATE, a Go text/template (https://pkg.go.dev/text/template),
in which {{ ref "keytree://..." }} stands for the value the reference names,
and writes the result to FILE, or to standard output with -o - or without
-o. A reference is keytree://credential/NAME,
keytree://credential/NAME/identity or keytree://secret/DB/NAME, always
written out in quotes: keytree reads every one before it renders anything.

All references are read in one pass. If any names nothing, nothing is
written and keytree exits 4, naming every missing reference. FILE is
created owner-only and appears whole or not at all: the result is written
to a temporary file beside it and renamed over it, so a program reading
FILE sees the old file or the new one. A template needing a literal "{{"
writes {{"{{"}}.

Examples:
   keytree inject -i app.conf.tmpl -o app.conf
   keytree inject -i .env.tmpl -o - | some-program --env-file /dev/stdin
   keytree inject -i report.tmpl -o report.conf --open-password-file hr=pass.txt

A template line:
   password = {{ ref "keytree://secret/app/db-password" }}`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: flagInput, Aliases: []string{"i"}, Usage: "the template: `FILE` (- for standard input)"},
			&cli.StringFlag{Name: flagOutput, Aliases: []string{"o"}, Usage: "write the result to `FILE`, owner-only (- or no -o: standard output)"},
			openPasswordsFlag(),
		},
		Action: keystoreAction(e, parseInject, runF, e.injectRun),
	}
}

type injectOptions struct {
	Input         string
	Output        string // "" or "-": standard output
	OpenPasswords []dbFile
}

func parseInject(a *argv) *injectOptions {
	opts := &injectOptions{Input: a.string(flagInput), Output: a.string(flagOutput)}
	a.noArgs()
	a.check(func() error {
		if opts.Input == "" {
			return usagef("inject needs a template: -i TEMPLATE (- for standard input)")
		}
		if opts.Output != "" && opts.Output != "-" {
			return notDirectory(flagOutput, opts.Output)
		}
		return nil
	})
	a.check(func() (err error) {
		opts.OpenPasswords, err = parseOpenPasswords(a.c.StringSlice(flagOpenPass))
		return err
	})
	a.check(func() error {
		var stdin []string
		if opts.Input == "-" {
			stdin = append(stdin, flagInput)
		}
		return stdinOnce(append(stdin, stdinPasswords(opts.OpenPasswords)...))
	})
	return opts
}

func (e *env) injectRun(in *invocation, opts *injectOptions) error {
	text, err := e.readInputFile(flagInput, opts.Input, maxTemplateSize, &in.stdin)
	if err != nil {
		return err
	}
	name := opts.Input
	if name == "-" {
		name = "standard input"
	}
	tmpl, refs, err := parseTemplate(name, text)
	if err != nil {
		return err
	}
	values, err := in.resolve(refs, opts.OpenPasswords)
	if err != nil {
		return err
	}
	byURI := make(map[string]string, len(refs))
	for i, r := range refs {
		byURI[r.URI()] = string(values[i])
	}
	clear(values)
	tmpl.Funcs(template.FuncMap{refFunc: func(uri string) (string, error) {
		v, ok := byURI[uri]
		if !ok { // parseTemplate saw every call; this is a bug
			return "", fmt.Errorf("a reference that was not read")
		}
		return v, nil
	}})
	var out bytes.Buffer
	if err := tmpl.Execute(&out, nil); err != nil {
		return usagef("%s", execErrorText(err))
	}
	if opts.Output == "" || opts.Output == "-" {
		_, err := e.stdout.Write(out.Bytes())
		return err
	}
	return keystore.WriteOutputFile(opts.Output, out.Bytes())
}

// readInputFile reads a whole input file that flag names, at most max
// bytes, or standard input for "-".
func (e *env) readInputFile(flag, path string, max int64, stdin *stdinUse) ([]byte, error) {
	r, what := io.Reader(e.stdin), "standard input"
	if path == "-" {
		if err := stdin.claim(flag); err != nil {
			return nil, err
		}
	} else {
		f, err := openInput(flag, path, max)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r, what = f, path
	}
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	if int64(len(data)) > max {
		return nil, usagef("%s is larger than %d bytes", what, max)
	}
	return data, nil
}

// parseTemplate parses a template and finds the references it uses: every
// call of ref, which must have one argument, a reference in quotes, so that
// all of them are known, and read, before anything is rendered. The
// references come back once each, in the order they first appear.
func parseTemplate(name string, text []byte) (*template.Template, []keystore.Ref, error) {
	tmpl, err := template.New(name).Option("missingkey=error").
		Funcs(template.FuncMap{refFunc: func(string) string { return "" }}).
		Parse(string(text))
	if err != nil {
		return nil, nil, usagef("%v", err)
	}
	var refs []keystore.Ref
	seen := map[string]bool{}
	var walkErr error
	visit := func(n tparse.Node) {
		if walkErr != nil {
			return
		}
		cmd, ok := n.(*tparse.CommandNode)
		if !ok {
			if id, ok := n.(*tparse.IdentifierNode); ok && id.Ident == refFunc {
				walkErr = refUsage(tmpl, n)
			}
			return
		}
		for i, arg := range cmd.Args {
			id, ok := arg.(*tparse.IdentifierNode)
			if !ok || id.Ident != refFunc {
				continue
			}
			if i != 0 || len(cmd.Args) != 2 {
				walkErr = refUsage(tmpl, cmd)
				return
			}
			s, ok := cmd.Args[1].(*tparse.StringNode)
			if !ok {
				walkErr = refUsage(tmpl, cmd)
				return
			}
			r, err := keystore.ParseRef(s.Text)
			if err != nil {
				loc, _ := tmpl.ErrorContext(cmd)
				walkErr = usagef("%s: %v", loc, err)
				return
			}
			if !seen[r.URI()] {
				seen[r.URI()] = true
				refs = append(refs, r)
			}
		}
	}
	for _, t := range tmpl.Templates() {
		if t.Tree != nil {
			walkNodes(t.Root, visit)
		}
	}
	if walkErr != nil {
		return nil, nil, walkErr
	}
	return tmpl, refs, nil
}

// valueShowingErrors begin the errors of text/template that go on with the
// value they are about (a range over a string: "range can't iterate over
// VALUE"), which may be one a reference named.
var valueShowingErrors = []string{"range can't iterate over ", "can't use ", "range over send-only channel "}

// execErrorText is the message of a template that failed while rendering,
// without any value: from the first of valueShowingErrors on, whatever
// follows is left out. The rest names the place and the node, text of the
// template itself.
func execErrorText(err error) string {
	msg := err.Error()
	cut := -1
	for _, m := range valueShowingErrors {
		if i := strings.Index(msg, m); i >= 0 && (cut < 0 || i+len(m) < cut) {
			cut = i + len(m)
		}
	}
	if cut >= 0 {
		msg = msg[:cut] + "a value (not shown)"
	}
	return msg
}

func refUsage(tmpl *template.Template, n tparse.Node) error {
	loc, _ := tmpl.ErrorContext(n)
	return usagef(`%s: ref takes one reference in quotes: {{ ref "keytree://secret/DB/NAME" }}`, loc)
}

// walkNodes calls visit on n and every node under it.
func walkNodes(n tparse.Node, visit func(tparse.Node)) {
	if n == nil {
		return
	}
	visit(n)
	switch n := n.(type) {
	case *tparse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			walkNodes(c, visit)
		}
	case *tparse.ActionNode:
		walkNodes(n.Pipe, visit)
	case *tparse.PipeNode:
		if n == nil {
			return
		}
		for _, d := range n.Decl {
			walkNodes(d, visit)
		}
		for _, c := range n.Cmds {
			walkNodes(c, visit)
		}
	case *tparse.CommandNode:
		// visit has seen the command; its arguments other than
		// identifiers can hold pipelines of their own.
		for _, a := range n.Args {
			if _, ok := a.(*tparse.IdentifierNode); ok {
				continue
			}
			walkNodes(a, visit)
		}
	case *tparse.ChainNode:
		walkNodes(n.Node, visit)
	case *tparse.IfNode:
		walkBranch(&n.BranchNode, visit)
	case *tparse.RangeNode:
		walkBranch(&n.BranchNode, visit)
	case *tparse.WithNode:
		walkBranch(&n.BranchNode, visit)
	case *tparse.TemplateNode:
		walkNodes(n.Pipe, visit)
	}
}

func walkBranch(b *tparse.BranchNode, visit func(tparse.Node)) {
	walkNodes(b.Pipe, visit)
	if b.List != nil {
		walkNodes(b.List, visit)
	}
	if b.ElseList != nil {
		walkNodes(b.ElseList, visit)
	}
}
