package prober

import (
	"context"
	"net"
	"strconv"
	"syscall"
	"time"
)

// TCP succeeds when a connection to host:port opens within timeout; the
// failure message is the dial error (`dial tcp 10.0.0.5:8080: connect:
// connection refused`).
func TCP(ctx context.Context, host string, port int, timeout time.Duration) (Result, string) {
	d := dialer()
	d.Timeout = timeout
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return Failure, err.Error()
	}
	_ = conn.Close()
	return Success, ""
}

// dialer returns a dialer whose sockets linger only a second after close,
// as the kubelet's probe dialer does, so frequent probes do not pile up
// connections in TIME-WAIT.
func dialer() *net.Dialer {
	return &net.Dialer{
		Control: func(network, address string, c syscall.RawConn) error {
			return c.Control(func(fd uintptr) {
				_ = syscall.SetsockoptLinger(int(fd), syscall.SOL_SOCKET, syscall.SO_LINGER, &syscall.Linger{Onoff: 1, Linger: 1})
			})
		},
	}
}
