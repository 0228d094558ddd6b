package datastore

import (
	"context"
	"time"

	"github.com/sirupsen/logrus"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Compactor compacts etcd's history periodically, keeping at least one
// interval of history so watches that reconnect within it resume.
type Compactor struct {
	Client   *clientv3.Client
	Interval time.Duration
	Log      *logrus.Entry
}

// Run compacts until ctx is done: at each tick, to the revision recorded at
// the previous tick.
func (c *Compactor) Run(ctx context.Context) error {
	t := time.NewTicker(c.Interval)
	defer t.Stop()
	var last int64
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		resp, err := c.Client.Get(ctx, "compact_rev_key", clientv3.WithCountOnly())
		if err != nil {
			c.Log.WithError(err).Warn("read etcd revision")
			continue
		}
		if last > 0 {
			if _, err := c.Client.Compact(ctx, last); err != nil && ctx.Err() == nil {
				c.Log.WithError(err).Debug("compact")
			} else {
				c.Log.WithField("revision", last).Debug("compacted")
			}
		}
		last = resp.Header.Revision
	}
}
