package main

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"
)

// env names a flag's environment variable: MIZZEN_<FLAG>.
func env(name string) []string {
	return []string{"MIZZEN_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))}
}

func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "debug", Usage: "log at debug level", EnvVars: env("debug")},
		&cli.StringFlag{Name: "log-format", Value: "text", Usage: "text or json", EnvVars: env("log-format")},
	}
}

// logger builds the root logger from the global flags.
func logger(c *cli.Context) (*logrus.Logger, error) {
	l := logrus.New()
	switch f := lineageString(c, "log-format"); f {
	case "text":
		l.SetFormatter(&logrus.TextFormatter{FullTimestamp: true})
	case "json":
		l.SetFormatter(&logrus.JSONFormatter{})
	default:
		return nil, usageError{fmt.Errorf("--log-format: %q is not text or json", f)}
	}
	if lineageString(c, "debug") == "true" {
		l.SetLevel(logrus.DebugLevel)
	}
	return l, nil
}

// lineageString returns a global flag's value from the innermost command
// that set it: subcommands repeat the global flags, and their defaults
// would otherwise hide `mizzen --debug server`.
func lineageString(c *cli.Context, name string) string {
	for _, x := range c.Lineage() {
		if x.IsSet(name) {
			return fmt.Sprint(x.Value(name))
		}
	}
	return fmt.Sprint(c.Value(name))
}

func parseAddr(flag, s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, usageError{fmt.Errorf("--%s: %q is not an IP address", flag, s)}
	}
	return a, nil
}

func parsePrefix(flag, s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, usageError{fmt.Errorf("--%s: %q is not a CIDR", flag, s)}
	}
	return p.Masked(), nil
}

func parsePortRange(flag, s string) (int, int, error) {
	lo, hi, ok := strings.Cut(s, "-")
	a, err1 := strconv.Atoi(lo)
	b, err2 := strconv.Atoi(hi)
	if !ok || err1 != nil || err2 != nil || a < 1 || b > 65535 || a > b {
		return 0, 0, usageError{fmt.Errorf("--%s: %q is not a port range like 30000-32767", flag, s)}
	}
	return a, b, nil
}

func parsePort(flag string, n int) error {
	if n < 1 || n > 65535 {
		return usageError{fmt.Errorf("--%s: %d is not a port", flag, n)}
	}
	return nil
}
