package kubelet

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/mizzen-dev/mizzen/internal/kubelet/volume"
	rt "github.com/mizzen-dev/mizzen/internal/runtime"
	"github.com/mizzen-dev/mizzen/internal/runtime/fake"
)

const (
	testNode  = "node-a"
	testImage = "busybox:1"
)

// fakeClient stands for the API: it applies status patches to the pods it
// holds and hands the result to the kubelet like an informer would.
type fakeClient struct {
	mu      sync.Mutex
	pods    map[types.UID]*corev1.Pod
	objects map[string]runtime.Object // "kind/ns/name" -> ConfigMap or Secret
	deletes []types.UID
	patches int
	bodies  []string // status patches, in order
	k       *Kubelet
}

func newFakeClient() *fakeClient {
	return &fakeClient{pods: map[types.UID]*corev1.Pod{}, objects: map[string]runtime.Object{}}
}

func (c *fakeClient) Get(ctx context.Context, obj runtime.Object, namespace, name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch o := obj.(type) {
	case *corev1.ConfigMap:
		if src, ok := c.objects["cm/"+namespace+"/"+name]; ok {
			src.(*corev1.ConfigMap).DeepCopyInto(o)
			return nil
		}
		return apierrors.NewNotFound(corev1.Resource("configmaps"), name)
	case *corev1.Secret:
		if src, ok := c.objects["secret/"+namespace+"/"+name]; ok {
			src.(*corev1.Secret).DeepCopyInto(o)
			return nil
		}
		return apierrors.NewNotFound(corev1.Resource("secrets"), name)
	}
	return fmt.Errorf("fake client cannot get %T", obj)
}

func (c *fakeClient) Patch(ctx context.Context, obj runtime.Object, pt types.PatchType, data []byte, sub string) (runtime.Object, error) {
	pod := obj.(*corev1.Pod)
	c.mu.Lock()
	cur, ok := c.pods[pod.UID]
	if !ok {
		c.mu.Unlock()
		return nil, apierrors.NewNotFound(corev1.Resource("pods"), pod.Name)
	}
	old := cur
	orig, err := json.Marshal(cur)
	if err != nil {
		c.mu.Unlock()
		return nil, err
	}
	var merged []byte
	switch pt {
	case types.MergePatchType:
		merged, err = jsonpatch.MergePatch(orig, data)
	case types.StrategicMergePatchType:
		merged, err = strategicpatch.StrategicMergePatch(orig, data, &corev1.Pod{})
	default:
		err = fmt.Errorf("fake client cannot apply %s", pt)
	}
	var patched corev1.Pod
	if err == nil {
		err = json.Unmarshal(merged, &patched)
	}
	if err != nil {
		c.mu.Unlock()
		return nil, apierrors.NewBadRequest(err.Error())
	}
	cur = cur.DeepCopy()
	cur.Status = patched.Status
	c.bodies = append(c.bodies, string(data))
	cur.ResourceVersion = fmt.Sprint(c.patches + 100)
	c.patches++
	c.pods[pod.UID] = cur
	k := c.k
	c.mu.Unlock()
	if k != nil {
		k.HandlePod(old, cur)
	}
	return cur, nil
}

func (c *fakeClient) Delete(ctx context.Context, obj runtime.Object, opts *metav1.DeleteOptions) error {
	pod := obj.(*corev1.Pod)
	c.mu.Lock()
	old, ok := c.pods[pod.UID]
	delete(c.pods, pod.UID)
	c.deletes = append(c.deletes, pod.UID)
	k := c.k
	c.mu.Unlock()
	if ok && k != nil {
		k.HandlePod(old, nil)
	}
	return nil
}

// add stores pod and tells the kubelet, as the informer would.
func (c *fakeClient) add(pod *corev1.Pod) {
	c.mu.Lock()
	old := c.pods[pod.UID]
	c.pods[pod.UID] = pod
	k := c.k
	c.mu.Unlock()
	k.HandlePod(old, pod)
}

func (c *fakeClient) pod(uid types.UID) *corev1.Pod {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pods[uid]
}

func (c *fakeClient) list() []*corev1.Pod {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*corev1.Pod
	for _, p := range c.pods {
		out = append(out, p)
	}
	return out
}

