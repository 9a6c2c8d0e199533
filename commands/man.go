package commands

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/urfave/cli/v2"
)

// Manual pages: keytree(1), and one page per command (keytree-smk(1),
// keytree-smk-backup(1), ...), written from the same command table that
// --help prints. urfave/cli's own man-page generator is compiled out of
// release builds (the urfave_cli_no_docs tag), and it writes one page for
// the whole program; this small roff writer needs nothing beyond the
// exported cli.App, cli.Command and cli.Flag.

// ManInfo is what a page's header says besides the command.
type ManInfo struct {
	Version string // "1.2.3"; empty for the built-in version
	Date    string // the footer's date, "2026-01-31"; may be empty
}

// WriteManPages writes keytree.1 and a page per command into dir, which it
// creates, and returns the names of the files written.
func WriteManPages(dir string, info ManInfo) ([]string, error) {
	if info.Version == "" {
		info.Version = buildVersion()
	}
	pages := manPages((&env{}).newApp(), info)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var names []string
	for _, p := range pages {
		if err := os.WriteFile(filepath.Join(dir, p.name), p.text, 0o644); err != nil {
			return nil, err
		}
		names = append(names, p.name)
	}
	return names, nil
}

type manPage struct {
	name string // "keytree-smk-backup.1"
	text []byte
}

// manCommand is a command with the words that call it: ["smk", "backup"].
type manCommand struct {
	path []string
	cmd  *cli.Command
}

func (m manCommand) title() string { return strings.Join(append([]string{"keytree"}, m.path...), "-") }
func (m manCommand) words() string { return strings.Join(append([]string{"keytree"}, m.path...), " ") }

// manCommands lists cmds and their subcommands, depth first, leaving out
// hidden ones and the help commands.
func manCommands(parent []string, cmds []*cli.Command) []manCommand {
	var out []manCommand
	for _, c := range cmds {
		if c.Hidden || c.Name == "help" {
			continue
		}
		path := append(append([]string(nil), parent...), c.Name)
		out = append(out, manCommand{path: path, cmd: c})
		out = append(out, manCommands(path, c.Subcommands)...)
	}
	return out
}

func manPages(app *cli.App, info ManInfo) []manPage {
	cmds := manCommands(nil, app.Commands)
	pages := []manPage{{name: "keytree.1", text: mainManPage(app, cmds, info)}}
	for _, m := range cmds {
		pages = append(pages, manPage{name: m.title() + ".1", text: commandManPage(m, info)})
	}
	return pages
}

func manHeader(w *bytes.Buffer, title, usage string, info ManInfo) {
	fmt.Fprintf(w, ".\\\" Generated from keytree's command definitions (commands/man.go); do not edit.\n")
	fmt.Fprintf(w, ".TH %s 1 %s %s \"keytree manual\"\n", roffQuote(strings.ToUpper(title)),
		roffQuote(info.Date), roffQuote("keytree "+info.Version))
	// No hyphenation and a ragged right margin: command lines, flags and
	// paths must read as they are typed.
	w.WriteString(".nh\n.ad l\n")
	w.WriteString(".SH NAME\n")
	fmt.Fprintf(w, "%s \\- %s\n", roffText(title), roffText(usage))
}

