package resolvconf

import (
	"reflect"
	"testing"
)

func TestParse(t *testing.T) {
	got := Parse([]byte("# generated\nnameserver 192.0.2.53 # main\ndomain old.example\nsearch a.example b.example\noptions ndots:2 edns0\nnameserver 2001:db8::53\n;comment\n"))
	want := Config{Nameservers: []string{"192.0.2.53", "2001:db8::53"}, Searches: []string{"a.example", "b.example"}, Options: []string{"ndots:2", "edns0"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Parse = %+v, want %+v", got, want)
	}
}
