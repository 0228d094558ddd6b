package snapshot

import (
	"context"
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/sirupsen/logrus"
)

// DefaultSchedule is k3s's default --etcd-snapshot-schedule-cron.
const DefaultSchedule = "0 */12 * * *"

// ParseSchedule parses a cron expression: five fields (minute hour day
// month weekday) as k3s takes, an optional leading seconds field, or a
// descriptor such as @hourly or @every 30m.
func ParseSchedule(spec string) (cron.Schedule, error) {
	p := cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
	s, err := p.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("cron schedule %q: %w", spec, err)
	}
	return s, nil
}

// Scheduler takes snapshots on a cron schedule and keeps the newest
// Retention of them.
type Scheduler struct {
	Store    Store
	Source   Source
	Schedule cron.Schedule
	// Node goes into the names: etcd-snapshot-<Node>-<unix time>.
	Node string
	// Retention is how many of this node's scheduled snapshots to keep;
	// on-demand ones are never pruned here.
	Retention int
	Log       *logrus.Entry
}

// Run takes snapshots until ctx is done. A failed snapshot is logged and
// the next one is still taken: snapshots never stop the server.
func (s *Scheduler) Run(ctx context.Context) error {
	s.Log.WithField("dir", s.Store.Dir).Debug("scheduled etcd snapshots enabled")
	for {
		now := time.Now()
		next := s.Schedule.Next(now)
		if next.IsZero() {
			s.Log.Warn("the etcd snapshot schedule never fires")
			<-ctx.Done()
			return nil
		}
		t := time.NewTimer(next.Sub(now))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		s.once(ctx, next)
	}
}

// once takes the snapshot scheduled at t and prunes the old ones.
func (s *Scheduler) once(ctx context.Context, t time.Time) {
	info, err := s.Store.Save(ctx, s.Source, Name(ScheduledPrefix, s.Node, t))
	if err != nil {
		if ctx.Err() == nil {
			s.Log.WithError(err).Error("scheduled etcd snapshot failed")
		}
		return
	}
	s.Log.WithFields(logrus.Fields{"name": info.Name, "size": info.Size}).Info("etcd snapshot saved")
	deleted, err := s.Store.Prune(ScheduledPrefix, s.Node, s.Retention)
	if err != nil {
		s.Log.WithError(err).Error("prune etcd snapshots")
	}
	for _, name := range deleted {
		s.Log.WithField("name", name).Debug("pruned etcd snapshot")
	}
}
