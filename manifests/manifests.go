// Package manifests holds the bundled manifests the server writes into
// DATA/server/manifests on start (see internal/deploy). Each may use
// %{CLUSTER_DNS}% and %{CLUSTER_DOMAIN}%, replaced when written; `mizzen
// server --disable NAME` skips the one named NAME.yaml.
package manifests

import (
	"embed"
	"io/fs"
	"strings"
)

//go:embed *.yaml
var files embed.FS

// FS returns the bundled manifests.
func FS() fs.FS { return files }

// Names returns the names --disable accepts: the bundled files' names
// without extension, sorted.
func Names() []string {
	entries, _ := fs.ReadDir(files, ".")
	var out []string
	for _, e := range entries {
		out = append(out, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	return out
}
