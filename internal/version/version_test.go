package version

import (
	"strings"
	"testing"
)

// TestStampedValuesAreReported checks that what scripts/build stamps in
// reaches `mizzen version` and /version.
func TestStampedValuesAreReported(t *testing.T) {
	for _, tc := range []struct {
		commit, wantCommit, wantTree string
	}{
		{"0123456789ab", "0123456789ab", "clean"},
		{"0123456789ab-dirty", "0123456789ab", "dirty"},
	} {
		t.Run(tc.commit, func(t *testing.T) {
			defer func(v, c, d string) { Version, Commit, Date = v, c, d }(Version, Commit, Date)
			Version, Commit, Date = "v1.2.3", tc.commit, "2026-01-02T03:04:05Z"
			want := "mizzen version v1.2.3 (" + tc.commit + ") built 2026-01-02T03:04:05Z, Kubernetes " + Kubernetes
			if s := String(); !strings.HasPrefix(s, want) {
				t.Errorf("String() = %q, want prefix %q", s, want)
			}
			info := Info()
			if info.GitCommit != tc.wantCommit || info.GitTreeState != tc.wantTree || info.BuildDate != Date {
				t.Errorf("Info() = commit %q tree %q date %q, want %q %q %q", info.GitCommit, info.GitTreeState, info.BuildDate, tc.wantCommit, tc.wantTree, Date)
			}
		})
	}
}
