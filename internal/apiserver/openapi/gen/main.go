// Command gen writes the OpenAPI documents the openapi package serves. It
// runs from go generate in internal/apiserver/openapi, after openapi-gen has
// written the Go schema definitions of the k8s.io/api packages to
// gen/definitions. It builds the operations of every kind of
// kinds.Registry() the way kube-apiserver's installer does, assembles the
// documents with kube-openapi's builders, and writes them gzip-compressed,
// with a manifest, so that the server links none of this.
package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	openapi_v2 "github.com/google/gnostic-models/openapiv2"
	"google.golang.org/protobuf/proto"

	"github.com/mizzen-dev/mizzen/internal/apiserver/kinds"
	"github.com/mizzen-dev/mizzen/internal/apiserver/openapi"
)

func main() {
	out := flag.String("o", "docs", "directory to write the documents and manifest to")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	reg := kinds.Registry()
	apiModule := openapi.APIModuleVersion()
	minor, ok := strings.CutPrefix(apiModule, "v0.")
	if !ok {
		return fmt.Errorf("unexpected k8s.io/api version %q", apiModule)
	}
	version := "v1." + minor // k8s.io/api v0.37.2 is Kubernetes v1.37.2

	v3, err := buildV3(reg, version)
	if err != nil {
		return err
	}
	v2, err := buildV2(reg, version)
	if err != nil {
		return err
	}
	parsed, err := openapi_v2.ParseDocument(v2)
	if err != nil {
		return fmt.Errorf("convert v2 to protobuf: %w", err)
	}
	v2pb, err := proto.Marshal(parsed)
	if err != nil {
		return fmt.Errorf("convert v2 to protobuf: %w", err)
	}

	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	old, err := filepath.Glob(filepath.Join(dir, "*.gz"))
	if err != nil {
		return err
	}
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			return err
		}
	}
	m := openapi.Manifest{APIModule: apiModule, Fingerprint: openapi.Fingerprint(reg), V3: map[string]openapi.File{}}
	paths := make([]string, 0, len(v3))
	for p := range v3 {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if m.V3[p], err = write(dir, strings.ReplaceAll(p, "/", "_")+".json.gz", v3[p]); err != nil {
			return err
		}
	}
	if m.V2, err = write(dir, "v2.json.gz", v2); err != nil {
		return err
	}
	if m.V2Protobuf, err = write(dir, "v2.pb.gz", v2pb); err != nil {
		return err
	}
	manifest, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "manifest.json"), append(manifest, '\n'), 0o644)
}

// write stores body gzip-compressed in dir/name.
func write(dir, name string, body []byte) (openapi.File, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return openapi.File{}, err
	}
	if _, err := zw.Write(body); err != nil {
		return openapi.File{}, err
	}
	if err := zw.Close(); err != nil {
		return openapi.File{}, err
	}
	fmt.Printf("gen: %s: %d bytes, %d compressed\n", name, len(body), buf.Len())
	return openapi.File{Name: name, ETag: openapi.ETag(body), Size: len(body)}, os.WriteFile(filepath.Join(dir, name), buf.Bytes(), 0o644)
}
