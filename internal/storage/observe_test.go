package storage_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mizzen-dev/mizzen/internal/storage"
)

func TestObserverSeesEachEtcdRequestByResource(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	st := storage.New(ds.Client, storage.WithObserver(func(op, resource string, elapsed time.Duration, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil || elapsed <= 0 {
			t.Errorf("%s %s: elapsed %v, err %v", op, resource, elapsed, err)
		}
		seen = append(seen, op+" "+resource)
	}))
	ctx := context.Background()
	key := storage.Key("apps", "deployments", "ns", t.Name())
	rev, err := st.Create(ctx, key, []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(ctx, key); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Update(ctx, key, []byte("2"), rev); err != nil {
		t.Fatal(err)
	}
	if _, err := st.List(ctx, storage.ResourcePrefix("", "pods"), storage.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Delete(ctx, key, 0); err != nil {
		t.Fatal(err)
	}
	want := []string{"create deployments.apps", "get deployments.apps", "update deployments.apps", "list pods", "delete deployments.apps"}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(seen, want) {
		t.Errorf("observed %q, want %q", seen, want)
	}
}
