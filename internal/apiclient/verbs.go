package apiclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
)

// Create stores a new object in obj's namespace and returns what the
// server stored.
func (c *Client) Create(ctx context.Context, obj runtime.Object) (runtime.Object, error) {
	k, m, err := c.target(obj)
	if err != nil {
		return nil, err
	}
	if k.Namespaced && m.GetNamespace() == "" {
		return nil, fmt.Errorf("create %s %q: namespace may not be empty", k.GVR.Resource, m.GetName())
	}
	path, err := resourcePath(k, m.GetNamespace(), "", "")
	if err != nil {
		return nil, err
	}
	return c.write(ctx, k, obj, http.MethodPost, path)
}

// Update replaces an object; a resourceVersion set in obj must still be
// current (409 Conflict otherwise).
func (c *Client) Update(ctx context.Context, obj runtime.Object) (runtime.Object, error) {
	return c.update(ctx, obj, "")
}

// UpdateStatus replaces the status of an object through its /status.
func (c *Client) UpdateStatus(ctx context.Context, obj runtime.Object) (runtime.Object, error) {
	return c.update(ctx, obj, "status")
}

func (c *Client) update(ctx context.Context, obj runtime.Object, sub string) (runtime.Object, error) {
	k, m, err := c.target(obj)
	if err != nil {
		return nil, err
	}
	path, err := objectPath(k, m.GetNamespace(), m.GetName(), sub)
	if err != nil {
		return nil, err
	}
	return c.write(ctx, k, obj, http.MethodPut, path)
}

// write sends obj with method to path and decodes the object returned.
func (c *Client) write(ctx context.Context, k *registry.Kind, obj runtime.Object, method, path string) (runtime.Object, error) {
	body, err := encode(k, obj)
	if err != nil {
		return nil, err
	}
	data, err := c.do(ctx, request{method: method, path: path, body: body, contentType: "application/json"})
	if err != nil {
		return nil, err
	}
	return c.decodeResult(k, obj, method, path, data)
}

func (c *Client) decodeResult(k *registry.Kind, example runtime.Object, method, path string, data []byte) (runtime.Object, error) {
	out, err := decodeNew(data, example)
	if err != nil {
		return nil, fmt.Errorf("%s %s: decode %s: %w", method, path, k.Kind, err)
	}
	out.GetObjectKind().SetGroupVersionKind(k.GroupVersionKind())
	return out, nil
}

// Delete deletes the object obj names (kind, namespace, name); opts may be
// nil.
func (c *Client) Delete(ctx context.Context, obj runtime.Object, opts *metav1.DeleteOptions) error {
	k, m, err := c.target(obj)
	if err != nil {
		return err
	}
	path, err := objectPath(k, m.GetNamespace(), m.GetName(), "")
	if err != nil {
		return err
	}
	rq := request{method: http.MethodDelete, path: path}
	if opts != nil {
		o := *opts
		o.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "DeleteOptions"}
		if rq.body, err = json.Marshal(&o); err != nil {
			return fmt.Errorf("DELETE %s: encode options: %w", path, err)
		}
		rq.contentType = "application/json"
	}
	_, err = c.do(ctx, rq)
	return err
}

// Bind assigns pod to node through pods/binding; the binding carries the
// pod's UID, so a pod recreated under the same name is not bound.
func (c *Client) Bind(ctx context.Context, pod *corev1.Pod, node string) error {
	k, err := c.kindOf(pod)
	if err != nil {
		return err
	}
	path, err := objectPath(k, pod.Namespace, pod.Name, "binding")
	if err != nil {
		return err
	}
	b := &corev1.Binding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Binding"},
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: node},
	}
	body, err := json.Marshal(b)
	if err != nil {
		return fmt.Errorf("POST %s: encode binding: %w", path, err)
	}
	_, err = c.do(ctx, request{method: http.MethodPost, path: path, body: body, contentType: "application/json"})
	return err
}

// Get fills obj (a pointer of the kind's type, e.g. &corev1.ConfigMap{})
// with the object namespace/name; anything obj held is replaced.
func (c *Client) Get(ctx context.Context, obj runtime.Object, namespace, name string) error {
	k, err := c.kindOf(obj)
	if err != nil {
		return err
	}
	path, err := objectPath(k, namespace, name, "")
	if err != nil {
		return err
	}
	data, err := c.do(ctx, request{method: http.MethodGet, path: path})
	if err != nil {
		return err
	}
	if err := decodeInto(data, obj); err != nil {
		return fmt.Errorf("GET %s: decode %s: %w", path, k.Kind, err)
	}
	obj.GetObjectKind().SetGroupVersionKind(k.GroupVersionKind())
	return nil
}

