package commands

import (
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"
)

// exitStatus is one row of keytree's exit statuses. `keytree help
// exit-codes` and the EXIT STATUS section of keytree(1) print this table;
// docs/cli-abi.md section 3 gives the same statuses with the same meanings
// (TestExitStatusTopicDocumented), and every cause in full.
type exitStatus struct {
	code    int
	meaning string // as in docs/cli-abi.md's Meaning column
	when    string // the common causes, in a line or two
}

var exitStatuses = []exitStatus{
	{exitOK, "success", "including: nothing to re-encrypt (15588), a --force operation that orphaned nothing, machine-protection already in the state asked for"},
	{exitError, "any other failure", "I/O errors, no home directory, an unknown help topic, internal errors"},
	{exitUsage, "usage error or invalid input", "unknown command or flag, bad flag value, missing or extra arguments, no password and no terminal, passwords that do not match, an invalid name, overlapping directories, a directory given as a file"},
	{exitDecryption, "decryption failed", "15466, 15329, 15320, 15313 (wrong password), 15581 (the key needs a password), a wrong password for a backup file"},
	{exitNotFound, "not found", "15151, 15581 (no such database), no keystore, a missing backup, export or password file, nothing to recover"},
	{exitExists, "already exists", "15578, 15240, 15579, init on an existing keystore, a name that differs only in case from an existing one"},
	{exitCorrupt, "corrupt", "15317, a damaged keystore file, protector secret or value, a link or other non-regular file where a keystore file belongs"},
	{exitLocked, "locked", "another keytree process held the keystore's lock for longer than the lock timeout"},
	{exitPermissions, "unsafe permissions", "a keystore or protector file or directory that group or others can access, a keystore owned by another account (Unix)"},
	{exitRefused, "refused", "15116-15118 (password policy), 15558 (last password), 15580 (key in use), a removal not confirmed at the terminal, other refused changes"},
	{exitOrphaned, "completed, but values were left orphaned", "a --force restore or regenerate that committed and orphaned values: keytree status lists them, smk recover / dmk recover brings them back"},
	{exitProblems, "doctor found problems", "keytree doctor found at least one problem; its report says which"},
	{exitCannotExecute, "`keytree run`: the program cannot be run", "CMD is found but cannot be run; once CMD has started, keytree run exits with CMD's own status (128+N when signal N ended it)"},
	{exitCommandMissing, "`keytree run`: the program was not found", "CMD is not in PATH or does not exist"},
}

// envVar is one environment variable keytree reads. The ones with a flag
// are the global flags' EnvVars (TestEnvironmentTopic); docs/cli-abi.md
// section 7 lists the same variables.
type envVar struct {
	name    string
	flag    string // the global flag it stands for, if any
	meaning string
}

var environment = []envVar{
	{"KEYTREE_DIR", flagKeystore, "the keystore directory"},
	{"KEYTREE_ACCOUNT_DIR", flagAccountDir, "the account protector's directory (its secret, account.key on Unix)"},
	{"KEYTREE_MACHINE_DIR", flagMachineDir, "the machine protector's directory (machine.key on Unix, and one ID.entropy file per keystore)"},
	{"KEYTREE_LOCK_TIMEOUT", flagLockTimeout, "how long to wait for another keytree process's lock on the keystore"},
	{"KEYTREE_ALLOW_OTHER_OWNER", flagAllowOtherOwner, "1 or true: use a keystore that another account owns"},
}

// environmentDefaults is what the default directories are made from, when
// neither a flag nor a KEYTREE_ variable names them.
var environmentDefaults = []envVar{
	{"HOME", "", "the home directory on Unix (USERPROFILE on Windows), for every default"},
	{"XDG_DATA_HOME", "", "the default keystore is $XDG_DATA_HOME/keytree/keystore (~/.local/share/keytree/keystore)"},
	{"XDG_CONFIG_HOME", "", "the default account directory is $XDG_CONFIG_HOME/keytree/account (~/.config/keytree/account)"},
	{"XDG_STATE_HOME", "", "the default machine directory is $XDG_STATE_HOME/keytree/machine (~/.local/state/keytree/machine); as root, /var/lib/keytree/machine"},
	{"LOCALAPPDATA, APPDATA, ProgramData", "", "the Windows defaults: %LOCALAPPDATA%\\keytree\\keystore, %APPDATA%\\keytree\\account, %ProgramData%\\keytree\\machine"},
}

