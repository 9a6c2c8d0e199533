package commands

import (
	"github.com/urfave/cli/v2"
)

func (e *env) smkCommand() *cli.Command {
	return group("smk", "manage the service master key",
		e.smkVerifyCommand(),
		e.smkMachineProtectionCommand(),
	)
}

func (e *env) smkVerifyCommand() *cli.Command {
	return &cli.Command{
		Name:  "verify",
		Usage: "check both encryptions of the service master key, re-creating an invalid one",
		UsageText: `keytree smk verify [--json]

Runs the check every command runs when it opens the service master key: the
account encryption, then the machine encryption; one that fails is re-created
from the one that works. If neither works, it fails with error 15466.

Example:
   keytree smk verify`,
		Flags: []cli.Flag{jsonFlag()},
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			ks, err := e.open(c)
			if err != nil {
				return err
			}
			info, err := ks.VerifySMK()
			if err != nil {
				return err
			}
			if c.Bool(flagJSON) {
				return writeJSON(e.stdout, smkInfoJSON(info))
			}
			rows := [][]string{{"service master key:", info.Thumbprint + " (" + string(info.Algorithm) + ")"}}
			return table(e.stdout, nil, append(rows, encryptionLines(info)...))
		},
	}
}

func (e *env) smkMachineProtectionCommand() *cli.Command {
	return &cli.Command{
		Name:  "machine-protection",
		Usage: "turn the machine encryption of the service master key off or on",
		UsageText: `keytree smk machine-protection off|on

With machine protection off, only your account's protector can open the service
master key: a copy of the keystore and the machine's secrets is not enough, but
a lost account secret is no longer repaired from the machine encryption, so keep
a backup (docs/security.md).

Examples:
   keytree smk machine-protection off
   keytree smk machine-protection on`,
		Action: func(c *cli.Context) error {
			arg, err := oneArg(c, "off or on")
			if err != nil {
				return err
			}
			var on bool
			switch arg {
			case "on":
				on = true
			case "off":
			default:
				return usagef("machine-protection takes off or on, not %q", arg)
			}
			ks, err := e.open(c)
			if err != nil {
				return err
			}
			changed, err := ks.SetMachineProtection(on)
			if err != nil {
				return err
			}
			if changed {
				e.say("Machine protection is now %s.", arg)
			} else {
				e.say("Machine protection was already %s.", arg)
			}
			return nil
		},
	}
}
