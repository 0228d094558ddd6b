package deploy

import (
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/sirupsen/logrus"
)

// absent, as the wanted content of a file, says there is no such file.
const absent = "\x00absent"

func TestStageWritesBundledManifests(t *testing.T) {
	bundled := fstest.MapFS{
		"coredns.yaml": {Data: []byte("ip: %{CLUSTER_DNS}%\ndomain: %{CLUSTER_DOMAIN}%\nother: %{UNKNOWN}%\n")},
		"extra.yaml":   {Data: []byte("v: 2\n")},
		"notes.txt":    {Data: []byte("not a manifest")},
	}
	vars := map[string]string{"CLUSTER_DNS": "10.43.0.10", "CLUSTER_DOMAIN": "cluster.local"}
	tests := []struct {
		name    string
		before  map[string]string // files in the directory before
		disable []string
		want    map[string]string // absent: no such file
	}{
		{name: "fresh directory", want: map[string]string{
			"coredns.yaml": "ip: 10.43.0.10\ndomain: cluster.local\nother: %{UNKNOWN}%\n", "extra.yaml": "v: 2\n", "notes.txt": absent}},
		{name: "older version overwritten", before: map[string]string{"extra.yaml": "v: 1\n", "mine.yaml": "x: 1\n"},
			want: map[string]string{"extra.yaml": "v: 2\n", "mine.yaml": "x: 1\n"}},
		{name: "emptied file left alone", before: map[string]string{"extra.yaml": ""},
			want: map[string]string{"extra.yaml": ""}},
		{name: "skip marker respected", before: map[string]string{"extra.yaml": "v: 1\n", "extra.yaml.skip": ""},
			want: map[string]string{"extra.yaml": "v: 1\n"}},
		{name: "skip marker without the file", before: map[string]string{"extra.yaml.skip": ""},
			want: map[string]string{"extra.yaml": absent}},
		{name: "disabled removed", before: map[string]string{"coredns.yaml": "old\n"}, disable: []string{"coredns"},
			want: map[string]string{"coredns.yaml": absent, "extra.yaml": "v: 2\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "manifests")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			for name, data := range tt.before {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := Stage(dir, bundled, vars, tt.disable, logrus.NewEntry(logrus.New())); err != nil {
				t.Fatal(err)
			}
			for name, want := range tt.want {
				got, err := os.ReadFile(filepath.Join(dir, name))
				if want == absent {
					if err == nil {
						t.Errorf("%s exists: %q", name, got)
					}
					continue
				}
				if err != nil || string(got) != want {
					t.Errorf("%s = %q (%v), want %q", name, got, err, want)
				}
			}
		})
	}
}

func TestBundledName(t *testing.T) {
	for in, want := range map[string]string{"coredns.yaml": "coredns", "a.b.json": "a.b", "x": "x"} {
		if got := BundledName(in); got != want {
			t.Errorf("BundledName(%q) = %q, want %q", in, got, want)
		}
	}
}
