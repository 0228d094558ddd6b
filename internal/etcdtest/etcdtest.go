// Package etcdtest starts a real embedded etcd for a test package's
// integration tests.
package etcdtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/sirupsen/logrus"

	"github.com/mizzen-dev/mizzen/internal/datastore"
)

// FreePort returns a loopback port nothing listens on.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start opens an embedded etcd in a temporary directory; stop closes it
// and removes the directory. It is meant for TestMain.
func Start() (ds *datastore.Datastore, stop func(), err error) {
	dir, err := os.MkdirTemp("", "mizzen-etcd")
	if err != nil {
		return nil, nil, err
	}
	client, err1 := FreePort()
	peer, err2 := FreePort()
	if err1 != nil || err2 != nil {
		os.RemoveAll(dir)
		return nil, nil, fmt.Errorf("free ports: %v %v", err1, err2)
	}
	ds, err = datastore.Open(context.Background(), datastore.Config{
		Dir: filepath.Join(dir, "etcd"), ClientPort: client, PeerPort: peer, Log: logrus.NewEntry(logrus.New()),
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return ds, func() { ds.Close(); os.RemoveAll(dir) }, nil
}

// Main is a TestMain body: it opens an embedded etcd into *ds, runs the
// package's tests and exits with their status.
func Main(m interface{ Run() int }, ds **datastore.Datastore) {
	d, stop, err := Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*ds = d
	code := m.Run()
	stop()
	os.Exit(code)
}
