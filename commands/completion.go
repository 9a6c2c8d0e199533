package commands

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/keytree-dev/keytree/keystore"
)

// completionFlag, given as the last argument, asks keytree for the words
// that can complete the command line before it, one a line. The scripts
// below pass every word before the cursor and then the word being
// completed, even when it is empty: keytree cannot tell "--db" typed whole
// (complete a database name) from "--db" being typed (complete the flag)
// otherwise. urfave/cli's own protocol passed that word only when it starts
// with "-", and had that ambiguity.
const completionFlag = "--generate-bash-completion"

const bashCompletion = `# keytree bash completion: source <(keytree completion bash)
_keytree_complete() {
	local cur opts
	COMPREPLY=()
	cur="${COMP_WORDS[COMP_CWORD]}"
	opts=$("${COMP_WORDS[@]:0:$COMP_CWORD}" "$cur" --generate-bash-completion 2>/dev/null)
	COMPREPLY=($(compgen -W "${opts}" -- "${cur}"))
	# A database name for a secret (DB/) goes on with the secret's name.
	if [[ ${#COMPREPLY[@]} -eq 1 && "${COMPREPLY[0]}" == */ ]]; then
		compopt -o nospace 2>/dev/null
	fi
	return 0
}
complete -o bashdefault -o default -F _keytree_complete keytree
`

const zshCompletion = `#compdef keytree
# keytree zsh completion: source <(keytree completion zsh)
_keytree() {
	local -a opts args
	local cur="${words[CURRENT]}"
	args=("${(@)words[2,CURRENT-1]}")
	opts=("${(@f)$("${words[1]}" "${args[@]}" "$cur" --generate-bash-completion 2>/dev/null)}")
	if [[ -n "${opts[1]}" ]]; then
		compadd -S '' -- "${(@M)opts:#*/}"
		compadd -- "${(@)opts:#*/}"
	else
		_files
	fi
}
compdef _keytree keytree
`

const fishCompletion = `# keytree fish completion: keytree completion fish > ~/.config/fish/completions/keytree.fish
function __keytree_complete
	set -l args (commandline -opc)
	set -l cur (commandline -ct)
	set -l out ($args "$cur" --generate-bash-completion 2>/dev/null)
	if test (count $out) -gt 0
		printf '%s\n' $out
	else
		__fish_complete_path "$cur"
	end
end
complete -c keytree -f -a '(__keytree_complete)'
`

const powershellCompletion = `# keytree PowerShell completion: keytree completion powershell | Out-String | Invoke-Expression
# (or add that line to $PROFILE)
Register-ArgumentCompleter -Native -CommandName keytree, keytree.exe -ScriptBlock {
	param($wordToComplete, $commandAst, $cursorPosition)
	$words = @(foreach ($el in $commandAst.CommandElements) {
		if ($el.Extent.EndOffset -gt $cursorPosition) { break }
		if ($el -is [System.Management.Automation.Language.StringConstantExpressionAst]) { $el.Value } else { $el.Extent.Text }
	})
	# The word under the cursor is not an argument yet.
	if ($wordToComplete -ne '' -and $words.Count -gt 1 -and $words[-1] -eq $wordToComplete) {
		$words = $words[0..($words.Count - 2)]
	}
	$exe = $words[0]
	$rest = @()
	if ($words.Count -gt 1) { $rest = @($words[1..($words.Count - 1)]) }
	$rest += $wordToComplete
	$rest += '--generate-bash-completion'
	& $exe @rest 2>$null | Where-Object { $_ -like "$wordToComplete*" } | ForEach-Object {
		[System.Management.Automation.CompletionResult]::new($_, $_, 'ParameterValue', $_)
	}
}
`

var completionScripts = map[string]string{
	"bash":       bashCompletion,
	"zsh":        zshCompletion,
	"fish":       fishCompletion,
	"powershell": powershellCompletion,
}

func (e *env) completionCommand(runF func(*completionOptions) error) *cli.Command {
	return &cli.Command{
		Name:  "completion",
		Usage: "print a shell completion script (bash, zsh, fish or powershell)",
		UsageText: `keytree completion bash|zsh|fish|powershell

The scripts complete commands, flags (after -), database, secret and
credential names from the keystore (names only, never a value), and the
words some flags take (--by, --algorithm).

Examples:
   source <(keytree completion bash)
   keytree completion fish > ~/.config/fish/completions/keytree.fish
   keytree completion powershell | Out-String | Invoke-Expression`,
		Action: action(parseCompletion, runF, e.completionRun),
	}
}

