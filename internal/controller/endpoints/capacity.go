package endpoints

import (
	"math"

	corev1 "k8s.io/api/core/v1"
)

// maxCapacity is how many addresses an Endpoints object holds at most;
// beyond it the addresses are truncated and the object annotated.
const maxCapacity = 1000

// overCapacityAnnotation is set to "truncated" on Endpoints that hold
// fewer addresses than the service has.
const overCapacityAnnotation = "endpoints.kubernetes.io/over-capacity"

// truncate cuts subsets down to maxCapacity addresses, as Kubernetes
// does: not-ready addresses go first, then ready ones, each subset keeping
// its share. It reports whether anything was cut.
func truncate(subsets []corev1.EndpointSubset) bool {
	ready, notReady := 0, 0
	for _, ss := range subsets {
		ready += len(ss.Addresses)
		notReady += len(ss.NotReadyAddresses)
	}
	if ready+notReady <= maxCapacity {
		return false
	}
	truncateReady, limit, total := false, maxCapacity-ready, notReady
	if ready > maxCapacity {
		truncateReady, limit, total = true, maxCapacity, ready
	}
	room := limit
	for i := range subsets {
		ss := &subsets[i]
		n := len(ss.NotReadyAddresses)
		if truncateReady {
			n = len(ss.Addresses)
		}
		share := min(int(math.Ceil(float64(n)/float64(total)*float64(limit))), room)
		if truncateReady {
			ss.Addresses = ss.Addresses[:min(share, len(ss.Addresses))]
			ss.NotReadyAddresses = nil
			room -= len(ss.Addresses)
		} else {
			ss.NotReadyAddresses = ss.NotReadyAddresses[:min(share, len(ss.NotReadyAddresses))]
			room -= len(ss.NotReadyAddresses)
		}
	}
	return true
}
