package commands

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

const bashCompletion = `# keytree bash completion: source <(keytree completion bash)
_keytree_complete() {
	local cur opts
	COMPREPLY=()
	cur="${COMP_WORDS[COMP_CWORD]}"
	if [[ "$cur" == -* ]]; then
		opts=$("${COMP_WORDS[@]:0:$COMP_CWORD}" "$cur" --generate-bash-completion 2>/dev/null)
	else
		opts=$("${COMP_WORDS[@]:0:$COMP_CWORD}" --generate-bash-completion 2>/dev/null)
	fi
	COMPREPLY=($(compgen -W "${opts}" -- "${cur}"))
	return 0
}
complete -o bashdefault -o default -F _keytree_complete keytree
`

const zshCompletion = `#compdef keytree
# keytree zsh completion: source <(keytree completion zsh)
_keytree() {
	local -a opts
	local cur="${words[-1]}"
	if [[ "$cur" == -* ]]; then
		opts=("${(@f)$(${words[@]:0:#words[@]-1} "$cur" --generate-bash-completion 2>/dev/null)}")
	else
		opts=("${(@f)$(${words[@]:0:#words[@]-1} --generate-bash-completion 2>/dev/null)}")
	fi
	if [[ "${opts[1]}" != "" ]]; then
		_describe 'values' opts
	else
		_files
	fi
}
compdef _keytree keytree
`

func (e *env) completionCommand() *cli.Command {
	return &cli.Command{
		Name:  "completion",
		Usage: "print a shell completion script (bash, zsh or fish)",
		UsageText: `keytree completion bash|zsh|fish

Examples:
   source <(keytree completion bash)
   keytree completion fish > ~/.config/fish/completions/keytree.fish`,
		Action: func(c *cli.Context) error {
			shell, err := oneArg(c, "a shell (bash, zsh or fish)")
			if err != nil {
				return err
			}
			switch shell {
			case "bash":
				_, err = fmt.Fprint(e.stdout, bashCompletion)
			case "zsh":
				_, err = fmt.Fprint(e.stdout, zshCompletion)
			case "fish":
				var script string
				script, err = c.App.ToFishCompletion()
				if err == nil {
					_, err = fmt.Fprint(e.stdout, script)
				}
			default:
				return usagef("no completion for %q: choose bash, zsh or fish", shell)
			}
			return err
		},
	}
}
