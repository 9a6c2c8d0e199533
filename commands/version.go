package commands

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/urfave/cli/v2"
)

// commit is stamped at build time, as version is (-ldflags "-X
// .../commands.commit=..."); without it, the VCS revision go build recorded.
var commit = ""

// buildInfo is what keytree version prints.
type buildInfo struct {
	version, commit, goVersion, platform string
}

func currentBuild() buildInfo {
	b := buildInfo{version: buildVersion(), commit: commit, goVersion: runtime.Version(),
		platform: runtime.GOOS + "/" + runtime.GOARCH}
	// goreleaser stamps "none" when it cannot read the commit (a snapshot
	// outside a clone); go build's record may still have it.
	if b.commit == "" || b.commit == "none" {
		b.commit = ""
		if bi, ok := debug.ReadBuildInfo(); ok {
			modified := false
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					b.commit = s.Value
				case "vcs.modified":
					modified = s.Value == "true"
				}
			}
			if b.commit != "" && modified {
				b.commit += " (modified)"
			}
		}
	}
	if b.commit == "" {
		b.commit = "unknown"
	}
	return b
}

func (e *env) versionCommand(runF func(*noOptions) error) *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print keytree's version, commit, Go version and platform",
		UsageText: `keytree version

Prints the version (as keytree --version does), then the commit it was built
from, the Go version that built it and the operating system and architecture
it was built for, one a line.

Examples:
   keytree version`,
		Action: action(parseNoArgs, runF, e.versionRun),
	}
}

func (e *env) versionRun(*noOptions) error {
	b := currentBuild()
	_, err := fmt.Fprintf(e.stdout, "keytree version %s\ncommit: %s\ngo: %s\nplatform: %s\n",
		b.version, b.commit, b.goVersion, b.platform)
	return err
}
