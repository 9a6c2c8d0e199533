package commands

import (
	"bufio"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/keytree-dev/keytree/keystore"
)

const flagYes = "yes"

func yesFlag() *cli.BoolFlag {
	return &cli.BoolFlag{Name: flagYes, Aliases: []string{"y"}, Usage: "do not ask for confirmation on the terminal"}
}

// confirm asks a person at the terminal to confirm a removal, unless --yes
// is given (yes). The question and the answer go through the terminal,
// never standard output, which may be a pipe.
//
// Off a terminal (standard input a pipe, a file, cron) it does not ask and
// does not require --yes: scripts that remove things kept working when
// confirmation came in, and a script cannot answer anyway. What protects a
// script is that nothing is removed by a command it did not spell out.
func (e *env) confirm(yes bool, question string) error {
	if yes || !e.stdinTTY || e.tty == nil {
		return nil
	}
	tty, err := e.tty()
	if err != nil {
		return &keystore.Error{Text: fmt.Sprintf("cannot ask for confirmation on the terminal: %v", err), Kind: keystore.ErrRefused,
			Hint: "nothing was removed; pass --yes to remove without asking"}
	}
	defer tty.Close()
	fmt.Fprintf(tty, "%s [y/N] ", question)
	answer, _ := bufio.NewReader(tty).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(answer)) {
	case "y", "yes":
		return nil
	}
	return &keystore.Error{Text: "not confirmed: nothing was removed", Kind: keystore.ErrRefused,
		Hint: "answer y to remove it, or pass --yes to remove without asking"}
}

// remove is the run of a verb that removes something: it asks (confirm,
// unless yes), removes (rm), and says what it removed (done).
func (e *env) remove(yes bool, question string, rm func() error, done string) error {
	if err := e.confirm(yes, question); err != nil {
		return err
	}
	if err := rm(); err != nil {
		return err
	}
	e.say("%s", done)
	return nil
}
