package cache

import (
	"context"
	"fmt"

	"github.com/sirupsen/logrus"
	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/mizzen-dev/mizzen/internal/storage"
)

// Spec describes one resource to cache.
type Spec struct {
	Resource schema.GroupResource
	Decode   Decoder
	// Indexes are extra indexes besides "namespace".
	Indexes map[string]IndexFunc
}

// Cache holds one Resource per cached group resource.
type Cache struct {
	res map[schema.GroupResource]*Resource
}

// New builds a cache of the given resources over st; Run fills it.
func New(st *storage.Store, specs []Spec, log *logrus.Entry) *Cache {
	c := &Cache{res: map[schema.GroupResource]*Resource{}}
	for _, s := range specs {
		prefix := storage.ResourcePrefix(s.Resource.Group, s.Resource.Resource)
		c.res[s.Resource] = newResource(s.Resource.String(), prefix, st, s.Decode, s.Indexes, log)
	}
	return c
}

// Run lists and watches every resource until ctx is done.
func (c *Cache) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, r := range c.res {
		g.Go(func() error { return r.run(ctx) })
	}
	return g.Wait()
}

// WaitSynced blocks until every resource has loaded its first list.
func (c *Cache) WaitSynced(ctx context.Context) error {
	for _, r := range c.res {
		if err := r.WaitSynced(ctx); err != nil {
			return err
		}
	}
	return nil
}

// HasSynced reports whether every resource has loaded its first list.
func (c *Cache) HasSynced() bool {
	for _, r := range c.res {
		if !r.HasSynced() {
			return false
		}
	}
	return true
}

// Resource returns the cache of gr.
func (c *Cache) Resource(gr schema.GroupResource) *Resource {
	r, ok := c.res[gr]
	if !ok {
		panic(fmt.Sprintf("cache: %s is not cached", gr))
	}
	return r
}
