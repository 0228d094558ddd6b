package apiserver

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// An upgrade (exec, attach) answers 101 on the hijacked connection: the
// recorder behind the request log and metrics records it.
func TestStatusRecorderRecordsAHijackedUpgrade(t *testing.T) {
	got := make(chan int, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		conn, rw, err := http.NewResponseController(rec).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			got <- rec.code
			return
		}
		rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n")
		rw.Flush()
		conn.Close()
		got <- rec.code
	}))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "test")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("client saw %d", resp.StatusCode)
	}
	if code := <-got; code != http.StatusSwitchingProtocols {
		t.Fatalf("recorded %d, want 101", code)
	}
}
