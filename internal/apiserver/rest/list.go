package rest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"

	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
	"github.com/mizzen-dev/mizzen/internal/cache"
	"github.com/mizzen-dev/mizzen/internal/storage"
)

// ListOptions select the objects of a List.
type ListOptions struct {
	// Namespace limits the list to one namespace ("" for all).
	Namespace            string
	Labels               labels.Selector
	Fields               fields.Selector
	ResourceVersion      string
	ResourceVersionMatch metav1.ResourceVersionMatch
	Limit                int64
	Continue             string
}

// ListResult is one page of a List.
type ListResult struct {
	Items    []runtime.Object
	Revision int64
	Continue string
}

// consistentWait bounds how long a read waits for the cache to catch up.
const consistentWait = 3 * time.Second

// Filter returns a predicate for the objects of k that match the
// selectors. It fails with 400 on a field the kind cannot select on.
func Filter(k *registry.Kind, namespace string, ls labels.Selector, fs fields.Selector) (func(runtime.Object) bool, error) {
	if ls == nil {
		ls = labels.Everything()
	}
	if fs == nil {
		fs = fields.Everything()
	}
	fieldsOf := k.Fields
	if fieldsOf == nil {
		fieldsOf = func(obj runtime.Object) fields.Set {
			m := accessor(obj)
			return fields.Set{"metadata.name": m.GetName(), "metadata.namespace": m.GetNamespace()}
		}
	}
	supported := fieldsOf(k.New())
	for _, r := range fs.Requirements() {
		if _, ok := supported[r.Field]; !ok {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("field label not supported: %s", r.Field))
		}
	}
	everything := ls.Empty() && fs.Empty()
	return func(obj runtime.Object) bool {
		m := accessor(obj)
		if namespace != "" && m.GetNamespace() != namespace {
			return false
		}
		if everything {
			return true
		}
		return ls.Matches(labels.Set(m.GetLabels())) && fs.Matches(fieldsOf(obj))
	}, nil
}

// List returns the objects that match o: from the cache, unless a limit, a
// continue token or an exact resourceVersion asks for etcd.
func (s *Store) List(ctx context.Context, k *registry.Kind, o ListOptions) (ListResult, error) {
	match, err := Filter(k, o.Namespace, o.Labels, o.Fields)
	if err != nil {
		return ListResult{}, err
	}
	fromCache := o.Continue == "" && o.ResourceVersionMatch != metav1.ResourceVersionMatchExact &&
		(o.Limit == 0 || o.ResourceVersion == "0")
	if !fromCache {
		return s.listStorage(ctx, k, o, match)
	}
	res := s.Resource(k)
	if err := s.WaitFresh(ctx, res, o.ResourceVersion); err != nil {
		return ListResult{}, err
	}
	idx, val := IndexHint(o)
	objs, rev := res.List(idx, val)
	out := make([]runtime.Object, 0, len(objs))
	for _, obj := range objs {
		if obj = k.Present(obj); match(obj) {
			out = append(out, obj)
		}
	}
	return ListResult{Items: out, Revision: rev}, nil
}

// WaitFresh waits until the cache can serve a read at resourceVersion rv:
// "" is the latest (consistent) state, "0" any state, N at least N.
func (s *Store) WaitFresh(ctx context.Context, res *cache.Resource, rv string) error {
	var want int64
	switch rv {
	case "0":
		return nil
	case "":
		cur, err := s.st.Revision(ctx)
		if err != nil {
			return apierrors.NewInternalError(err)
		}
		want = cur
	default:
		n, err := strconv.ParseInt(rv, 10, 64)
		if err != nil || n < 0 {
			return apierrors.NewBadRequest(fmt.Sprintf("invalid resource version %q", rv))
		}
		want = n
	}
	wctx, cancel := context.WithTimeout(ctx, consistentWait)
	defer cancel()
	if err := res.WaitForRevision(wctx, want); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if rv != "" {
			err := apierrors.NewTimeoutError(fmt.Sprintf("Too large resource version: %s, current: %d", rv, res.Revision()), 1)
			// client-go recognises this cause and relists from scratch.
			err.ErrStatus.Details.Causes = []metav1.StatusCause{{Type: metav1.CauseTypeResourceVersionTooLarge, Message: "Too large resource version"}}
			return err
		}
		return apierrors.NewTimeoutError(err.Error(), 1)
	}
	return nil
}