// Patch sends a patch of type pt (types.MergePatchType,
// StrategicMergePatchType or JSONPatchType) to the object obj names (type,
// namespace, name), or to its subresource sub ("" or "status"), and
// returns the patched object.
func (c *Client) Patch(ctx context.Context, obj runtime.Object, pt types.PatchType, data []byte, sub string) (runtime.Object, error) {
	k, m, err := c.target(obj)
	if err != nil {
		return nil, err
	}
	switch pt {
	case types.MergePatchType, types.StrategicMergePatchType, types.JSONPatchType:
	default:
		return nil, fmt.Errorf("patch %s %q: unsupported patch type %q", k.GVR.Resource, m.GetName(), pt)
	}
	path, err := objectPath(k, m.GetNamespace(), m.GetName(), sub)
	if err != nil {
		return nil, err
	}
	out, err := c.do(ctx, request{method: http.MethodPatch, path: path, body: data, contentType: string(pt)})
	if err != nil {
		return nil, err
	}
	return c.decodeResult(k, obj, http.MethodPatch, path, out)
}

// List fills list (e.g. &corev1.PodList{}) with the objects of namespace
// ("" for all namespaces, or a cluster-scoped kind) matching opts.
func (c *Client) List(ctx context.Context, list runtime.Object, namespace string, opts metav1.ListOptions) error {
	k, err := c.kindOfList(list)
	if err != nil {
		return err
	}
	path, err := resourcePath(k, namespace, "", "")
	if err != nil {
		return err
	}
	opts.Watch = false
	data, err := c.do(ctx, request{method: http.MethodGet, path: path, query: listQuery(opts)})
	if err != nil {
		return err
	}
	if err := decodeInto(data, list); err != nil {
		return fmt.Errorf("GET %s: decode %s: %w", path, k.ListKind, err)
	}
	list.GetObjectKind().SetGroupVersionKind(k.GVR.GroupVersion().WithKind(k.ListKind))
	gvk := k.GroupVersionKind()
	return meta.EachListItem(list, func(o runtime.Object) error {
		o.GetObjectKind().SetGroupVersionKind(gvk)
		return nil
	})
}

// listQuery encodes the list and watch options the API server reads.
func listQuery(o metav1.ListOptions) url.Values {
	q := url.Values{}
	set := func(key, v string) {
		if v != "" {
			q.Set(key, v)
		}
	}
	set("labelSelector", o.LabelSelector)
	set("fieldSelector", o.FieldSelector)
	set("resourceVersion", o.ResourceVersion)
	set("resourceVersionMatch", string(o.ResourceVersionMatch))
	set("continue", o.Continue)
	if o.Limit > 0 {
		q.Set("limit", strconv.FormatInt(o.Limit, 10))
	}
	if o.Watch {
		q.Set("watch", "true")
	}
	if o.AllowWatchBookmarks {
		q.Set("allowWatchBookmarks", "true")
	}
	if o.TimeoutSeconds != nil {
		q.Set("timeoutSeconds", strconv.FormatInt(*o.TimeoutSeconds, 10))
	}
	if o.SendInitialEvents != nil {
		q.Set("sendInitialEvents", strconv.FormatBool(*o.SendInitialEvents))
	}
	return q
}

// Raw performs an arbitrary request to path (absolute, e.g. "/version",
// and may carry a query) and returns the response body. contentType is
// sent when body is not nil.
func (c *Client) Raw(ctx context.Context, method, path string, body io.Reader, contentType string) ([]byte, error) {
	rq := request{method: method, path: path}
	if p, q, ok := strings.Cut(path, "?"); ok {
		values, err := url.ParseQuery(q)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", method, path, err)
		}
		rq.path, rq.query = p, values
	}
	if body != nil {
		data, err := io.ReadAll(body)
		if err != nil {
			return nil, fmt.Errorf("%s %s: read body: %w", method, path, err)
		}
		rq.body, rq.contentType = data, contentType
	}
	return c.do(ctx, rq)
}
