// Command mizzen is a lightweight Kubernetes-compatible cluster in one
// binary: `mizzen server` runs the control plane, `mizzen agent` a node.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/mizzen-dev/mizzen/internal/version"
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == "pause" {
		// A pod sandbox: skip the command line machinery.
		os.Exit(pause())
	}
	os.Exit(run(os.Args))
}

// usageError marks errors in the command line: exit status 2.
type usageError struct{ error }

func run(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	app := newApp()
	err := app.RunContext(ctx, args)
	if err == nil {
		return 0
	}
	fmt.Fprintln(os.Stderr, "mizzen: "+err.Error())
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

func newApp() *cli.App {
	return &cli.App{
		Name:            "mizzen",
		Usage:           "a lightweight Kubernetes-compatible cluster in one binary",
		Version:         version.Version,
		HideHelpCommand: true,
		Flags:           globalFlags(),
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageError{err}
		},
		Commands: []*cli.Command{
			serverCommand(),
			agentCommand(),
			etcdSnapshotCommand(),
			pauseCommand(),
			checkConfigCommand(),
			{
				Name:  "version",
				Usage: "print the version",
				Action: func(*cli.Context) error {
					fmt.Println(version.String())
					return nil
				},
			},
		},
		CommandNotFound: func(c *cli.Context, name string) {
			fmt.Fprintf(os.Stderr, "mizzen: unknown command %q (try --help)\n", name)
			os.Exit(2)
		},
	}
}
