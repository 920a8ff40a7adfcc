// Command loract runs the LoRAct demo, benchmarks against peers, and plots.
//
// Usage:
//
//	loract <command> [flags]
//
// Run loract with no arguments for the list of commands. Each command is
// defined in a file of its own that adds itself to commands.
package main

import (
	"fmt"
	"os"
	"sort"
)

// command is one subcommand: run receives the arguments after its name.
type command struct {
	summary string
	run     func(args []string) error
}

// commands is filled by the init functions of the command files.
var commands = map[string]command{}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "help" || os.Args[1] == "-h" || os.Args[1] == "--help" {
		usage()
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	c, ok := commands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "loract: unknown command %q\n\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if err := c.run(os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "loract %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: loract <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(os.Stderr, "  %-8s %s\n", name, commands[name].summary)
	}
	fmt.Fprintln(os.Stderr, "\nRun 'loract <command> -h' for a command's flags.")
}
