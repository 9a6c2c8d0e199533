package commands

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/keystore"
)

const (
	flagEnv      = "env"
	flagEnvFile  = "env-file"
	flagPristine = "pristine"
	flagKeep     = "keep"
)

func (e *env) runCommand(runF func(*runOptions) error) *cli.Command {
	return &cli.Command{
		Name:  "run",
		Usage: "run a program with secrets in its environment or in files",
		UsageText: `keytree run [--env VAR=REF]... [--env-file F]... [--file VAR=REF]...
             [--pristine [--keep VAR]...] [--open-password-file DB=FILE]... -- CMD [ARG]...

Runs CMD with the values that the references name: --env puts a value in
variable VAR, --file writes it to a file that only you can read, in a
private directory (on a tmpfs where there is one: $XDG_RUNTIME_DIR or
/dev/shm), and puts the file's path in VAR. A value with a NUL byte, or one
a program must get exact to the byte (trailing newlines and all), belongs
in a file. A reference is keytree://credential/NAME,
keytree://credential/NAME/identity or keytree://secret/DB/NAME.

--env-file reads VAR=VALUE lines (an env file, as keytree credential import
reads them): a VALUE that starts with keytree:// is a reference, and VAR
gets the value it names; any other VALUE is put in VAR as it is. A variable
may be set only once, by one --env, --file or env-file line.

Every reference is read in one pass, under one shared lock that is released
before CMD starts: a long-running CMD never blocks another keytree. If any
reference names nothing, CMD is not started and keytree exits 4, naming
every missing reference. Otherwise keytree waits for CMD, passes it
SIGINT, SIGTERM, SIGHUP and SIGQUIT, removes the files, and exits with
CMD's status (128+N when a signal N ended it; 127 when CMD is not found,
126 when it cannot be run). A keytree killed while CMD runs leaves the files;
the next keytree run removes them.

CMD gets keytree's environment plus the variables, or, with --pristine, only
the variables and the ones named by --keep. No value is ever put on a
command line. Everything after the first argument that is not a flag of
keytree run is CMD's own, flags included; "--" before CMD is optional.

Examples:
   keytree run --env PGPASSWORD=keytree://credential/backup-db -- pg_dump -U svc_backup app
   keytree run --file TLS_KEY=keytree://secret/web/tls-key -- ./serve --key-env TLS_KEY
   keytree run --pristine --keep PATH --env TOKEN=keytree://secret/ci/token -- ./deploy.sh
   keytree run --env-file app.env -- ./app
   keytree run --env PW=keytree://secret/hr/db --open-password-file hr=pass.txt -- ./report`,
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: flagEnv, Usage: "put the value REF names in variable VAR: `VAR=REF` (repeat for more)"},
			&cli.StringSliceFlag{Name: flagEnvFile, Usage: "set the variables of env file `F`: references resolved, other values as they are (repeat for more)"},
			&cli.StringSliceFlag{Name: flagFile, Usage: "write the value REF names to a private file and put its path in VAR: `VAR=REF` (repeat for more)"},
			&cli.BoolFlag{Name: flagPristine, Usage: "start CMD with no environment but the values' variables and those --keep names"},
			&cli.StringSliceFlag{Name: flagKeep, Usage: "with --pristine, keep variable `VAR` of keytree's environment (repeat for more)"},
			openPasswordsFlag(),
		},
		Action: keystoreAction(e, parseRun, runF, e.runRun),
	}
}

type runOptions struct {
	Env           []binding
	EnvFiles      []string
	Files         []binding
	Pristine      bool
	Keep          []string
	OpenPasswords []dbFile
	Command       []string
}

