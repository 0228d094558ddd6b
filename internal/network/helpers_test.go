package network

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// requireRoot skips a test that needs root, loudly, or fails it under
// MIZZEN_TEST_STRICT=1.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	msg := "SKIPPED: this test needs root to create network namespaces, links and routes"
	if os.Getenv("MIZZEN_TEST_STRICT") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// newNS creates a named network namespace, deleted when the test ends (with
// every link in it), and returns its path.
func newNS(t testing.TB, role string) string {
	t.Helper()
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	name := fmt.Sprintf("mzt-%s-%s", hex.EncodeToString(b), role)
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		ns, err := netns.NewNamed(name) // also switches this thread into it
		if err == nil {
			ns.Close()
		}
		if serr := netns.Set(orig); serr != nil {
			errc <- fmt.Errorf("back to the original namespace: %w", serr)
			return // leave the thread locked: it dies with the goroutine
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	if err := <-errc; err != nil {
		t.Fatalf("create network namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := netns.DeleteNamed(name); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("delete network namespace %s: %v", name, err)
		}
	})
	return "/var/run/netns/" + name
}

// nl returns a netlink handle in the namespace at path.
func nl(t *testing.T, path string) *netlink.Handle {
	t.Helper()
	h, err := handleAt(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// addUnderlay gives the host namespaces a layer-2 segment: a veth pair
// "ul0" with address addrs[i] in hosts[i].
func addUnderlay(t *testing.T, hosts []string, addrs []string) {
	t.Helper()
	h := nl(t, hosts[0])
	attrs := netlink.NewLinkAttrs()
	attrs.Name = "ul0"
	if len(hosts) == 1 {
		// A veth with its peer left down in the same namespace: this
		// kernel has no dummy links.
		if err := h.LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: "ul0p"}); err != nil {
			t.Fatalf("add veth underlay: %v", err)
		}
	} else {
		peer, err := netns.GetFromPath(hosts[1])
		if err != nil {
			t.Fatal(err)
		}
		defer peer.Close()
		if err := h.LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: "ul0", PeerNamespace: netlink.NsFd(peer)}); err != nil {
			t.Fatalf("add veth underlay: %v", err)
		}
	}
	for i, host := range hosts {
		h := nl(t, host)
		link, err := h.LinkByName("ul0")
		if err != nil {
			t.Fatal(err)
		}
		addr, err := netlink.ParseAddr(addrs[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := h.AddrAdd(link, addr); err != nil {
			t.Fatalf("address %s: %v", addrs[i], err)
		}
		if err := h.LinkSetUp(link); err != nil {
			t.Fatal(err)
		}
	}
}

// testLog sends a component's logs to the test's output.
func testLog(t *testing.T, name string) *logrus.Entry {
	l := logrus.New()
	l.SetOutput(t.Output())
	l.SetLevel(logrus.DebugLevel)
	return l.WithField("component", "network").WithField("node", name)
}

// echoServer listens on ip:port inside the namespace at path and echoes
// one line per connection.
func echoServer(t *testing.T, path string, ip netip.Addr) string {
	t.Helper()
	var ln net.Listener
	err := inNS(path, func() (err error) {
		ln, err = net.Listen("tcp", netip.AddrPortFrom(ip, 0).String())
		return err
	})
	if err != nil {
		t.Fatalf("listen in %s: %v", path, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, err := bufio.NewReader(c).ReadString('\n')
				if err == nil {
					_, _ = c.Write([]byte(line))
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// dialFrom connects from inside the namespace at path to addr.
func dialFrom(path, addr string) (net.Conn, error) {
	var c net.Conn
	err := inNS(path, func() (err error) {
		c, err = net.DialTimeout("tcp", addr, 2*time.Second)
		return err
	})
	return c, err
}

// echo sends a line over c and checks it comes back.
func echo(c net.Conn, msg string) error {
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write([]byte(msg + "\n")); err != nil {
		return err
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if got != msg+"\n" {
		return fmt.Errorf("echoed %q, want %q", got, msg)
	}
	return nil
}

// requireTalk checks, until a deadline, that a TCP connection from the
// namespace at from reaches addr and carries data.
func requireTalk(t *testing.T, from, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := dialFrom(from, addr)
		if err == nil {
			err = echo(c, "hello from "+from)
			c.Close()
		}
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no TCP from %s to %s: %v", from, addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