type completionOptions struct {
	Shell string
}

func parseCompletion(a *argv) *completionOptions {
	shell := a.oneArg("a shell (bash, zsh, fish or powershell)")
	a.check(func() error {
		if _, ok := completionScripts[shell]; !ok {
			return usagef("no completion for %q: choose bash, zsh, fish or powershell", shell)
		}
		return nil
	})
	return &completionOptions{Shell: shell}
}

func (e *env) completionRun(opts *completionOptions) error {
	_, err := fmt.Fprint(e.stdout, completionScripts[opts.Shell])
	return err
}

// complete prints the words that can complete words (the command line
// after "keytree", without completionFlag, its last word the one being
// completed), one a line, for the completion scripts. It walks the command table itself rather than let urfave/cli
// run: urfave/cli offers "help" after every command, reads the flag being
// completed from os.Args, and gives up on a command line with "--" in it,
// which permuteArgs adds before positional arguments.
//
// Names come from the keystore's directory listings (keystore.CredentialNames
// and the like): completion reads no value and no key, takes no lock, and
// never writes. Any error, a missing keystore included, prints nothing, and
// the shell falls back to file names.
func (e *env) complete(app *cli.App, words []string) {
	w := &completer{app: app, out: e.stdout, globals: map[string]string{}}
	w.run(words)
}

type completer struct {
	app *cli.App
	out io.Writer
	// path is the command being completed: "credential get".
	path []string
	cmd  *cli.Command
	// globals holds the global flags given, to find the keystore.
	globals map[string]string
	// prefix is the word being completed, as typed so far.
	prefix string
}

func (w *completer) subcommands() []*cli.Command {
	if w.cmd == nil {
		return w.app.Commands
	}
	return w.cmd.Subcommands
}

// flag finds a flag of the current command, or a global one.
func (w *completer) flag(name string) (cli.Flag, bool) {
	var sets [][]cli.Flag
	if w.cmd != nil {
		sets = append(sets, w.cmd.Flags)
	}
	sets = append(sets, w.app.Flags)
	for i, set := range sets {
		for _, f := range set {
			for _, n := range f.Names() {
				if n == name {
					return f, i == len(sets)-1
				}
			}
		}
	}
	return nil, false
}

func takesValue(f cli.Flag) bool {
	d, ok := f.(cli.DocGenerationFlag)
	return !ok || d.TakesValue()
}

func (w *completer) run(words []string) {
	if len(words) == 0 {
		words = []string{""}
	}
	words, w.prefix = words[:len(words)-1], words[len(words)-1]
	var positional []string
	pending := "" // a flag that takes the next word as its value
	pendingGlobal := false
	dashes := false // after "--", every word is positional
	for _, word := range words {
		switch {
		case pending != "":
			if pendingGlobal {
				w.globals[pending] = word
			}
			pending = ""
		case !dashes && word == "--":
			dashes = true
		case !dashes && len(word) > 1 && strings.HasPrefix(word, "-"):
			name, value, hasValue := strings.Cut(strings.TrimLeft(word, "-"), "=")
			f, global := w.flag(name)
			if f == nil {
				continue
			}
			name = f.Names()[0]
			switch {
			case hasValue && global:
				w.globals[name] = value
			case !hasValue && takesValue(f):
				pending, pendingGlobal = name, global
			case !hasValue && global:
				w.globals[name] = "true"
			}
		default:
			if len(positional) == 0 {
				if sub := findCommand(w.subcommands(), word); sub != nil {
					w.cmd = sub
					w.path = append(w.path, sub.Name)
					continue
				}
			}
			positional = append(positional, word)
		}
	}
	switch {
	case pending != "":
		w.printFlagValues(pending)
	case !dashes && strings.HasPrefix(w.prefix, "-"):
		w.printFlags()
	default:
		w.printArguments(positional)
	}
}

// println prints the candidates that start with the word being completed.
func (w *completer) println(words ...string) {
	for _, s := range words {
		if strings.HasPrefix(s, w.prefix) {
			fmt.Fprintln(w.out, s)
		}
	}
}

// printFlags prints the flags of the current command, and the global
// flags, that start with the word being completed.
func (w *completer) printFlags() {
	var sets [][]cli.Flag
	if w.cmd != nil {
		sets = append(sets, w.cmd.Flags)
	}
	sets = append(sets, w.app.Flags)
	seen := map[string]bool{}
	for _, set := range sets {
		for _, f := range set {
			if vf, ok := f.(cli.VisibleFlag); ok && !vf.IsVisible() {
				continue
			}
			for _, n := range f.Names() {
				s := "--" + n
				if len(n) == 1 {
					s = "-" + n
				}
				if !seen[s] {
					seen[s] = true
					w.println(s)
				}
			}
		}
	}
	// urfave/cli adds --help to every command when it runs.
	for _, s := range []string{"--help", "-h"} {
		if !seen[s] {
			w.println(s)
		}
	}
}