func parseRun(a *argv) *runOptions {
	opts := &runOptions{Pristine: a.bool(flagPristine), EnvFiles: a.c.StringSlice(flagEnvFile)}
	a.check(func() error {
		opts.Command = a.c.Args().Slice()
		if len(opts.Command) == 0 || opts.Command[0] == "" {
			return usagef("run needs a command to run: keytree run --env VAR=REF -- CMD [ARG]...")
		}
		return nil
	})
	seen := map[string]string{}
	for _, flag := range []string{flagEnv, flagFile} {
		for _, s := range a.c.StringSlice(flag) {
			a.check(func() error {
				b, err := parseBinding(flag, s)
				if err != nil {
					return err
				}
				if prev, ok := seen[envKey(b.Var)]; ok {
					return usagef("variable %s is given twice (--%s and --%s)", b.Var, prev, flag)
				}
				seen[envKey(b.Var)] = flag
				if flag == flagEnv {
					opts.Env = append(opts.Env, b)
				} else {
					opts.Files = append(opts.Files, b)
				}
				return nil
			})
		}
	}
	for _, k := range a.c.StringSlice(flagKeep) {
		a.check(func() error {
			if !opts.Pristine {
				return usagef("--keep is for --pristine: without it, CMD gets all of keytree's environment")
			}
			if err := checkVarName(k); err != nil {
				return usagef("--keep: %v", err)
			}
			opts.Keep = append(opts.Keep, k)
			return nil
		})
	}
	a.check(func() (err error) {
		opts.OpenPasswords, err = parseOpenPasswords(a.c.StringSlice(flagOpenPass))
		return err
	})
	a.check(func() error {
		var stdin []string
		for _, f := range opts.EnvFiles {
			if f == "-" {
				stdin = append(stdin, flagEnvFile)
			}
		}
		return stdinOnce(append(stdin, stdinPasswords(opts.OpenPasswords)...))
	})
	return opts
}

func (e *env) runRun(in *invocation, opts *runOptions) error {
	// The files of a keytree killed while its program ran go first, so
	// that they never outlive the next run by more than its start.
	base, baseErr := runBase()
	if baseErr == nil {
		_, _ = keystore.CleanRunFiles(base) // best effort: --file reports what is wrong with base
	}
	if len(opts.Files) > 0 && baseErr != nil {
		return baseErr
	}
	literals, fromFiles, err := e.readEnvFiles(in, opts)
	if err != nil {
		return err
	}
	opts.Env = append(opts.Env, fromFiles...)
	bindings := append(append([]binding{}, opts.Env...), opts.Files...)
	refs := make([]keystore.Ref, len(bindings))
	for i, b := range bindings {
		refs[i] = b.Ref
	}
	values, err := in.resolve(refs, opts.OpenPasswords)
	if err != nil {
		return err
	}
	environ := childEnviron(os.Environ(), opts.Pristine, opts.Keep)
	for _, l := range literals {
		environ = setEnv(environ, l.Name, l.Value)
	}
	for i, b := range opts.Env {
		if bytes.IndexByte(values[i], 0) >= 0 {
			return &keystore.Error{
				Text: fmt.Sprintf("the value for %s (%s) holds a NUL byte, which no environment variable can", b.Var, b.Ref),
				Kind: keystore.ErrRefused,
				Hint: "give it to the program as a file: --file " + b.Var + "=" + b.Ref.URI(),
			}
		}
		environ = setEnv(environ, b.Var, string(values[i]))
	}
	if len(opts.Files) > 0 {
		files, err := keystore.NewRunFiles(base)
		if err != nil {
			return err
		}
		defer func() {
			if err := files.Remove(); err != nil {
				fmt.Fprintf(e.stderr, "keytree: warning: could not remove the files of this run (the next keytree run removes them): %s\n", escape(err.Error()))
			}
		}()
		for i, b := range opts.Files {
			p, err := files.Write(b.Var, values[len(opts.Env)+i])
			if err != nil {
				return err
			}
			environ = setEnv(environ, b.Var, p)
		}
	}
	clear(values)
	return e.runChild(opts.Command, environ)
}

// runChild starts argv with environ and the standard streams, passes it
// the signals keytree gets, waits for it, and returns its exit status as an
// *childExit.
func (e *env) runChild(argv []string, environ []string) error {
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return startError(argv[0], err)
	}
	cmd := exec.Command(path, argv[1:]...)
	cmd.Args[0] = argv[0]
	cmd.Env = environ
	// An *os.File (a terminal, say) is handed to cmd itself; anything
	// else (a test's buffer) is copied through a pipe.
	cmd.Stdin, cmd.Stdout, cmd.Stderr = e.stdin, e.stdout, e.stderr
	started, stop := relaySignals(cmd)
	defer stop()
	if err := cmd.Start(); err != nil {
		return startError(argv[0], err)
	}
	started()
	err = cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return fmt.Errorf("%s: %w", argv[0], err)
	}
	return &childExit{code: childStatus(cmd.ProcessState)}
}