const environmentNotes = `A flag wins over its variable, and the variable over the default. The three
directories must be separate, none inside another. XDG_*, LOCALAPPDATA,
APPDATA and ProgramData are used only if they are absolute paths; macOS uses
~/Library/Application Support/keytree instead. keytree reads no password or
secret value from the environment, and sets no variables.`

// helpTopic is a page of help that is not a command's.
type helpTopic struct {
	name, usage string
	write       func(w io.Writer) error
}

var helpTopics = []helpTopic{
	{"exit-codes", "keytree's exit statuses and what causes them", writeExitCodes},
	{"environment", "the environment variables keytree reads", writeEnvironment},
}

func findTopic(name string) *helpTopic {
	for i := range helpTopics {
		if helpTopics[i].name == name {
			return &helpTopics[i]
		}
	}
	return nil
}

func writeExitCodes(w io.Writer) error {
	var b strings.Builder
	b.WriteString("keytree's exit statuses (docs/cli-abi.md section 3):\n\n")
	for _, s := range exitStatuses {
		writeTerm(&b, fmt.Sprintf("%2d  %s", s.code, s.meaning), s.when)
	}
	b.WriteString("\nThe same message number can come with different statuses: the status says\nwhat kind of failure it is. Status 10 is not an error: the operation is done.\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func writeEnvironment(w io.Writer) error {
	var b strings.Builder
	b.WriteString("Environment variables keytree reads (docs/cli-abi.md section 7):\n\n")
	for _, v := range environment {
		writeTerm(&b, v.name+" (--"+v.flag+")", v.meaning)
	}
	b.WriteString("\nWhen a directory is given neither by flag nor by variable, its default\ncomes from:\n\n")
	for _, v := range environmentDefaults {
		writeTerm(&b, v.name, v.meaning)
	}
	b.WriteString("\n" + environmentNotes + "\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// writeTerm writes one entry of a help topic: the term, and under it its
// text, indented and wrapped.
func writeTerm(b *strings.Builder, term, text string) {
	fmt.Fprintf(b, "  %s\n", term)
	for _, line := range wrap(text, 70) {
		fmt.Fprintf(b, "      %s\n", line)
	}
}

// wrap breaks text into lines of at most width bytes, at spaces.
func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(text) {
		if line != "" && len(line)+1+len(word) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}

// addHelpCommand gives app keytree's help command in place of urfave/cli's
// own, which the app adds when it has none, to add topics: keytree help
// exit-codes, keytree help environment. Anything else is left to
// urfave/cli's help action, so keytree help and keytree help COMMAND are as
// before. urfave/cli adds its --help flag only with its help command: it is
// added here too, where urfave/cli would put it.
func (e *env) addHelpCommand(app *cli.App) {
	app.Commands = append(app.Commands, e.helpCommand())
	app.Flags = append(app.Flags, cli.HelpFlag)
}

func (e *env) helpCommand() *cli.Command {
	var names []string
	for _, t := range helpTopics {
		names = append(names, t.name)
	}
	defaultHelp := cli.NewApp().Action // urfave/cli's help command's action
	return &cli.Command{
		Name:      "help",
		Aliases:   []string{"h"},
		Usage:     "show help for a command, or a topic: " + strings.Join(names, ", "),
		ArgsUsage: "[COMMAND|TOPIC]",
		Action: func(c *cli.Context) error {
			if t := findTopic(c.Args().First()); t != nil {
				if c.Args().Len() > 1 {
					return usagef("help %s takes no further arguments (got %d)", t.name, c.Args().Len()-1)
				}
				return t.write(e.stdout)
			}
			return defaultHelp(c)
		},
		BashComplete: func(c *cli.Context) {
			if c.NArg() > 0 {
				return
			}
			for _, cmd := range c.App.VisibleCommands() {
				fmt.Fprintln(c.App.Writer, cmd.Name)
			}
			for _, t := range helpTopics {
				fmt.Fprintln(c.App.Writer, t.name)
			}
		},
	}
}
