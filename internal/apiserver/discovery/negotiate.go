package discovery

import (
	"github.com/munnerz/goautoneg"
)

// format is the discovery document a request negotiated.
type format int

const (
	// formatNone: no clause of the Accept header can be served.
	formatNone format = iota
	// formatLegacy: APIVersions, APIGroupList, APIGroup, APIResourceList.
	formatLegacy
	// formatV2 and formatV2Beta1: the aggregated APIGroupDiscoveryList of
	// apidiscovery.k8s.io/v2 or v2beta1.
	formatV2
	formatV2Beta1
)

// Content types of the aggregated discovery documents. Clients recognise
// the document by these parameters, not by its body.
const (
	contentTypeV2      = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
	contentTypeV2Beta1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
	contentTypeJSON    = "application/json"
)

// negotiate picks the document for an Accept header the way kube-apiserver
// does for /api and /apis: clauses are tried in order of preference; a JSON
// clause naming the aggregated list (g=apidiscovery.k8s.io, v=v2 or v2beta1,
// as=APIGroupDiscoveryList) selects it, a JSON clause without g/v/as selects
// the legacy document, and any other clause (protobuf, YAML, an unknown
// conversion) is skipped. kubectl 1.32 sends the v2 clause, then v2beta1,
// then plain application/json.
func negotiate(accept string) format {
	if accept == "" {
		return formatLegacy
	}
	for _, c := range goautoneg.ParseAccept(accept) {
		if c.Q <= 0 {
			continue
		}
		json := c.Type == "application" && c.SubType == "json" ||
			c.Type == "application" && c.SubType == "*" ||
			c.Type == "*" && c.SubType == "*"
		if !json {
			continue
		}
		g, v, as := c.Params["g"], c.Params["v"], c.Params["as"]
		if g == "" && v == "" && as == "" {
			return formatLegacy
		}
		if g != "apidiscovery.k8s.io" || as != "APIGroupDiscoveryList" {
			continue
		}
		switch v {
		case "v2":
			return formatV2
		case "v2beta1":
			return formatV2Beta1
		}
	}
	return formatNone
}
