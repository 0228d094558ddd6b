// Package storage keeps objects in etcd: one key per object, its value the
// object's JSON, its resourceVersion the key's mod revision. It knows
// nothing of object types; the API server encodes and decodes.
package storage

import (
	"context"
	"errors"
	"fmt"
	"path"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Errors returned by Store; callers turn them into API statuses.
var (
	ErrNotFound  = errors.New("not found")
	ErrExists    = errors.New("already exists")
	ErrConflict  = errors.New("revision conflict")
	ErrCompacted = errors.New("required revision has been compacted")
)

// Prefix is the root of every key mizzen writes.
const Prefix = "/registry/"

// KV is one stored object.
type KV struct {
	Key   string
	Value []byte
	// Revision is the key's mod revision, the object's resourceVersion.
	Revision int64
}

// Store reads and writes objects in etcd with optimistic concurrency.
type Store struct {
	c       *clientv3.Client
	leases  *leases
	observe Observer // nil: requests are not observed
}

// New returns a Store over client.
func New(client *clientv3.Client, opts ...Option) *Store {
	s := &Store{c: client, leases: &leases{c: client}}
	for _, o := range opts {
		o(s)
	}
	return s
}

// ResourcePrefix returns the key prefix of a resource, with a trailing
// slash: /registry/<group>/<resource>/ (group "core" for the legacy group).
func ResourcePrefix(group, resource string) string {
	if group == "" {
		group = "core"
	}
	return Prefix + group + "/" + resource + "/"
}

// Key returns the key of one object; namespace is empty for cluster-scoped
// objects.
func Key(group, resource, namespace, name string) string {
	return ResourcePrefix(group, resource) + path.Join(namespace, name)
}

// NamespacePrefix returns the prefix of a namespace's objects of a resource.
func NamespacePrefix(group, resource, namespace string) string {
	return ResourcePrefix(group, resource) + namespace + "/"
}

// Create stores value at key if nothing is there.
func (s *Store) Create(ctx context.Context, key string, value []byte, opts ...WriteOption) (int64, error) {
	put, err := s.putOptions(ctx, opts)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	resp, err := s.c.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(value), put...)).
		Commit()
	s.observeSince("create", key, start, err)
	if err != nil {
		return 0, fmt.Errorf("create %s: %w", key, err)
	}
	if !resp.Succeeded {
		return 0, ErrExists
	}
	return resp.Header.Revision, nil
}

// Get returns the object at key.
func (s *Store) Get(ctx context.Context, key string) (KV, error) {
	start := time.Now()
	resp, err := s.c.Get(ctx, key)
	s.observeSince("get", key, start, err)
	if err != nil {
		return KV{}, fmt.Errorf("get %s: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return KV{}, ErrNotFound
	}
	kv := resp.Kvs[0]
	return KV{Key: key, Value: kv.Value, Revision: kv.ModRevision}, nil
}

// Update replaces the object at key if its revision is still rev. It
// returns ErrNotFound when the key is gone and ErrConflict, with the current
// object, when it changed since rev.
func (s *Store) Update(ctx context.Context, key string, value []byte, rev int64, opts ...WriteOption) (int64, KV, error) {
	put, err := s.putOptions(ctx, opts)
	if err != nil {
		return 0, KV{}, err
	}
	start := time.Now()
	resp, err := s.c.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
		Then(clientv3.OpPut(key, string(value), put...)).
		Else(clientv3.OpGet(key)).
		Commit()
	s.observeSince("update", key, start, err)
	if err != nil {
		return 0, KV{}, fmt.Errorf("update %s: %w", key, err)
	}
	if resp.Succeeded {
		return resp.Header.Revision, KV{}, nil
	}
	kv, err := current(key, resp)
	return 0, kv, err
}

// Delete removes the object at key if its revision is rev (any revision
// when rev is 0) and returns the deleted object and the delete's revision.
func (s *Store) Delete(ctx context.Context, key string, rev int64) (KV, int64, error) {
	cmp := clientv3.Compare(clientv3.ModRevision(key), ">", 0)
	if rev > 0 {
		cmp = clientv3.Compare(clientv3.ModRevision(key), "=", rev)
	}
	start := time.Now()
	resp, err := s.c.Txn(ctx).
		If(cmp).
		Then(clientv3.OpDelete(key, clientv3.WithPrevKV())).
		Else(clientv3.OpGet(key)).
		Commit()
	s.observeSince("delete", key, start, err)
	if err != nil {
		return KV{}, 0, fmt.Errorf("delete %s: %w", key, err)
	}
	if !resp.Succeeded {
		kv, err := current(key, resp)
		return kv, 0, err
	}
	d := resp.Responses[0].GetResponseDeleteRange()
	if len(d.PrevKvs) == 0 {
		return KV{}, 0, ErrNotFound
	}
	p := d.PrevKvs[0]
	return KV{Key: key, Value: p.Value, Revision: p.ModRevision}, resp.Header.Revision, nil
}

// current interprets the Else branch of a failed conditional transaction.
func current(key string, resp *clientv3.TxnResponse) (KV, error) {
	g := resp.Responses[0].GetResponseRange()
	if len(g.Kvs) == 0 {
		return KV{}, ErrNotFound
	}
	kv := g.Kvs[0]
	return KV{Key: key, Value: kv.Value, Revision: kv.ModRevision}, ErrConflict
}

// ListOptions select a page of a List.
type ListOptions struct {
	// Revision reads at that revision (0: the latest).
	Revision int64
	// From is the first key to return (inclusive); empty starts at prefix.
	From string
	// Limit caps the number of keys (0: no limit).
	Limit int64
}

// ListResult is a page of objects.
type ListResult struct {
	KVs []KV
	// Revision is the revision the page was read at.
	Revision int64
	// More is true when keys after the page remain.
	More bool
}

// List returns the objects under prefix in key order.
func (s *Store) List(ctx context.Context, prefix string, o ListOptions) (ListResult, error) {
	from := prefix
	if o.From != "" {
		from = o.From
	}
	opts := []clientv3.OpOption{clientv3.WithRange(clientv3.GetPrefixRangeEnd(prefix))}
	if o.Revision > 0 {
		opts = append(opts, clientv3.WithRev(o.Revision))
	}
	if o.Limit > 0 {
		opts = append(opts, clientv3.WithLimit(o.Limit))
	}
	start := time.Now()
	resp, err := s.c.Get(ctx, from, opts...)
	s.observeSince("list", prefix, start, err)
	if err != nil {
		if errors.Is(err, rpcCompacted) {
			return ListResult{}, ErrCompacted
		}
		return ListResult{}, fmt.Errorf("list %s: %w", prefix, err)
	}
	out := ListResult{Revision: resp.Header.Revision, More: resp.More, KVs: make([]KV, 0, len(resp.Kvs))}
	if o.Revision > 0 {
		out.Revision = o.Revision
	}
	for _, kv := range resp.Kvs {
		out.KVs = append(out.KVs, KV{Key: string(kv.Key), Value: kv.Value, Revision: kv.ModRevision})
	}
	return out, nil
}

// Revision returns etcd's current revision.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	start := time.Now()
	resp, err := s.c.Get(ctx, Prefix+"revision", clientv3.WithCountOnly())
	s.observeSince("revision", "", start, err)
	if err != nil {
		return 0, fmt.Errorf("read revision: %w", err)
	}
	return resp.Header.Revision, nil
}
