package dns

import (
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// BenchmarkQueryCachedService measures queries/s for a service name answered
// from the informer cache: in-process through ServeDNS, and over real UDP on
// loopback with parallel clients; a forwarded name served from the answer
// cache is measured the same way.
func BenchmarkQueryCachedService(b *testing.B) {
	up := startUpstream(b, internet)
	s := newTestServer(b, testSource(), up.addr)
	addr := runServer(b, s)
	svc := query("web.default.svc.cluster.local.", dns.TypeA)
	ext := query("example.org.", dns.TypeA)

	inProcess := func(req *dns.Msg) func(b *testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				w := &recorder{remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353}}
				for pb.Next() {
					s.ServeDNS(w, req)
					if len(w.msg.Answer) != 1 {
						b.Fatalf("answer %v", w.msg)
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
		}
	}
	overUDP := func(req *dns.Msg) func(b *testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				c := &dns.Client{Timeout: 5 * time.Second}
				conn, err := c.Dial(addr)
				if err != nil {
					b.Fatal(err)
				}
				defer conn.Close()
				for pb.Next() {
					r, _, err := c.ExchangeWithConn(req, conn)
					if err != nil || len(r.Answer) != 1 {
						b.Fatalf("answer %v: %v", r, err)
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
		}
	}
	b.Run("service/ServeDNS", inProcess(svc))
	b.Run("service/UDP", overUDP(svc))
	b.Run("forwarded/ServeDNS", inProcess(ext))
	b.Run("forwarded/UDP", overUDP(ext))
}
