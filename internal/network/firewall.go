package network

import (
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"sync"

	"github.com/sirupsen/logrus"
)

// dockerUser is the chain Docker leaves to users for rules that must pass
// before its own FORWARD rules (and its DROP policy).
const dockerUser = "DOCKER-USER"

// ruleComment tags every iptables rule mizzen adds.
const ruleComment = "mizzen"

// iptablesFor returns the iptables binary for cidr's family.
func iptablesFor(cidr netip.Prefix) string {
	if cidr.Addr().Is6() {
		return "ip6tables"
	}
	return "iptables"
}

// iptables runs the binary with -w (wait for the xtables lock).
func iptables(bin string, args ...string) (string, error) {
	out, err := exec.Command(bin, append([]string{"-w"}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", bin, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// chainExists reports whether the filter table has the chain. A missing
// binary counts as no chain (no Docker, hence no DROP policy to pass).
func chainExists(bin, chain string) bool {
	if _, err := exec.LookPath(bin); err != nil {
		return false
	}
	_, err := iptables(bin, "-t", "filter", "-S", chain)
	return err == nil
}

// dockerUserRules returns the rules letting pod traffic through Docker's
// FORWARD DROP: from and to the cluster CIDR.
func dockerUserRules(cidr netip.Prefix) [][]string {
	tag := []string{"-m", "comment", "--comment", ruleComment, "-j", "ACCEPT"}
	return [][]string{
		append([]string{"-s", cidr.String()}, tag...),
		append([]string{"-d", cidr.String()}, tag...),
	}
}

// warnNoIptables warns once per process that iptables is missing.
var warnNoIptables sync.Once

// ensureDockerUser adds the accept rules to DOCKER-USER when that chain
// exists in the current network namespace; it checks each rule first.
func ensureDockerUser(cidr netip.Prefix, log *logrus.Entry) error {
	if !cidr.IsValid() {
		return nil
	}
	bin := iptablesFor(cidr)
	if _, err := exec.LookPath(bin); err != nil {
		// Likely a container image without iptables: if Docker runs on
		// this host with its FORWARD policy DROP, pods' forwarded
		// traffic is dropped and the user must let it through.
		warnNoIptables.Do(func() {
			log.Warnf("%s not found: cannot add accept rules for %s to Docker's %s chain; if Docker's FORWARD policy is DROP here, "+
				"forwarded pod traffic is dropped (install iptables, or add: iptables -I %s -s %s -j ACCEPT; iptables -I %s -d %s -j ACCEPT)",
				bin, cidr, dockerUser, dockerUser, cidr, dockerUser, cidr)
		})
		return nil
	}
	if !chainExists(bin, dockerUser) {
		log.Debugf("No %s chain: no Docker FORWARD rules to pass", dockerUser)
		return nil
	}
	for _, rule := range dockerUserRules(cidr) {
		check := append([]string{"-t", "filter", "-C", dockerUser}, rule...)
		if _, err := iptables(bin, check...); err == nil {
			continue
		}
		insert := append([]string{"-t", "filter", "-I", dockerUser, "1"}, rule...)
		if _, err := iptables(bin, insert...); err != nil {
			return fmt.Errorf("let pod traffic through Docker's FORWARD chain: %w", err)
		}
	}
	// Rules left by an earlier cluster CIDR go, after the new ones are in.
	want := map[string]bool{}
	for _, rule := range dockerUserRules(cidr) {
		want[strings.Join(rule, " ")] = true
	}
	if err := removeTagged(bin, func(rule string) bool { return want[rule] }); err != nil {
		log.WithError(err).Warnf("Remove stale mizzen rules from %s", dockerUser)
	}
	return nil
}

// removeDockerUser deletes every DOCKER-USER rule tagged mizzen, for both
// families.
func removeDockerUser() error {
	var errs []error
	for _, bin := range []string{"iptables", "ip6tables"} {
		if !chainExists(bin, dockerUser) {
			continue
		}
		if err := removeTagged(bin, func(string) bool { return false }); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeTagged deletes the DOCKER-USER rules tagged mizzen except those
// keep reports wanted; keep sees a rule's `iptables -S` fields after the
// chain name, joined by spaces, without quotes.
func removeTagged(bin string, keep func(rule string) bool) error {
	out, err := iptables(bin, "-t", "filter", "-S", dockerUser)
	if err != nil {
		return err
	}
	var errs []error
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "-A" || !tagged(f) {
			continue
		}
		rule := make([]string, 0, len(f)-2)
		for _, field := range f[2:] {
			rule = append(rule, strings.Trim(field, `"`))
		}
		if keep(strings.Join(rule, " ")) {
			continue
		}
		del := append([]string{"-t", "filter", "-D", f[1]}, rule...)
		if _, err := iptables(bin, del...); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// tagged reports whether the fields of an `iptables -S` line carry
// mizzen's comment.
func tagged(fields []string) bool {
	for i := 0; i+1 < len(fields); i++ {
		if fields[i] == "--comment" && strings.Trim(fields[i+1], `"`) == ruleComment {
			return true
		}
	}
	return false
}