// harness is a kubelet on the fake runtime with a fake clock.
type harness struct {
	t      *testing.T
	rt     *fake.Runtime
	client *fakeClient
	clock  *clocktesting.FakeClock
	k      *Kubelet
	cancel context.CancelFunc
	done   chan struct{}
	events chan string
}

func newHarness(t *testing.T, r *fake.Runtime) *harness {
	t.Helper()
	if r == nil {
		r = fake.New()
		if _, err := r.ImportImage(context.Background(), emptyTar(), testImage, rt.ImageConfig{Cmd: []string{"sleep", "inf"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.ImportImage(context.Background(), emptyTar(), "sandbox:1", rt.ImageConfig{}); err != nil {
			t.Fatal(err)
		}
	}
	h := &harness{t: t, rt: r, client: newFakeClient(), clock: clocktesting.NewFakeClock(time.Now()), events: make(chan string, 1000)}
	log := logrus.New()
	log.SetOutput(t.Output())
	log.SetLevel(logrus.DebugLevel)
	h.k = New(Config{
		NodeName: testNode, Runtime: r, Client: h.client,
		Pods: h.client.list, PodsSynced: func() bool { return true },
		HostIP:  "192.0.2.10",
		Volumes: volume.NewManager(t.TempDir(), Sources(h.client), logrus.NewEntry(log)),
		Network: "bridge", SandboxImage: "sandbox:1", ClusterDomain: "cluster.local",
		Event: func(obj runtime.Object, eventType, reason, message string) {
			select {
			case h.events <- reason + ": " + message:
			default:
			}
		},
		Clock: h.clock,
		Log:   logrus.NewEntry(log),
	})
	h.client.k = h.k
	return h
}

func (h *harness) run() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan struct{})
	go func() {
		defer close(h.done)
		if err := h.k.Run(ctx); err != nil {
			h.t.Errorf("kubelet: %v", err)
		}
	}()
	h.t.Cleanup(h.stop)
}

func (h *harness) stop() {
	if h.cancel != nil {
		h.cancel()
		<-h.done
		h.cancel = nil
	}
}

// until steps the fake clock by step until cond holds (or 10 s of real
// time pass: a failure).
func (h *harness) until(step time.Duration, what string, cond func() error) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(5 * time.Millisecond)
		h.clock.Step(step)
	}
	h.t.Fatalf("%s: %v", what, err)
}

func (h *harness) status(uid types.UID) corev1.PodStatus {
	if p := h.client.pod(uid); p != nil {
		return p.Status
	}
	return corev1.PodStatus{}
}

func (h *harness) containers(uid types.UID) []rt.Container {
	cs, err := h.rt.ListContainers(context.Background(), rt.ListFilter{Node: testNode, PodUID: string(uid)})
	if err != nil {
		h.t.Fatal(err)
	}
	return cs
}

func (h *harness) sawEvent(prefix string) bool {
	for {
		select {
		case e := <-h.events:
			if len(e) >= len(prefix) && e[:len(prefix)] == prefix {
				return true
			}
		default:
			return false
		}
	}
}

func testPod(name string, containers ...corev1.Container) *corev1.Pod {
	for i := range containers {
		if containers[i].Image == "" {
			containers[i].Image = testImage
		}
		if containers[i].ImagePullPolicy == "" {
			containers[i].ImagePullPolicy = corev1.PullIfNotPresent
		}
	}
	grace := int64(1)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name), ResourceVersion: "1"},
		Spec: corev1.PodSpec{NodeName: testNode, Containers: containers, RestartPolicy: corev1.RestartPolicyAlways,
			TerminationGracePeriodSeconds: &grace, DNSPolicy: corev1.DNSClusterFirst},
		Status: corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}}},
	}
}

func running(s corev1.PodStatus) error {
	if s.Phase != corev1.PodRunning {
		return fmt.Errorf("phase %q", s.Phase)
	}
	for _, c := range s.ContainerStatuses {
		if c.State.Running == nil {
			return fmt.Errorf("container %s: %+v", c.Name, c.State)
		}
	}
	return nil
}

func condition(s corev1.PodStatus, t corev1.PodConditionType) corev1.ConditionStatus {
	for _, c := range s.Conditions {
		if c.Type == t {
			return c.Status
		}
	}
	return ""
}