func mainManPage(app *cli.App, cmds []manCommand, info ManInfo) []byte {
	var w bytes.Buffer
	manHeader(&w, "keytree", app.Usage, info)
	w.WriteString(".SH SYNOPSIS\n")
	w.WriteString(".B keytree\n")
	w.WriteString(roffText("[GLOBAL OPTIONS] COMMAND [VERB] [OPTIONS] [ARGUMENTS]") + "\n")
	desc, examples := splitExamples(app.Description)
	w.WriteString(".SH DESCRIPTION\n")
	roffParagraphs(&w, desc)
	w.WriteString(".PP\nEvery command has its own page, named after the words that call it:\n" +
		".BR keytree\\-smk\\-backup (1)\nfor\n.BR \"keytree smk backup\" .\n")

	w.WriteString(".SH COMMANDS\n")
	for _, m := range cmds {
		if len(m.path) == 1 {
			fmt.Fprintf(&w, ".TP\n.BR %s (1)\n%s\n", roffText(m.title()), roffText(m.cmd.Usage))
		}
	}
	var topics []string
	for _, t := range helpTopics {
		topics = append(topics, "\\fB"+roffText(t.name)+"\\fR")
	}
	fmt.Fprintf(&w, ".TP\n\\fBkeytree help\\fR [\\fICOMMAND\\fR|\\fITOPIC\\fR]\nshow help for a command, or a topic: %s\n",
		strings.Join(topics, ", "))

	w.WriteString(".SH GLOBAL OPTIONS\n")
	w.WriteString("Global options can be given before or after the command.\n")
	roffFlags(&w, app.Flags)
	w.WriteString(".TP\n\\fB\\-\\-version\\fR, \\fB\\-v\\fR\nprint the version\n")

	w.WriteString(".SH EXIT STATUS\n")
	for _, s := range exitStatuses {
		fmt.Fprintf(&w, ".TP\n.B %d\n%s\n.br\n%s\n", s.code, roffText(s.meaning), roffText(s.when))
	}
	w.WriteString(".PP\n" + roffText("keytree help exit-codes prints this table.") + "\n")

	w.WriteString(".SH ENVIRONMENT\n")
	for _, v := range environment {
		fmt.Fprintf(&w, ".TP\n.B %s\n%s (as \\fB\\-\\-%s\\fR)\n", roffText(v.name), roffText(v.meaning), roffText(v.flag))
	}
	w.WriteString(".PP\n" + roffText("When a directory is given neither by flag nor by variable, its default comes from:") + "\n")
	for _, v := range environmentDefaults {
		fmt.Fprintf(&w, ".TP\n.B %s\n%s\n", roffText(v.name), roffText(v.meaning))
	}
	w.WriteString(".PP\n")
	roffParagraphs(&w, environmentNotes)

	if examples != "" {
		w.WriteString(".SH EXAMPLES\n")
		roffExample(&w, examples)
	}
	w.WriteString(".SH SEE ALSO\n")
	var refs []string
	for _, m := range cmds {
		if len(m.path) == 1 {
			refs = append(refs, fmt.Sprintf(".BR %s (1)", roffText(m.title())))
		}
	}
	refs = append(refs, ".BR age (1)")
	w.WriteString(strings.Join(refs, " ,\n") + "\n")
	return w.Bytes()
}

func commandManPage(m manCommand, info ManInfo) []byte {
	var w bytes.Buffer
	c := m.cmd
	manHeader(&w, m.title(), c.Usage, info)

	// UsageText is the synopsis, then a blank line and the description;
	// without one, the synopsis is made as urfave/cli makes it.
	synopsis, desc, _ := strings.Cut(c.UsageText, "\n\n")
	if synopsis == "" {
		synopsis = m.words()
		if len(c.Subcommands) > 0 {
			synopsis += " COMMAND"
		}
		if len(c.VisibleFlags()) > 0 {
			synopsis += " [OPTIONS]"
		}
		if c.ArgsUsage != "" {
			synopsis += " " + c.ArgsUsage
		}
	}
	if c.Description != "" {
		desc = strings.TrimSpace(desc + "\n\n" + c.Description)
	}
	desc, examples := splitExamples(desc)
	w.WriteString(".SH SYNOPSIS\n")
	for _, line := range strings.Split(synopsis, "\n") {
		fmt.Fprintf(&w, ".B %s\n.br\n", roffText(strings.TrimSpace(line)))
	}
	w.WriteString(".SH DESCRIPTION\n")
	if desc == "" {
		desc = strings.ToUpper(c.Usage[:1]) + c.Usage[1:] + "."
	}
	roffParagraphs(&w, desc)

	subs := manCommands(m.path, c.Subcommands)
	if len(subs) > 0 {
		w.WriteString(".SH COMMANDS\n")
		for _, s := range subs {
			if len(s.path) != len(m.path)+1 {
				continue
			}
			fmt.Fprintf(&w, ".TP\n.BR %s (1)\n%s\n", roffText(s.title()), roffText(s.cmd.Usage))
		}
	}
	var flags []cli.Flag
	for _, f := range c.Flags {
		if v, ok := f.(cli.VisibleFlag); !ok || v.IsVisible() {
			flags = append(flags, f)
		}
	}
	if len(flags) > 0 {
		w.WriteString(".SH OPTIONS\n")
		roffFlags(&w, flags)
	}
	w.WriteString(".PP\nThe global options of\n.BR keytree (1)\n(\\fB\\-\\-keystore\\fR, \\fB\\-\\-account\\-dir\\fR, ...) apply too.\n")
	w.WriteString(".SH EXIT STATUS\n0 on success, 2 for a usage error; the others are listed in\n.BR keytree (1)\nand by\n.BR \"keytree help exit\\-codes\" .\n")
	if examples != "" {
		w.WriteString(".SH EXAMPLES\n")
		roffExample(&w, examples)
	}
	w.WriteString(".SH SEE ALSO\n")
	refs := []string{".BR keytree (1)"}
	if len(m.path) > 1 {
		parent := manCommand{path: m.path[:len(m.path)-1]}
		refs = append(refs, fmt.Sprintf(".BR %s (1)", roffText(parent.title())))
	}
	for _, s := range subs {
		if len(s.path) == len(m.path)+1 {
			refs = append(refs, fmt.Sprintf(".BR %s (1)", roffText(s.title())))
		}
	}
	w.WriteString(strings.Join(refs, " ,\n") + "\n")
	return w.Bytes()
}

