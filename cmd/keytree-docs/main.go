// Command keytree-docs writes the files a keytree release carries besides
// the binary: the manual pages (DIR/man/*.1) and the shell completion
// scripts (DIR/completions), all generated from keytree's command
// definitions. goreleaser runs it before a build (.goreleaser.yaml):
//
//	go run ./cmd/keytree-docs -version 1.2.3 -date 2026-01-31 build
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/keytree-dev/keytree/commands"
)

func main() {
	version := flag.String("version", "", "the version the manual pages name")
	date := flag.String("date", "", "the date the manual pages carry: YYYY-MM-DD, or an RFC 3339 time whose date is taken")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: keytree-docs [-version V] [-date D] DIR\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	dir := flag.Arg(0)
	if t, err := time.Parse(time.RFC3339, *date); err == nil {
		*date = t.UTC().Format(time.DateOnly)
	}
	man, err := commands.WriteManPages(filepath.Join(dir, "man"), commands.ManInfo{Version: *version, Date: *date})
	if err != nil {
		fmt.Fprintf(os.Stderr, "keytree-docs: %v\n", err)
		os.Exit(1)
	}
	comp, err := commands.WriteCompletions(filepath.Join(dir, "completions"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "keytree-docs: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("keytree-docs: %d manual pages in %s, %d completion scripts in %s\n",
		len(man), filepath.Join(dir, "man"), len(comp), filepath.Join(dir, "completions"))
}