// startError reports a program that could not be started, with the status
// a shell gives: 127 not found, 126 found but not runnable.
func startError(name string, err error) error {
	code, what := exitCannotExecute, "cannot be run"
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
		code, what = exitCommandMissing, "not found"
	}
	return &childExit{code: code, msg: fmt.Sprintf("%s: %s (%v)", name, what, unwrapExecError(err))}
}

func unwrapExecError(err error) error {
	var ee *exec.Error
	if errors.As(err, &ee) {
		return ee.Err
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// childExit ends keytree with code: the status of the program keytree
// run ran, or the shell's status for one that could not start (msg then
// says why).
type childExit struct {
	code int
	msg  string
}

func (s *childExit) Error() string {
	if s.msg != "" {
		return s.msg
	}
	return fmt.Sprintf("the program exited with status %d", s.code)
}

// childEnviron is the environment CMD starts from: keytree's own, or with
// pristine only the variables keep names.
func childEnviron(environ []string, pristine bool, keep []string) []string {
	if !pristine {
		return append([]string(nil), environ...)
	}
	var out []string
	for _, k := range keep {
		for _, kv := range environ {
			if name, _, ok := strings.Cut(kv, "="); ok && envKey(name) == envKey(k) {
				out = append(out, kv)
			}
		}
	}
	return out
}

// setEnv sets name to value in environ, replacing every entry of that name.
func setEnv(environ []string, name, value string) []string {
	out := environ[:0]
	for _, kv := range environ {
		if n, _, ok := strings.Cut(kv, "="); ok && envKey(n) == envKey(name) {
			continue
		}
		out = append(out, kv)
	}
	return append(out, name+"="+value)
}

// readEnvFiles reads the --env-file files: the lines whose value is a
// reference come back as bindings, the others as literals. A variable that
// --env, --file or another line already sets is refused.
func (e *env) readEnvFiles(in *invocation, opts *runOptions) (literals []formats.EnvEntry, refs []binding, err error) {
	set := map[string]string{}
	for _, b := range opts.Env {
		set[envKey(b.Var)] = "--" + flagEnv
	}
	for _, b := range opts.Files {
		set[envKey(b.Var)] = "--" + flagFile
	}
	for _, path := range opts.EnvFiles {
		data, err := e.readInputFile(flagEnvFile, path, formats.MaxEnvFileSize, &in.stdin)
		if err != nil {
			return nil, nil, err
		}
		entries, err := formats.ParseEnvFile(data)
		clear(data)
		if err != nil {
			return nil, nil, usagef("--%s %s: %v", flagEnvFile, path, err)
		}
		for _, en := range entries {
			where := fmt.Sprintf("%s line %d", path, en.Line)
			if err := checkVarName(en.Name); err != nil {
				return nil, nil, usagef("--%s %s: %v", flagEnvFile, where, err)
			}
			if prev, ok := set[envKey(en.Name)]; ok {
				return nil, nil, usagef("variable %s is given twice (%s and --%s %s)", en.Name, prev, flagEnvFile, where)
			}
			set[envKey(en.Name)] = "--" + flagEnvFile + " " + where
			if !strings.HasPrefix(en.Value, keystore.RefScheme) {
				if strings.HasPrefix(strings.ToLower(en.Value), "keytree:") {
					// KEYTREE://, keytree:/: a reference mistyped, which
					// would reach the program as a literal value.
					return nil, nil, usagef("--%s %s: the value starts like a reference but is not one (a reference starts with %s)", flagEnvFile, where, keystore.RefScheme)
				}
				literals = append(literals, en)
				continue
			}
			r, err := keystore.ParseRef(en.Value)
			if err != nil {
				return nil, nil, usagef("--%s %s: %v", flagEnvFile, where, err)
			}
			refs = append(refs, binding{Var: en.Name, Ref: r})
		}
	}
	return literals, refs, nil
}
