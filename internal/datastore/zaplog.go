package datastore

import (
	"github.com/sirupsen/logrus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// logrusCore hands the embedded etcd's zap entries to mizzen's logger, so
// that they carry the component field and follow --log-format. etcd's own
// levels are chatty (benign warnings at start), so its lines are debug
// lines, except the fatal ones.
type logrusCore struct {
	log    *logrus.Entry
	fields []zapcore.Field
}

// zapLogger returns a zap logger writing to log.
func zapLogger(log *logrus.Entry) *zap.Logger {
	return zap.New(&logrusCore{log: log})
}

// Enabled passes etcd's info and higher at --debug (its debug level
// logs every key it writes), and only its fatal lines otherwise.
func (c *logrusCore) Enabled(l zapcore.Level) bool {
	return l >= zapcore.DPanicLevel || l >= zapcore.InfoLevel && c.log.Logger.IsLevelEnabled(logrus.DebugLevel)
}

func (c *logrusCore) With(fields []zapcore.Field) zapcore.Core {
	return &logrusCore{log: c.log, fields: append(append([]zapcore.Field(nil), c.fields...), fields...)}
}

func (c *logrusCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *logrusCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range append(append([]zapcore.Field(nil), c.fields...), fields...) {
		f.AddTo(enc)
	}
	entry := c.log.WithFields(logrus.Fields(enc.Fields))
	if e.Level >= zapcore.DPanicLevel {
		entry.Error(e.Message)
	} else {
		entry.Debug(e.Message)
	}
	return nil
}

func (c *logrusCore) Sync() error { return nil }
