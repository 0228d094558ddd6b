package server

import (
	"log"
	"strings"

	"github.com/sirupsen/logrus"
)

// newHTTPErrorLog sends net/http's error log (TLS handshake failures of
// port scanners, mostly) to debug level.
func newHTTPErrorLog(l *logrus.Entry) *log.Logger {
	return log.New(writerFunc(func(p []byte) (int, error) {
		l.Debug(strings.TrimSpace(string(p)))
		return len(p), nil
	}), "", 0)
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
