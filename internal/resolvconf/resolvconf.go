// Package resolvconf reads the resolver configuration files of resolv.conf(5).
package resolvconf

import (
	"bufio"
	"bytes"
	"os"
	"strings"
)

// Config is what a resolv.conf says.
type Config struct {
	Nameservers []string
	// Searches are the search domains (from the last search or domain
	// line, as the resolver reads them).
	Searches []string
	Options  []string
}

// Read reads the file at path.
func Read(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	return Parse(b), nil
}

// Parse reads nameserver, search (or domain) and options lines, ignoring
// comments (# or ;) and everything else.
func Parse(b []byte) Config {
	var c Config
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexAny(line, "#;"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "nameserver":
			c.Nameservers = append(c.Nameservers, f[1])
		case "search", "domain":
			// The last of search and domain wins, as in the resolver.
			c.Searches = append([]string(nil), f[1:]...)
		case "options":
			c.Options = append(c.Options, f[1:]...)
		}
	}
	return c
}
