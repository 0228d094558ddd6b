package nodestatus

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"reflect"
	"strconv"
	"sync"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/sirupsen/logrus"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	crt "github.com/mizzen-dev/mizzen/internal/runtime"
	"github.com/mizzen-dev/mizzen/internal/runtime/fake"
)

// call is one recorded Client call.
type call struct {
	Method, Kind, Name, Sub string
	PatchType               types.PatchType
	Data                    []byte
	Obj                     runtime.Object // a copy of what was sent
}

// fakeClient is an in-memory API server for Nodes and Leases: it sets
// UIDs and resourceVersions, refuses stale updates with 409 Conflict,
// keeps a Node's status on updates of the main resource and applies
// merge patches to the part the subresource names.
type fakeClient struct {
	mu    sync.Mutex // guards all below
	objs  map[string]runtime.Object
	rv    int
	calls []call
	fail  map[string][]error // "Method Kind" -> errors for the next calls
}

func newFakeClient() *fakeClient {
	return &fakeClient{objs: map[string]runtime.Object{}, fail: map[string][]error{}}
}

func kindOf(obj runtime.Object) (string, schema.GroupResource) {
	switch obj.(type) {
	case *corev1.Node:
		return "Node", schema.GroupResource{Resource: "nodes"}
	case *coordinationv1.Lease:
		return "Lease", schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}
	}
	panic(fmt.Sprintf("fakeClient: unexpected %T", obj))
}

func key(kind, ns, name string) string { return kind + "/" + ns + "/" + name }

// failNext makes the next calls of method on kind return errs in turn.
func (c *fakeClient) failNext(method, kind string, errs ...error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fail[method+" "+kind] = append(c.fail[method+" "+kind], errs...)
}

// record notes a call and returns the error scripted for it. c.mu is held.
func (c *fakeClient) record(cl call) error {
	c.calls = append(c.calls, cl)
	k := cl.Method + " " + cl.Kind
	if errs := c.fail[k]; len(errs) > 0 {
		c.fail[k] = errs[1:]
		return errs[0]
	}
	return nil
}

// callsOf returns the recorded calls of method ("" = any) on kind.
func (c *fakeClient) callsOf(method, kind string) []call {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []call
	for _, cl := range c.calls {
		if (method == "" || cl.Method == method) && cl.Kind == kind {
			out = append(out, cl)
		}
	}
	return out
}

func (c *fakeClient) put(obj runtime.Object) {
	c.mu.Lock()
	defer c.mu.Unlock()
	kind, _ := kindOf(obj)
	m := obj.(metav1.Object)
	c.rv++
	m.SetResourceVersion(strconv.Itoa(c.rv))
	if m.GetUID() == "" {
		m.SetUID(types.UID("uid-" + m.GetName()))
	}
	c.objs[key(kind, m.GetNamespace(), m.GetName())] = obj.DeepCopyObject()
}

// stored returns a copy of a stored object without recording a call.
func (c *fakeClient) stored(t *testing.T, kind, ns, name string) runtime.Object {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	obj, ok := c.objs[key(kind, ns, name)]
	if !ok {
		t.Fatalf("no %s %s/%s stored", kind, ns, name)
	}
	return obj.DeepCopyObject()
}

func (c *fakeClient) node(t *testing.T, name string) *corev1.Node {
	t.Helper()
	return c.stored(t, "Node", "", name).(*corev1.Node)
}

func (c *fakeClient) lease(t *testing.T) *coordinationv1.Lease {
	t.Helper()
	return c.stored(t, "Lease", corev1.NamespaceNodeLease, "n1").(*coordinationv1.Lease)
}

func (c *fakeClient) Get(ctx context.Context, obj runtime.Object, ns, name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	kind, gr := kindOf(obj)
	if err := c.record(call{Method: "Get", Kind: kind, Name: name}); err != nil {
		return err
	}
	stored, ok := c.objs[key(kind, ns, name)]
	if !ok {
		return apierrors.NewNotFound(gr, name)
	}
	reflect.ValueOf(obj).Elem().Set(reflect.ValueOf(stored.DeepCopyObject()).Elem())
	return nil
}

func (c *fakeClient) Create(ctx context.Context, obj runtime.Object) (runtime.Object, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	kind, gr := kindOf(obj)
	m := obj.(metav1.Object)
	if err := c.record(call{Method: "Create", Kind: kind, Name: m.GetName(), Obj: obj.DeepCopyObject()}); err != nil {
		return nil, err
	}
	k := key(kind, m.GetNamespace(), m.GetName())
	if _, ok := c.objs[k]; ok {
		return nil, apierrors.NewAlreadyExists(gr, m.GetName())
	}
	out := obj.DeepCopyObject()
	om := out.(metav1.Object)
	c.rv++
	om.SetResourceVersion(strconv.Itoa(c.rv))
	om.SetUID(types.UID("uid-" + m.GetName()))
	c.objs[k] = out
	return out.DeepCopyObject(), nil
}

