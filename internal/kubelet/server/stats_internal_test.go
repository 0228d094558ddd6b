package server

import (
	"testing"
	"time"
)

// Samples of containers that are no longer sampled (removed ones) are
// dropped, so the rate memory does not grow with every container the node
// ever ran.
func TestRatesForgetContainersNoLongerSampled(t *testing.T) {
	var r rates
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 100 {
		r.cpu(string(rune('a'+i%26))+time.Duration(i).String(), cpuSample{at: t0, total: 1})
	}
	r.cpu("", cpuSample{at: t0, total: 1})
	later := t0.Add(rateMemory + time.Minute)
	if c := r.cpu("", cpuSample{at: later, total: 2}); c.UsageNanoCores == nil {
		t.Errorf("the node's rate is missing: %+v", c)
	}
	if len(r.last) != 1 {
		t.Errorf("%d samples kept, want only the node's", len(r.last))
	}
}
