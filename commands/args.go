package commands

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// permuteArgs reorders a command line so that urfave/cli v2, which stops
// reading flags at the first positional argument, accepts flags anywhere:
// "credential set NAME --identity ID" as well as "credential set --identity
// ID NAME". Global flags given after a command move to the front. Positional
// arguments keep their order and follow a "--", so one that starts with a
// dash is never read as a flag. Unknown flags stay where they are, for
// urfave/cli to report.
func permuteArgs(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	globals := lookupFlags(app.Flags)
	out := []string{args[0]}
	var globalPart, path, flagPart, positional []string
	cmds := app.Commands
	level := globals
	atTop := true
	passthrough := false
	rest := args[1:]
	for i := 0; i < len(rest); i++ {
		tok := rest[i]
		if tok == "--" {
			positional = append(positional, rest[i+1:]...)
			break
		}
		if len(tok) > 1 && strings.HasPrefix(tok, "-") {
			name := strings.TrimLeft(tok, "-")
			name, _, hasValue := strings.Cut(name, "=")
			takes, known := level[name]
			dst := &flagPart
			if !known && !atTop {
				if g, ok := globals[name]; ok {
					takes, known, dst = g, true, &globalPart
				}
			} else if atTop {
				dst = &globalPart
			}
			*dst = append(*dst, tok)
			if known && takes && !hasValue && i+1 < len(rest) {
				i++
				*dst = append(*dst, rest[i])
			}
			continue
		}
		if len(positional) == 0 && (tok == "help" || tok == "h") && (len(cmds) > 0 || atTop) {
			// urfave/cli adds its help command when the app runs: what
			// follows it names the command to describe.
			path = append(path, flagPart...)
			path = append(path, tok)
			flagPart = nil
			positional = append(positional, rest[i+1:]...)
			break
		}
		if len(positional) == 0 {
			if sub := findCommand(cmds, tok); sub != nil {
				path = append(path, flagPart...)
				path = append(path, tok)
				flagPart = nil
				cmds = sub.Subcommands
				level = lookupFlags(sub.Flags)
				atTop = false
				passthrough = passthroughCommands[sub.Name] && len(path) == 1
				continue
			}
		}
		if passthrough {
			// keytree run: the program and its arguments, its flags
			// included, are the program's.
			positional = append(positional, rest[i:]...)
			break
		}
		positional = append(positional, tok)
	}
	out = append(out, globalPart...)
	out = append(out, path...)
	out = append(out, flagPart...)
	if len(positional) > 0 {
		out = append(out, "--")
		out = append(out, positional...)
	}
	return out
}

// passthroughCommands take another program's command line after their
// own flags: everything from their first argument on is that program's.
var passthroughCommands = map[string]bool{"run": true}

// lookupFlags maps every name of every flag (and the flags urfave/cli adds
// itself) to whether it takes a value.
func lookupFlags(flags []cli.Flag) map[string]bool {
	m := map[string]bool{"help": false, "h": false, "generate-bash-completion": false, "version": false, "v": false}
	for _, f := range flags {
		takes := true
		if d, ok := f.(cli.DocGenerationFlag); ok {
			takes = d.TakesValue()
		}
		for _, n := range f.Names() {
			m[n] = takes
		}
	}
	return m
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}