// splitExamples separates a help text from its "Examples:" section.
func splitExamples(text string) (desc, examples string) {
	if strings.HasPrefix(text, "Examples:\n") {
		return "", text[len("Examples:\n"):]
	}
	desc, examples, _ = strings.Cut(text, "\n\nExamples:\n")
	return strings.TrimSpace(desc), examples
}

// roffParagraphs writes text's paragraphs (separated by blank lines) as
// filled roff paragraphs.
func roffParagraphs(w *bytes.Buffer, text string) {
	for i, para := range strings.Split(strings.TrimSpace(text), "\n\n") {
		if i > 0 {
			w.WriteString(".PP\n")
		}
		for _, line := range strings.Split(para, "\n") {
			w.WriteString(roffText(strings.TrimSpace(line)) + "\n")
		}
	}
}

// roffExample writes example command lines as they are, unfilled.
func roffExample(w *bytes.Buffer, text string) {
	w.WriteString(".PP\n.RS 4\n.nf\n")
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		w.WriteString(roffText(strings.TrimPrefix(line, "   ")) + "\n")
	}
	w.WriteString(".fi\n.RE\n")
}

var placeholder = regexp.MustCompile("`([^`]*)`")

// roffFlags writes flags as --help shows them: names, the value's name
// (the usage text's `WORD`, as urfave/cli takes it), default and variable.
func roffFlags(w *bytes.Buffer, flags []cli.Flag) {
	for _, f := range flags {
		d, ok := f.(cli.DocGenerationFlag)
		if !ok {
			continue
		}
		usage := d.GetUsage()
		arg := ""
		if d.TakesValue() {
			arg = "value"
			if m := placeholder.FindStringSubmatch(usage); m != nil {
				arg = m[1]
			}
		}
		usage = strings.ReplaceAll(usage, "`", "")
		var names []string
		for _, n := range f.Names() {
			dash := "--"
			if len(n) == 1 {
				dash = "-"
			}
			names = append(names, "\\fB"+roffText(dash+n)+"\\fR")
		}
		head := strings.Join(names, ", ")
		if arg != "" {
			head += " \\fI" + roffText(arg) + "\\fR"
		}
		fmt.Fprintf(w, ".TP\n%s\n%s", head, roffText(usage))
		if def := strings.Trim(d.GetDefaultText(), `"`); d.TakesValue() && def != "" {
			fmt.Fprintf(w, " (default: %s)", roffText(def))
		}
		if env := d.GetEnvVars(); len(env) > 0 {
			fmt.Fprintf(w, "; environment: \\fB%s\\fR", roffText(strings.Join(env, ", ")))
		}
		w.WriteString("\n")
	}
}

// roffText escapes text for a roff line: backslashes and hyphens (which
// roff would otherwise turn into typographic ones, breaking copied
// commands), and a leading dot or quote, which would start a request.
func roffText(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

// roffQuote makes s one argument of a roff request.
func roffQuote(s string) string {
	return `"` + strings.ReplaceAll(roffText(s), `"`, `\(dq`) + `"`
}
