package openapi

import "testing"

func TestAcceptsGzip(t *testing.T) {
	cases := map[string]bool{
		"":                   false,
		"gzip":               true,
		"deflate, gzip":      true,
		"gzip;q=0":           false,
		"gzip; q=0.5":        true,
		"*":                  true,
		"identity":           false,
		"br;q=1, gzip;q=0.0": false,
	}
	for header, want := range cases {
		if got := acceptsGzip(header); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", header, got, want)
		}
	}
}

func TestNegotiate(t *testing.T) {
	offers := []string{mediaJSON, mediaV2Proto, mediaV2ProtoAt}
	cases := map[string]string{
		"":                                  mediaJSON,
		"*/*":                               mediaJSON,
		"application/json":                  mediaJSON,
		mediaV2ProtoAt:                      mediaV2ProtoAt,
		mediaV2Proto + ", application/json": mediaV2Proto,
		"application/yaml":                  "",
		"application/json;q=0, */*;q=0.5":   mediaJSON,
	}
	for accept, want := range cases {
		if got := negotiate(accept, offers...); got != want {
			t.Errorf("negotiate(%q) = %q, want %q", accept, got, want)
		}
	}
}