func (c *fakeClient) Update(ctx context.Context, obj runtime.Object) (runtime.Object, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	kind, gr := kindOf(obj)
	m := obj.(metav1.Object)
	if err := c.record(call{Method: "Update", Kind: kind, Name: m.GetName(), Obj: obj.DeepCopyObject()}); err != nil {
		return nil, err
	}
	k := key(kind, m.GetNamespace(), m.GetName())
	stored, ok := c.objs[k]
	if !ok {
		return nil, apierrors.NewNotFound(gr, m.GetName())
	}
	sm := stored.(metav1.Object)
	if rv := m.GetResourceVersion(); rv != "" && rv != sm.GetResourceVersion() {
		return nil, apierrors.NewConflict(gr, m.GetName(), fmt.Errorf("the object has been modified"))
	}
	out := obj.DeepCopyObject()
	if n, ok := out.(*corev1.Node); ok {
		n.Status = stored.(*corev1.Node).Status
	}
	om := out.(metav1.Object)
	om.SetUID(sm.GetUID())
	c.rv++
	om.SetResourceVersion(strconv.Itoa(c.rv))
	c.objs[k] = out
	return out.DeepCopyObject(), nil
}

func (c *fakeClient) Patch(ctx context.Context, obj runtime.Object, pt types.PatchType, data []byte, sub string) (runtime.Object, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	kind, gr := kindOf(obj)
	m := obj.(metav1.Object)
	if err := c.record(call{Method: "Patch", Kind: kind, Name: m.GetName(), Sub: sub, PatchType: pt, Data: data}); err != nil {
		return nil, err
	}
	if pt != types.MergePatchType {
		return nil, apierrors.NewBadRequest("unsupported patch type " + string(pt))
	}
	k := key(kind, m.GetNamespace(), m.GetName())
	stored, ok := c.objs[k]
	if !ok {
		return nil, apierrors.NewNotFound(gr, m.GetName())
	}
	var patch map[string]json.RawMessage
	if err := json.Unmarshal(data, &patch); err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	// A subresource takes only its part of the patch; the main resource
	// all but the status.
	for field := range patch {
		if (sub == "status") != (field == "status") {
			delete(patch, field)
		}
	}
	data, _ = json.Marshal(patch)
	orig, _ := json.Marshal(stored)
	merged, err := jsonpatch.MergePatch(orig, data)
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	out := stored.DeepCopyObject()
	reflect.ValueOf(out).Elem().Set(reflect.Zero(reflect.TypeOf(out).Elem()))
	if err := json.Unmarshal(merged, out); err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	c.rv++
	out.(metav1.Object).SetResourceVersion(strconv.Itoa(c.rv))
	c.objs[k] = out
	return out.DeepCopyObject(), nil
}

// fakeHost feeds host facts.
type fakeHost struct {
	mu    sync.Mutex // guards all below
	info  HostInfo
	usage HostUsage
	addr  netip.Addr
}

func newFakeHost() *fakeHost {
	return &fakeHost{
		info: HostInfo{
			CPUs: 4, MemoryBytes: 16318596 * 1024,
			MachineID: "0123456789abcdef0123456789abcdef", SystemUUID: "4c4c4544-0042-3510-8051-b4c04f4e4432",
			BootID: "ede2ad39-71b8-4060-a28e-900dbb7853b7", KernelVersion: "6.1.0-13-amd64",
			OSImage: "Debian GNU/Linux 12 (bookworm)",
		},
		usage: HostUsage{
			MemoryAvailable: 8 << 30, DiskCapacity: 100 << 30, DiskAvailable: 50 << 30,
			PIDs: 300, PIDMax: 4194304,
		},
		addr: netip.MustParseAddr("10.0.0.7"),
	}
}

func (h *fakeHost) Info() (HostInfo, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.info, nil
}

func (h *fakeHost) Usage(string) (HostUsage, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.usage, nil
}

func (h *fakeHost) DefaultAddress() (netip.Addr, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.addr.IsValid() {
		return h.addr, fmt.Errorf("no default route")
	}
	return h.addr, nil
}

func (h *fakeHost) setUsage(f func(*HostUsage)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f(&h.usage)
}

// downRuntime is the fake runtime whose Version fails while down is set,
// as Docker's does when the daemon is unreachable.
type downRuntime struct {
	*fake.Runtime
	mu   sync.Mutex // guards down
	down error
}

func (r *downRuntime) setDown(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.down = err
}

func (r *downRuntime) Version(ctx context.Context) (crt.VersionInfo, error) {
	r.mu.Lock()
	err := r.down
	r.mu.Unlock()
	if err != nil {
		return crt.VersionInfo{}, err
	}
	return r.Runtime.Version(ctx)
}

// recordedEvent is one call of Config.Event.
type recordedEvent struct{ Type, Reason, Message string }

// events records Config.Event calls.
type events struct {
	mu  sync.Mutex // guards got
	got []recordedEvent
}

func (e *events) record(node *corev1.Node, eventType, reason, message string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.got = append(e.got, recordedEvent{eventType, reason, message})
}

func (e *events) reasons() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, ev := range e.got {
		out = append(out, ev.Reason)
	}
	return out
}

func testLog(t *testing.T) *logrus.Entry {
	l := logrus.New()
	l.SetOutput(t.Output())
	l.SetLevel(logrus.DebugLevel)
	return logrus.NewEntry(l).WithField("component", "nodestatus")
}