// IndexHint picks a cache index that narrows the candidates of o.
func IndexHint(o ListOptions) (string, string) {
	if o.Fields != nil {
		for _, f := range IndexedFields {
			if v, ok := o.Fields.RequiresExactMatch(f); ok {
				return FieldIndex, f + "=" + v
			}
		}
	}
	if o.Labels != nil {
		reqs, _ := o.Labels.Requirements()
		for _, r := range reqs {
			if (r.Operator() == selection.Equals || r.Operator() == selection.DoubleEquals) && r.Values().Len() == 1 {
				return LabelIndex, r.Key() + "=" + r.Values().List()[0]
			}
		}
	}
	if o.Namespace != "" {
		return "namespace", o.Namespace
	}
	return "", ""
}

type continueToken struct {
	APIVersion      string `json:"v"`
	ResourceVersion int64  `json:"rv"`
	StartKey        string `json:"start"`
}

// listStorage pages through etcd at one revision.
func (s *Store) listStorage(ctx context.Context, k *registry.Kind, o ListOptions, match func(runtime.Object) bool) (ListResult, error) {
	gvr := k.Stored().GVR
	root := storage.ResourcePrefix(gvr.Group, gvr.Resource)
	prefix := root
	if k.Namespaced && o.Namespace != "" {
		prefix = storage.NamespacePrefix(gvr.Group, gvr.Resource, o.Namespace)
	}
	from := prefix
	var rev int64
	if o.Continue != "" {
		tok, err := decodeContinue(o.Continue)
		if err != nil {
			return ListResult{}, apierrors.NewBadRequest(fmt.Sprintf("invalid continue token: %v", err))
		}
		rev = tok.ResourceVersion
		from = root + tok.StartKey
		if !strings.HasPrefix(from, prefix) {
			return ListResult{}, apierrors.NewBadRequest("invalid continue token: it does not belong to this list")
		}
	} else if o.ResourceVersionMatch == metav1.ResourceVersionMatchExact || (o.ResourceVersion != "" && o.ResourceVersion != "0") {
		n, err := strconv.ParseInt(o.ResourceVersion, 10, 64)
		if err != nil {
			return ListResult{}, apierrors.NewBadRequest(fmt.Sprintf("invalid resource version %q", o.ResourceVersion))
		}
		if o.ResourceVersionMatch == metav1.ResourceVersionMatchExact {
			rev = n
		}
	}
	decode := Decoder(k)
	out := ListResult{}
	for {
		page := o.Limit - int64(len(out.Items))
		if o.Limit == 0 {
			page = 0
		} else if page < 100 {
			page = 100
		}
		res, err := s.st.List(ctx, prefix, storage.ListOptions{Revision: rev, From: from, Limit: page})
		if err != nil {
			if o.Continue != "" && errors.Is(err, storage.ErrCompacted) {
				return ListResult{}, apierrors.NewResourceExpired("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.")
			}
			return ListResult{}, s.storageError(k, "", err)
		}
		rev = res.Revision
		out.Revision = rev
		for i, kv := range res.KVs {
			obj, err := decode(kv)
			if err != nil {
				continue
			}
			if !match(obj) {
				continue
			}
			out.Items = append(out.Items, obj)
			if o.Limit > 0 && int64(len(out.Items)) == o.Limit {
				if i < len(res.KVs)-1 || res.More {
					out.Continue = encodeContinue(rev, strings.TrimPrefix(kv.Key, root)+"\x00")
				}
				return out, nil
			}
		}
		if !res.More || len(res.KVs) == 0 {
			return out, nil
		}
		from = res.KVs[len(res.KVs)-1].Key + "\x00"
	}
}

func encodeContinue(rev int64, start string) string {
	b, _ := json.Marshal(continueToken{APIVersion: "meta.k8s.io/v1", ResourceVersion: rev, StartKey: start})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeContinue(s string) (continueToken, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return continueToken{}, err
	}
	var t continueToken
	if err := json.Unmarshal(b, &t); err != nil {
		return continueToken{}, err
	}
	if t.APIVersion != "meta.k8s.io/v1" || t.ResourceVersion <= 0 || strings.Contains(t.StartKey, "..") {
		return continueToken{}, fmt.Errorf("malformed token")
	}
	return t, nil
}
