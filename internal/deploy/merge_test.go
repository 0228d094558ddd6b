package deploy

import (
	"encoding/json"
	"maps"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

func content(t *testing.T, y string) map[string]interface{} {
	t.Helper()
	var m map[string]interface{}
	if err := yaml.Unmarshal([]byte(y), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// applied returns a ConfigMap as the controller would have left it after
// applying file (and then users changing it with edit).
func applied(t *testing.T, file string, edit func(*corev1.ConfigMap)) *corev1.ConfigMap {
	t.Helper()
	want, err := desired(content(t, file), "m.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(untyped(want))
	cm := &corev1.ConfigMap{}
	if err := json.Unmarshal(b, cm); err != nil {
		t.Fatal(err)
	}
	cm.ResourceVersion, cm.UID = "7", "u1"
	if edit != nil {
		edit(cm)
	}
	return cm
}

const cmV1 = `
apiVersion: v1
kind: ConfigMap
metadata: {name: c, namespace: default, labels: {app: x, old: "1"}}
data: {a: "1", b: "2"}
`

func TestMergeKeepsWhatTheFileDoesNotSet(t *testing.T) {
	newCM := func() runtime.Object { return &corev1.ConfigMap{} }
	tests := []struct {
		name        string
		cur         *corev1.ConfigMap
		file        string
		wantChanged bool
		wantData    map[string]string
		wantLabels  map[string]string
	}{
		{name: "unchanged file, no write", cur: applied(t, cmV1, nil), file: cmV1,
			wantData: map[string]string{"a": "1", "b": "2"}, wantLabels: map[string]string{"app": "x", "old": "1", ManagedLabel: "true"}},
		{name: "users' additions are kept", cur: applied(t, cmV1, func(cm *corev1.ConfigMap) { cm.Labels["user"] = "y"; cm.Data["u"] = "9" }), file: cmV1,
			wantData: map[string]string{"a": "1", "b": "2", "u": "9"}, wantLabels: map[string]string{"app": "x", "old": "1", "user": "y", ManagedLabel: "true"}},
		{name: "users' changes to the file's fields are reverted", cur: applied(t, cmV1, func(cm *corev1.ConfigMap) { cm.Data["a"] = "changed" }), file: cmV1,
			wantChanged: true, wantData: map[string]string{"a": "1", "b": "2"}, wantLabels: map[string]string{"app": "x", "old": "1", ManagedLabel: "true"}},
		{name: "fields the file dropped are removed, changed ones set", cur: applied(t, cmV1, func(cm *corev1.ConfigMap) { cm.Labels["user"] = "y" }), file: `
apiVersion: v1
kind: ConfigMap
metadata: {name: c, namespace: default, labels: {app: z}}
data: {a: "10", c: "3"}
`, wantChanged: true, wantData: map[string]string{"a": "10", "c": "3"}, wantLabels: map[string]string{"app": "z", "user": "y", ManagedLabel: "true"}},
		{name: "an object the controller did not create is adopted without removals", cur: &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "default", Labels: map[string]string{"mine": "1"}, ResourceVersion: "3"},
			Data:       map[string]string{"z": "26"}}, file: cmV1,
			wantChanged: true, wantData: map[string]string{"a": "1", "b": "2", "z": "26"}, wantLabels: map[string]string{"app": "x", "old": "1", "mine": "1", ManagedLabel: "true"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := desired(content(t, tt.file), "m.yaml")
			if err != nil {
				t.Fatal(err)
			}
			out, changed, err := merge(tt.cur, want, newCM)
			if err != nil {
				t.Fatal(err)
			}
			if changed != tt.wantChanged {
				t.Errorf("changed = %v, want %v", changed, tt.wantChanged)
			}
			cm := out.(*corev1.ConfigMap)
			if !maps.Equal(cm.Data, tt.wantData) || !maps.Equal(cm.Labels, tt.wantLabels) {
				t.Errorf("data %v labels %v, want %v %v", cm.Data, cm.Labels, tt.wantData, tt.wantLabels)
			}
			if cm.ResourceVersion != tt.cur.ResourceVersion || cm.Annotations[SourceAnnotation] != "m.yaml" {
				t.Errorf("resourceVersion %q source %q: want %q and m.yaml", cm.ResourceVersion, cm.Annotations[SourceAnnotation], tt.cur.ResourceVersion)
			}
			// Applying the same file again changes nothing.
			if _, again, err := merge(cm, want, newCM); err != nil || again {
				t.Errorf("second merge: changed %v, %v", again, err)
			}
		})
	}
}

func TestMergeKeepsAllocatedServiceFields(t *testing.T) {
	file := content(t, `
apiVersion: v1
kind: Service
metadata: {name: s, namespace: default}
spec:
  selector: {app: s}
  ports: [{name: http, port: 80}]
`)
	want, err := desired(file, "s.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(untyped(want))
	cur := &corev1.Service{}
	json.Unmarshal(b, cur)
	cur.Spec.ClusterIP, cur.Spec.ClusterIPs, cur.Spec.Type = "10.43.0.20", []string{"10.43.0.20"}, corev1.ServiceTypeClusterIP
	cur.Spec.Ports[0].Protocol = corev1.ProtocolTCP
	file["spec"].(map[string]interface{})["ports"] = []interface{}{map[string]interface{}{"name": "http", "port": int64(8080)}}
	want, _ = desired(file, "s.yaml")
	out, changed, err := merge(cur, want, func() runtime.Object { return &corev1.Service{} })
	if err != nil || !changed {
		t.Fatalf("changed %v, %v", changed, err)
	}
	svc := out.(*corev1.Service)
	if svc.Spec.ClusterIP != "10.43.0.20" || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 8080 {
		t.Errorf("spec %+v", svc.Spec)
	}
}

// Ports with one number and two protocols (DNS's 53/UDP and 53/TCP) stay
// two ports through updates: strategic merge keys Service ports by port
// alone, which merges them as kubectl apply does (kubernetes#39188).
func TestMergeKeepsPortsThatShareANumber(t *testing.T) {
	const svcYAML = `
apiVersion: v1
kind: Service
metadata: {name: kube-dns, namespace: kube-system, labels: {v: "1"}}
spec:
  clusterIP: 10.43.0.10
  ports:
  - {name: dns, port: 53, protocol: UDP, targetPort: 53}
  - {name: dns-tcp, port: 53, protocol: TCP, targetPort: 53}
`
	newSvc := func() runtime.Object { return &corev1.Service{} }
	for _, tc := range []struct {
		name    string
		adopted bool // created without the controller (no applied annotation)
	}{{"update", false}, {"adopt", true}} {
		t.Run(tc.name, func(t *testing.T) {
			file := content(t, svcYAML)
			want, err := desired(file, "coredns.yaml")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(untyped(want))
			cur := &corev1.Service{}
			json.Unmarshal(b, cur)
			if tc.adopted {
				cur.Labels, cur.Annotations = map[string]string{"v": "1"}, nil
			}
			file["metadata"].(map[string]interface{})["labels"] = map[string]interface{}{"v": "2"}
			file["spec"].(map[string]interface{})["ports"].([]interface{})[1].(map[string]interface{})["targetPort"] = int64(5353)
			want, _ = desired(file, "coredns.yaml")
			out, _, err := merge(cur, want, newSvc)
			if err != nil {
				t.Fatal(err)
			}
			ports := out.(*corev1.Service).Spec.Ports
			if len(ports) != 2 || ports[0].Protocol != corev1.ProtocolUDP || ports[1].Protocol != corev1.ProtocolTCP ||
				ports[0].TargetPort.IntValue() != 53 || ports[1].TargetPort.IntValue() != 5353 {
				t.Errorf("ports after merge: %+v", ports)
			}
		})
	}
}
