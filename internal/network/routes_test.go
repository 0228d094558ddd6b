package network

import (
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// fakeNode is a Node as the agent publishes it.
func fakeNode(name, podCIDR, internalIP string, annotations map[string]string) *corev1.Node {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations},
		Spec:       corev1.NodeSpec{PodCIDR: podCIDR},
	}
	if podCIDR != "" {
		node.Spec.PodCIDRs = []string{podCIDR}
	}
	if internalIP != "" {
		node.Status.Addresses = []corev1.NodeAddress{
			{Type: corev1.NodeHostName, Address: name},
			{Type: corev1.NodeInternalIP, Address: internalIP},
		}
	}
	return node
}

func TestRemotesPicksRoutableNodes(t *testing.T) {
	mac := map[string]string{AnnotationVTEPMAC: "02:00:00:00:00:02"}
	tests := []struct {
		name    string
		backend Backend
		node    *corev1.Node
		want    string // the remote's pod CIDR, "" if skipped
	}{
		{"vxlan node", BackendVXLAN, fakeNode("n2", "10.42.2.0/24", "192.168.77.2", mac), "10.42.2.0/24"},
		{"ourselves", BackendVXLAN, fakeNode("node1", "10.42.1.0/24", "192.168.77.1", mac), ""},
		{"no pod CIDR yet", BackendVXLAN, fakeNode("n2", "", "192.168.77.2", mac), ""},
		{"no InternalIP", BackendVXLAN, fakeNode("n2", "10.42.2.0/24", "", mac), ""},
		{"public-ip annotation instead of InternalIP", BackendHostGW, fakeNode("n2", "10.42.2.0/24", "", map[string]string{AnnotationPublicIP: "192.168.77.2"}), "10.42.2.0/24"},
		{"vxlan without VTEP MAC", BackendVXLAN, fakeNode("n2", "10.42.2.0/24", "192.168.77.2", nil), ""},
		{"bad VTEP MAC", BackendVXLAN, fakeNode("n2", "10.42.2.0/24", "192.168.77.2", map[string]string{AnnotationVTEPMAC: "nope"}), ""},
		{"host-gw needs no MAC", BackendHostGW, fakeNode("n2", "10.42.2.0/24", "192.168.77.2", nil), "10.42.2.0/24"},
		{"overlapping pod CIDR", BackendHostGW, fakeNode("n2", "10.42.1.0/25", "192.168.77.2", nil), ""},
		{"other family only", BackendHostGW, fakeNode("n2", "fd42::/64", "192.168.77.2", nil), ""},
		{"pod CIDR outside the cluster CIDR", BackendHostGW, fakeNode("n2", "192.168.77.0/24", "192.168.77.2", nil), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := New(Config{
				NodeName: "node1", NodeIP: netip.MustParseAddr("192.168.77.1"),
				PodCIDR: netip.MustParsePrefix("10.42.1.0/24"), ClusterCIDR: netip.MustParsePrefix("10.42.0.0/16"),
				Backend: tt.backend, StateDir: t.TempDir(),
			})
			if err != nil {
				t.Fatal(err)
			}
			got := n.remotes([]*corev1.Node{tt.node, nil})
			switch {
			case tt.want == "" && len(got) != 0:
				t.Fatalf("remotes = %+v, want the node skipped", got)
			case tt.want != "" && (len(got) != 1 || got[0].podCIDR.String() != tt.want):
				t.Fatalf("remotes = %+v, want one with pod CIDR %s", got, tt.want)
			case tt.want != "" && tt.backend == BackendVXLAN && got[0].vtepMAC.String() != "02:00:00:00:00:02":
				t.Fatalf("VTEP MAC = %v", got[0].vtepMAC)
			}
		})
	}
}

func TestAnnotationsPublishBackendVTEPAndPublicIP(t *testing.T) {
	cfg := Config{
		NodeName: "node1", NodeIP: netip.MustParseAddr("192.168.77.1"),
		PodCIDR: netip.MustParsePrefix("10.42.1.0/24"), StateDir: t.TempDir(),
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a := n.Annotations()
	if a[AnnotationBackend] != "vxlan" || a[AnnotationPublicIP] != "192.168.77.1" || a[AnnotationVTEPMAC] != n.VTEPMAC().String() {
		t.Fatalf("Annotations = %v", a)
	}
	mac := n.VTEPMAC()
	if mac[0]&0x01 != 0 || mac[0]&0x02 == 0 {
		t.Fatalf("VTEP MAC %v is not a locally administered unicast address", mac)
	}
	again, _ := New(cfg)
	if again.VTEPMAC().String() != mac.String() {
		t.Fatalf("VTEP MAC changed across New: %v, then %v", mac, again.VTEPMAC())
	}
	cfg.Backend = BackendHostGW
	hostgw, _ := New(cfg)
	if _, ok := hostgw.Annotations()[AnnotationVTEPMAC]; ok {
		t.Fatalf("host-gw publishes a VTEP MAC")
	}
}

func TestTaggedRecognisesMizzenRules(t *testing.T) {
	tests := map[string]bool{
		"-A DOCKER-USER -s 10.42.0.0/16 -m comment --comment mizzen -j ACCEPT":   true,
		`-A DOCKER-USER -d 10.42.0.0/16 -m comment --comment "mizzen" -j ACCEPT`: true,
		"-A DOCKER-USER -j RETURN":                              false,
		"-A DOCKER-USER -m comment --comment mizzenx -j ACCEPT": false,
	}
	for line, want := range tests {
		if got := tagged(strings.Fields(line)); got != want {
			t.Errorf("tagged(%q) = %v, want %v", line, got, want)
		}
	}
}
