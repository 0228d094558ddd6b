package openapi

import "embed"

// The documents are generated in two steps. openapi-gen turns the k8s.io/api
// packages of the served kinds into Go schema definitions under
// gen/definitions; gen builds the documents of kinds.Registry() from them
// with kube-openapi's builders and writes them, gzip-compressed, with a
// manifest, to docs/. Only docs/ is linked into the server.
//
// Run `go generate ./internal/apiserver/openapi` after changing the registry
// or upgrading k8s.io/api; New refuses a registry or a k8s.io/api version
// the documents were not generated for. A kind from a package not listed
// below makes gen fail until the package is added.
//
//go:generate go run k8s.io/kube-openapi/cmd/openapi-gen@v0.0.0-20260821135717-be32def86098 --output-dir gen/definitions --output-pkg github.com/mizzen-dev/mizzen/internal/apiserver/openapi/gen/definitions --output-file zz_generated.openapi.go --report-filename /dev/null k8s.io/api/core/v1 k8s.io/api/apps/v1 k8s.io/api/batch/v1 k8s.io/api/coordination/v1 k8s.io/api/discovery/v1 k8s.io/api/events/v1 k8s.io/api/autoscaling/v1 k8s.io/api/scheduling/v1alpha3 k8s.io/apimachinery/pkg/apis/meta/v1 k8s.io/apimachinery/pkg/runtime k8s.io/apimachinery/pkg/version k8s.io/apimachinery/pkg/util/intstr k8s.io/apimachinery/pkg/api/resource
//go:generate go run ./gen -o docs

// docs holds the generated documents and their manifest.
//
//go:embed docs
var docs embed.FS
