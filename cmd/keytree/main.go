// Command keytree keeps secrets under a SQL Server-style key hierarchy.
// See README.md, or run keytree --help.
package main

import (
	"os"

	"github.com/keytree-dev/keytree/commands"
)

func main() {
	os.Exit(commands.Main(os.Args))
}
