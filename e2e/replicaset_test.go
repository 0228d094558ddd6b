package e2e

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"
)

const replicaSetManifest = `apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: busybox:1.36
`

// rsPod is one pod as the ReplicaSet tests see it.
type rsPod struct {
	name, owner, controller, ready string
}

// podsOf lists the pods labelled app=<app> with their controller and
// readiness, sorted by name.
func (s *server) podsOf(app string) []rsPod {
	out := s.kubectl("get", "pods", "-l", "app="+app, "-o",
		`jsonpath={range .items[*]}{.metadata.name} {.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name} {.metadata.ownerReferences[0].controller} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`)
	var pods []rsPod
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) < 3 {
			continue
		}
		p := rsPod{name: f[0], owner: f[1], controller: f[2]}
		if len(f) > 3 {
			p.ready = f[3]
		}
		pods = append(pods, p)
	}
	sort.Slice(pods, func(i, j int) bool { return pods[i].name < pods[j].name })
	return pods
}

// wantOwnedPods waits until app=<app> has n pods, all controlled by
// ReplicaSet owner, and returns them.
func (s *server) wantOwnedPods(t *testing.T, app, owner string, n int) []rsPod {
	t.Helper()
	var pods []rsPod
	eventually(t, 20*time.Second, func() error {
		pods = s.podsOf(app)
		if len(pods) != n {
			return fmt.Errorf("%d pods, want %d: %v", len(pods), n, pods)
		}
		for _, p := range pods {
			if p.owner != "ReplicaSet/"+owner || p.controller != "true" {
				return fmt.Errorf("pod %s is controlled by %s (controller=%s)", p.name, p.owner, p.controller)
			}
		}
		return nil
	})
	return pods
}

// wantRSColumns waits until `kubectl get rs` shows name with DESIRED
// CURRENT READY.
func (s *server) wantRSColumns(t *testing.T, name string, desired, current, ready int) {
	t.Helper()
	want := []string{name, fmt.Sprint(desired), fmt.Sprint(current), fmt.Sprint(ready)}
	eventually(t, 20*time.Second, func() error {
		out := s.kubectl("get", "rs", name, "--no-headers")
		if f := strings.Fields(out); len(f) < 4 || strings.Join(f[:4], " ") != strings.Join(want, " ") {
			return fmt.Errorf("kubectl get rs: %q, want NAME DESIRED CURRENT READY %v", out, want)
		}
		return nil
	})
}

func (s *server) markPodReady(name string) {
	s.kubectl("patch", "pod", name, "--subresource=status", "--type=merge", "-p",
		`{"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}]}}`)
}

func TestReplicaSetCreatesReplacesAndScalesPods(t *testing.T) {
	s := startServer(t)
	if out, err := s.kubectlIn(replicaSetManifest, "apply", "-f", "-"); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	pods := s.wantOwnedPods(t, "web", "web", 3)
	for _, p := range pods {
		if !strings.HasPrefix(p.name, "web-") {
			t.Errorf("pod %s is not named after its ReplicaSet", p.name)
		}
	}
	s.wantRSColumns(t, "web", 3, 3, 0)
	mustContain(t, s.kubectl("describe", "rs", "web"), "SuccessfulCreate", "Created pod: "+pods[0].name)

	// A fake kubelet marks one pod Ready: READY counts it.
	keep := pods[1].name
	s.markPodReady(keep)
	s.wantRSColumns(t, "web", 3, 3, 1)
	if out := s.kubectl("get", "rs", "web", "-o", "jsonpath={.status.availableReplicas} {.status.fullyLabeledReplicas} {.status.observedGeneration}"); out != "1 3 1" {
		t.Errorf("status available/fullyLabeled/observedGeneration: %q", out)
	}

	// A deleted pod is replaced.
	s.kubectl("delete", "pod", pods[0].name, "--wait=false")
	eventually(t, 20*time.Second, func() error {
		now := s.wantOwnedPods(t, "web", "web", 3)
		for _, p := range now {
			if p.name == pods[0].name {
				return fmt.Errorf("deleted pod %s still listed", p.name)
			}
		}
		return nil
	})

	// Scaling down deletes the least valuable pods: the ready one stays.
	s.kubectl("scale", "rs", "web", "--replicas=1")
	left := s.wantOwnedPods(t, "web", "web", 1)
	if left[0].name != keep {
		t.Errorf("scale down kept %s, want the ready pod %s", left[0].name, keep)
	}
	s.wantRSColumns(t, "web", 1, 1, 1)
	mustContain(t, s.kubectl("describe", "rs", "web"), "SuccessfulDelete", "Deleted pod: ")
}

func TestReplicaSetReleasesAndAdoptsPodsBySelector(t *testing.T) {
	s := startServer(t)
	manifest := strings.Replace(replicaSetManifest, "replicas: 3", "replicas: 1", 1)
	if out, err := s.kubectlIn(manifest, "apply", "-f", "-"); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	first := s.wantOwnedPods(t, "web", "web", 1)[0].name
	s.markPodReady(first)
	s.wantRSColumns(t, "web", 1, 1, 1)

	// Relabelled out of the selector: released (no owner) and replaced.
	s.kubectl("label", "pod", first, "app=other", "--overwrite")
	eventually(t, 20*time.Second, func() error {
		out := s.kubectl("get", "pod", first, "-o", "jsonpath={.metadata.ownerReferences}")
		if strings.TrimSpace(out) != "" && out != "[]" {
			return fmt.Errorf("released pod still has owners %s", out)
		}
		return nil
	})
	replacement := s.wantOwnedPods(t, "web", "web", 1)[0].name
	if replacement == first {
		t.Fatalf("no replacement for the released pod")
	}

	// Labelled back: adopted, and the surplus not-ready replacement goes.
	s.kubectl("label", "pod", first, "app=web", "--overwrite")
	eventually(t, 20*time.Second, func() error {
		pods := s.wantOwnedPods(t, "web", "web", 1)
		if pods[0].name != first {
			return fmt.Errorf("kept %s, want the adopted ready pod %s", pods[0].name, first)
		}
		return nil
	})

	// A bare pod matching the selector is adopted too (and, surplus and
	// not ready, deleted).
	s.kubectl("run", "bare", "--image=busybox:1.36", "--labels=app=web", "--restart=Always")
	eventually(t, 20*time.Second, func() error {
		pods := s.wantOwnedPods(t, "web", "web", 1)
		if pods[0].name != first {
			return fmt.Errorf("kept %s, want %s", pods[0].name, first)
		}
		return nil
	})
	mustContain(t, s.kubectl("describe", "rs", "web"), "Deleted pod: bare")
}
