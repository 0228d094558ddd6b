package datastore

import (
	"bytes"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	"go.uber.org/zap"
)

func TestEtcdLogsGoThroughLogrus(t *testing.T) {
	var buf bytes.Buffer
	l := logrus.New()
	l.SetOutput(&buf)
	l.SetFormatter(&logrus.JSONFormatter{})
	l.SetLevel(logrus.InfoLevel)
	z := zapLogger(l.WithField("component", "etcd"))
	z.Warn("benign chatter", zap.String("member", "a"))
	if buf.Len() != 0 {
		t.Fatalf("etcd's warning logged at info level: %s", buf.String())
	}
	l.SetLevel(logrus.DebugLevel)
	z.Debug("Putting key")
	z.With(zap.String("cluster", "c")).Info("started", zap.Int("term", 2))
	out := buf.String()
	if strings.Contains(out, "Putting key") {
		t.Fatalf("etcd's debug lines logged: %s", out)
	}
	for _, want := range []string{`"component":"etcd"`, `"level":"debug"`, `"msg":"started"`, `"cluster":"c"`, `"term":2`} {
		if !strings.Contains(out, want) {
			t.Fatalf("missing %s in %s", want, out)
		}
	}
}
