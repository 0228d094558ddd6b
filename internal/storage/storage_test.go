package storage_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/mizzen-dev/mizzen/internal/datastore"
	"github.com/mizzen-dev/mizzen/internal/etcdtest"
	"github.com/mizzen-dev/mizzen/internal/storage"
)

var ds *datastore.Datastore

func TestMain(m *testing.M) { etcdtest.Main(m, &ds) }

func newStore(t *testing.T) (*storage.Store, string) {
	return storage.New(ds.Client), storage.ResourcePrefix("test", t.Name())
}

func TestCreateRefusesExistingKey(t *testing.T) {
	st, prefix := newStore(t)
	ctx := context.Background()
	rev, err := st.Create(ctx, prefix+"a", []byte("1"))
	if err != nil || rev == 0 {
		t.Fatalf("create: rev %d, %v", rev, err)
	}
	if _, err := st.Create(ctx, prefix+"a", []byte("2")); !errors.Is(err, storage.ErrExists) {
		t.Fatalf("second create: got %v, want ErrExists", err)
	}
	kv, err := st.Get(ctx, prefix+"a")
	if err != nil || string(kv.Value) != "1" || kv.Revision != rev {
		t.Fatalf("get: %+v %v", kv, err)
	}
}

func TestUpdateAndDeleteCheckRevision(t *testing.T) {
	st, prefix := newStore(t)
	ctx := context.Background()
	rev, _ := st.Create(ctx, prefix+"a", []byte("1"))
	rev2, _, err := st.Update(ctx, prefix+"a", []byte("2"), rev)
	if err != nil || rev2 <= rev {
		t.Fatalf("update: %d %v", rev2, err)
	}
	_, cur, err := st.Update(ctx, prefix+"a", []byte("3"), rev)
	if !errors.Is(err, storage.ErrConflict) || string(cur.Value) != "2" || cur.Revision != rev2 {
		t.Fatalf("stale update: %+v %v", cur, err)
	}
	if _, _, err := st.Delete(ctx, prefix+"a", rev); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("stale delete: %v", err)
	}
	old, _, err := st.Delete(ctx, prefix+"a", rev2)
	if err != nil || string(old.Value) != "2" {
		t.Fatalf("delete: %+v %v", old, err)
	}
	if _, err := st.Get(ctx, prefix+"a"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
	if _, _, err := st.Update(ctx, prefix+"a", []byte("x"), rev2); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("update of missing key: %v", err)
	}
}

func TestListPagesAtOneRevision(t *testing.T) {
	st, prefix := newStore(t)
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		st.Create(ctx, prefix+strconv.Itoa(i), []byte("v"))
	}
	page, err := st.List(ctx, prefix, storage.ListOptions{Limit: 2})
	if err != nil || len(page.KVs) != 2 || !page.More {
		t.Fatalf("first page: %+v %v", page, err)
	}
	st.Create(ctx, prefix+"9", []byte("late"))
	rest, err := st.List(ctx, prefix, storage.ListOptions{Revision: page.Revision, From: page.KVs[1].Key + "\x00"})
	if err != nil || len(rest.KVs) != 3 || rest.More {
		t.Fatalf("rest at revision %d: %d keys, %v", page.Revision, len(rest.KVs), err)
	}
}

func TestWatchFromRevisionThenGoneAfterCompaction(t *testing.T) {
	st, prefix := newStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r1, _ := st.Create(ctx, prefix+"a", []byte("1"))
	r2, _, _ := st.Update(ctx, prefix+"a", []byte("2"), r1)
	st.Delete(ctx, prefix+"a", r2)

	w := st.Watch(ctx, prefix, r1)
	want := []storage.EventType{storage.Put, storage.Put, storage.Delete}
	for i, typ := range want {
		ev := <-w
		if ev.Type != typ {
			t.Fatalf("event %d: type %v, want %v (%+v)", i, ev.Type, typ, ev)
		}
	}
	cur, _ := st.Revision(ctx)
	if _, err := ds.Client.Compact(ctx, cur); err != nil {
		t.Fatal(err)
	}
	ev := <-st.Watch(ctx, prefix, r1)
	if ev.Type != storage.Error || !errors.Is(ev.Err, storage.ErrCompacted) {
		t.Fatalf("watch from compacted revision: %+v", ev)
	}
}

// TestNoLostUpdates runs 20 writers doing read-modify-write increments with
// revision preconditions: every increment must land exactly once.
func TestNoLostUpdates(t *testing.T) {
	st, prefix := newStore(t)
	ctx := context.Background()
	key := prefix + "counter"
	st.Create(ctx, key, []byte("0"))
	const writers, each = 20, 10
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; {
				kv, err := st.Get(ctx, key)
				if err != nil {
					t.Error(err)
					return
				}
				n, _ := strconv.Atoi(string(kv.Value))
				_, _, err = st.Update(ctx, key, []byte(strconv.Itoa(n+1)), kv.Revision)
				if errors.Is(err, storage.ErrConflict) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				i++
			}
		}()
	}
	wg.Wait()
	kv, _ := st.Get(ctx, key)
	if string(kv.Value) != strconv.Itoa(writers*each) {
		t.Fatalf("counter = %s, want %d", kv.Value, writers*each)
	}
}

func TestTTLWritesShareALease(t *testing.T) {
	st, prefix := newStore(t)
	ctx := context.Background()
	if _, err := st.Create(ctx, prefix+"a", []byte("1"), storage.WithTTL(time.Hour)); err != nil {
		t.Fatal(err)
	}
	rev, err := st.Create(ctx, prefix+"b", []byte("1"), storage.WithTTL(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Update(ctx, prefix+"b", []byte("2"), rev, storage.WithTTL(time.Hour)); err != nil {
		t.Fatal(err)
	}
	a, _ := ds.Client.Get(ctx, prefix+"a")
	b, _ := ds.Client.Get(ctx, prefix+"b")
	if a.Kvs[0].Lease == 0 || a.Kvs[0].Lease != b.Kvs[0].Lease {
		t.Fatalf("leases %x and %x: want one shared lease", a.Kvs[0].Lease, b.Kvs[0].Lease)
	}
	ttl, err := ds.Client.TimeToLive(ctx, clientv3.LeaseID(a.Kvs[0].Lease))
	if err != nil || ttl.TTL < int64(time.Hour/time.Second) || ttl.TTL > int64((time.Hour+2*time.Minute)/time.Second) {
		t.Fatalf("lease TTL %d s, %v", ttl.TTL, err)
	}
	if _, err := st.Create(ctx, prefix+"c", []byte("1")); err != nil {
		t.Fatal(err)
	}
	c, _ := ds.Client.Get(ctx, prefix+"c")
	if c.Kvs[0].Lease != 0 {
		t.Fatal("write without TTL got a lease")
	}
}
