package snapshot

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sirupsen/logrus"
)

func TestParseSchedule(t *testing.T) {
	from := time.Date(2026, 1, 1, 5, 30, 10, 0, time.Local)
	for _, tc := range []struct {
		spec string
		next time.Time
	}{
		{DefaultSchedule, time.Date(2026, 1, 1, 12, 0, 0, 0, time.Local)},
		{"* * * * * *", from.Add(time.Second)},
		{"*/5 * * * *", time.Date(2026, 1, 1, 5, 35, 0, 0, time.Local)},
		{"@every 1h", from.Add(time.Hour)},
	} {
		s, err := ParseSchedule(tc.spec)
		if err != nil {
			t.Errorf("%q: %v", tc.spec, err)
			continue
		}
		if got := s.Next(from); !got.Equal(tc.next) {
			t.Errorf("%q: next %v, want %v", tc.spec, got, tc.next)
		}
	}
	for _, bad := range []string{"", "every day", "61 * * * *"} {
		if _, err := ParseSchedule(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestSchedulerSnapshotsOnScheduleAndPrunesBeyondRetention(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := Store{Dir: t.TempDir()}
		sched, err := ParseSchedule("* * * * * *")
		if err != nil {
			t.Fatal(err)
		}
		log := logrus.New()
		log.SetOutput(t.Output())
		sc := &Scheduler{Store: s, Source: fakeSource{db: database(1)}, Schedule: sched, Node: "n", Retention: 3, Log: log.WithField("component", "etcd-snapshot")}
		// An on-demand snapshot is never pruned by the schedule.
		if _, err := s.Save(t.Context(), fakeSource{db: database(2)}, Name(DefaultName, "n", time.Now().Add(-time.Hour))); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- sc.Run(ctx) }()

		start := time.Now().Truncate(time.Second)
		time.Sleep(5*time.Second + 500*time.Millisecond)
		synctest.Wait()
		got, err := s.List()
		if err != nil {
			t.Fatal(err)
		}
		want := []string{Name(DefaultName, "n", start.Add(-time.Hour))}
		for i := 3; i <= 5; i++ {
			want = append(want, Name(ScheduledPrefix, "n", start.Add(time.Duration(i)*time.Second)))
		}
		if !slices.Equal(names(got), want) {
			t.Errorf("after 5.5s: %v, want %v", names(got), want)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
}
