package main

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"
)

// pauseCommand is what a pod's sandbox container runs (see pause).
func pauseCommand() *cli.Command {
	return &cli.Command{
		Name:   "pause",
		Usage:  "hold a pod sandbox's namespaces (run by the agent inside containers)",
		Hidden: true,
		Action: func(*cli.Context) error {
			os.Exit(pause())
			return nil
		},
	}
}

// pause holds a pod's namespaces: it reaps orphaned children and returns
// 0 on SIGTERM or SIGINT.
func pause() int {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			return 0
		}
		for {
			var ws syscall.WaitStatus
			if pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); pid <= 0 || err != nil {
				break
			}
		}
	}
	return 0
}
