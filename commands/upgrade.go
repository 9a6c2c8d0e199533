package commands

import (
	"github.com/urfave/cli/v2"
)

func (e *env) upgradeCommand(runF func(*upgradeOptions) error) *cli.Command {
	return &cli.Command{
		Name:  "upgrade",
		Usage: "move a keystore of format 1 to the authenticated format 2",
		UsageText: `keytree upgrade [--open-password-file DB=FILE]...

Keystores made by keytree before format 2 keep working as they are. upgrade
moves one to format 2, in which every value file is bound to the item it
belongs to and smk.toml and database.toml are signed under their keys, so
that a file swapped, copied or edited by someone who holds no key is
reported as corruption, and a keystore rolled back to an older copy is
refused (docs/security.md, section 5).

Every value is encrypted again under the key it has now: one database at a
time, then the service master key's credentials. Each step is atomic; a
step interrupted leaves the keystore as it was before that step, and
running upgrade again goes on. A database whose master key the service
master key does not encrypt needs its password, --open-password-file DB=FILE
for each such database; without them nothing is changed. Keytree versions
before format 2 cannot read an upgraded keystore.

Examples:
   keytree upgrade
   keytree upgrade --open-password-file hr=hr-pass.txt`,
		Flags:  []cli.Flag{openPasswordsFlag()},
		Action: keystoreAction(e, parseUpgrade, runF, e.upgradeRun),
	}
}

type upgradeOptions struct {
	OpenPasswords []dbFile
}

func parseUpgrade(a *argv) *upgradeOptions {
	opts := &upgradeOptions{}
	a.noArgs()
	a.check(func() (err error) {
		opts.OpenPasswords, err = parseOpenPasswords(a.c.StringSlice(flagOpenPass))
		return err
	})
	a.check(func() error { return stdinOnce(stdinPasswords(opts.OpenPasswords)) })
	return opts
}

func (e *env) upgradeRun(in *invocation, opts *upgradeOptions) error {
	passwords := map[string][]byte{}
	for _, p := range opts.OpenPasswords {
		pw, err := in.password(flagOpenPass, p.File, "Password of the master key of database "+p.DB, false)
		if err != nil {
			return err
		}
		passwords[p.DB] = pw
	}
	res, err := in.ks.Upgrade(passwords)
	if len(res.NeedPasswords) > 0 && in.e.stdinTTY && in.e.tty != nil {
		// On a terminal, each database that needs its password is asked
		// for it, once, and the upgrade runs again.
		for _, db := range res.NeedPasswords {
			pw, perr := in.e.promptPassword(passwordRequest{flag: flagOpenPass, prompt: "Password of the master key of database " + db})
			if perr != nil {
				return perr
			}
			passwords[db] = pw
		}
		res, err = in.ks.Upgrade(passwords)
	}
	if err != nil {
		return perDatabaseHint(err)
	}
	if res.Already {
		e.say("The keystore is of format 2 already; nothing was changed.")
		return nil
	}
	e.say("The keystore is of format 2 now: %s re-encrypted bound to their items, %s moved.",
		plural(res.Values, "value"), plural(len(res.Databases), "database"))
	return nil
}

func (e *env) keystoreAcceptRollbackCommand(runF func(*noOptions) error) *cli.Command {
	return &cli.Command{
		Name:  "accept-rollback",
		Usage: "accept a keystore restored from an older copy on purpose",
		UsageText: `keytree keystore accept-rollback

Every commit to a keystore of format 2 is counted in smk.toml, and the
account and machine directories remember the highest count they have seen.
A keystore older than that, because someone replaced it, or part of it, with
an older copy, is refused. If you restored it from an older copy yourself (a
file-level backup, a snapshot), this command makes the account and machine
directories accept it as it is now. One database put back from an older
copy (they remember, for each database, the last change of its master
key) is accepted the same way, and so is one credential or secret (they
remember, for each, the last time it was set or removed). The service
master key must open, and smk.toml must verify under it: an edited
keystore is never accepted.

keytree keystore restore accepts what it restores by itself, once the
restored smk.toml verifies under the service master key.

Example:
   keytree keystore accept-rollback`,
		Action: keystoreAction(e, parseNoArgs, runF, e.acceptRollbackRun),
	}
}

func (e *env) acceptRollbackRun(in *invocation, _ *noOptions) error {
	res, err := in.ks.AcceptRollback()
	if err != nil {
		return err
	}
	for _, db := range res.Databases {
		e.say("Accepted database '%s' as it is now.", escape(db))
	}
	for _, db := range res.Pending {
		e.say("Database '%s' is accepted as it is now, once its password next opens it.", escape(db))
	}
	for _, c := range res.Credentials {
		e.say("Accepted credential '%s' as it is now.", escape(c))
	}
	for _, s := range res.Secrets {
		e.say("Accepted secret '%s' as it is now.", escape(s))
	}
	for _, s := range res.PendingSecrets {
		e.say("Secret '%s' is accepted as it is now, once its password next opens it.", escape(s))
	}
	accepted, before := res.Commit, res.Before
	if accepted >= before && len(res.Databases)+len(res.Pending)+len(res.Credentials)+len(res.Secrets)+len(res.PendingSecrets) > 0 {
		return nil
	}
	if accepted >= before {
		e.say("The keystore is not older than the account and machine directories remember (commit %d); they remember it.", accepted)
		return nil
	}
	e.say("Accepted the keystore at commit %d (the account and machine directories remembered %d).", accepted, before)
	return nil
}
