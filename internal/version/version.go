// Package version holds the build's version, stamped in by scripts/build
// with -ldflags -X.
package version

import (
	"fmt"
	"runtime"
	"strings"

	apiversion "k8s.io/apimachinery/pkg/version"
)

// Stamped at build time.
var (
	// Version is mizzen's release version.
	Version = "v0.1.0-dev"
	// Commit is the git commit built, with "-dirty" when the tree had
	// uncommitted changes.
	Commit = "unknown"
	// Date is the build date (RFC 3339).
	Date = "unknown"
)

// Kubernetes is the Kubernetes version whose API mizzen serves (that of the
// k8s.io/api module it is built with).
const (
	KubeMajor  = "1"
	KubeMinor  = "37"
	Kubernetes = "v1.37.2+mizzen"
)

// Info returns what /version reports.
func Info() apiversion.Info {
	return apiversion.Info{
		Major:        KubeMajor,
		Minor:        KubeMinor,
		GitVersion:   Kubernetes,
		GitCommit:    strings.TrimSuffix(Commit, "-dirty"),
		GitTreeState: treeState(),
		BuildDate:    Date,
		GoVersion:    runtime.Version(),
		Compiler:     runtime.Compiler,
		Platform:     runtime.GOOS + "/" + runtime.GOARCH,
	}
}

// treeState is "dirty" for a build of a changed tree, as Kubernetes
// reports it.
func treeState() string {
	if strings.HasSuffix(Commit, "-dirty") {
		return "dirty"
	}
	return "clean"
}

// String is the line `mizzen version` prints.
func String() string {
	return fmt.Sprintf("mizzen version %s (%s) built %s, Kubernetes %s, %s %s/%s",
		Version, Commit, Date, Kubernetes, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