// printFlagValues prints what the flag named can take, where keytree knows:
// database names for --db, the words of --by and --algorithm. For a file or
// a directory it prints nothing, and the shell completes file names.
func (w *completer) printFlagValues(flag string) {
	switch {
	case flag == flagDB && strings.Join(w.path, " ") != "db import":
		w.println(w.databases()...)
	case flag == flagBy:
		w.println("smk", "password")
	case flag == flagAlgorithm:
		w.println("x25519", "mlkem768x25519")
	}
}

// printArguments prints what can come next after the command and its
// positional arguments so far: a verb, a name from the keystore, a word
// the command takes, or else the command's flags.
func (w *completer) printArguments(positional []string) {
	if w.cmd == nil || len(w.cmd.Subcommands) > 0 {
		if len(positional) > 0 {
			return
		}
		for _, c := range w.subcommands() {
			// "help" only at the top: after a command it would take the
			// place of an argument.
			if !c.Hidden && (w.cmd == nil || c.Name != "help") {
				w.println(c.Name)
			}
		}
		return
	}
	if len(positional) == 0 {
		switch strings.Join(w.path, " ") {
		case "help":
			for _, c := range w.app.Commands {
				if !c.Hidden && c.Name != "help" {
					w.println(c.Name)
				}
			}
			for _, t := range helpTopics {
				w.println(t.name)
			}
			return
		case "completion":
			w.println("bash", "zsh", "fish", "powershell")
			return
		case "smk machine-protection":
			w.println("on", "off")
			return
		case "credential get", "credential set", "credential rm":
			w.println(w.credentials()...)
			return
		case "secret get", "secret rm":
			w.println(w.secrets(false)...)
			return
		case "secret set":
			w.println(w.secrets(true)...)
			return
		case "secret list":
			w.println(w.databases()...)
			return
		}
	}
	// Nothing else goes here: offer the command's own flags.
	var flags []string
	for _, f := range w.cmd.Flags {
		if vf, ok := f.(cli.VisibleFlag); ok && !vf.IsVisible() {
			continue
		}
		flags = append(flags, "--"+f.Names()[0])
	}
	w.println(flags...)
}

// keystore opens the keystore the command line names (--keystore and the
// other global flags given before the word being completed, else the
// environment and the defaults), or returns nil.
func (w *completer) keystore() *keystore.Keystore {
	dirs := keystore.Dirs{Keystore: w.globals[flagKeystore], Account: w.globals[flagAccountDir], Machine: w.globals[flagMachineDir]}
	for _, d := range []struct {
		dst *string
		env string
	}{{&dirs.Keystore, "KEYTREE_DIR"}, {&dirs.Account, "KEYTREE_ACCOUNT_DIR"}, {&dirs.Machine, "KEYTREE_MACHINE_DIR"}} {
		if *d.dst == "" {
			*d.dst = os.Getenv(d.env)
		}
	}
	if err := defaultDirs(&dirs); err != nil {
		return nil
	}
	allow := w.globals[flagAllowOtherOwner]
	if allow == "" {
		allow = os.Getenv("KEYTREE_ALLOW_OTHER_OWNER")
	}
	ks, err := keystore.Open(keystore.Options{Dirs: dirs, AllowOtherOwner: allow == "1" || allow == "true"})
	if err != nil {
		return nil
	}
	return ks
}

func (w *completer) credentials() []string {
	if ks := w.keystore(); ks != nil {
		names, _ := ks.CredentialNames()
		return names
	}
	return nil
}

func (w *completer) databases() []string {
	if ks := w.keystore(); ks != nil {
		names, _ := ks.DatabaseNames()
		return names
	}
	return nil
}

// secrets lists every secret as DB/NAME, and with prefixes also every
// database as DB/, to start a new secret's name.
func (w *completer) secrets(prefixes bool) []string {
	ks := w.keystore()
	if ks == nil {
		return nil
	}
	dbs, _ := ks.DatabaseNames()
	var out []string
	for _, db := range dbs {
		if prefixes {
			out = append(out, db+"/")
		}
		names, _ := ks.SecretNames(db)
		for _, n := range names {
			out = append(out, db+"/"+n)
		}
	}
	return out
}
