package nodestatus

import (
	"os"
	"regexp"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/mizzen-dev/mizzen/internal/runtime/fake"
)

func TestLocalHostReadsThisMachine(t *testing.T) {
	var h localHost
	info, err := h.Info()
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	t.Logf("info: %+v", info)
	if info.CPUs <= 0 || info.MemoryBytes <= 0 || info.MemoryBytes%1024 != 0 {
		t.Errorf("CPUs %d memory %d: want positive, memory in whole KiB", info.CPUs, info.MemoryBytes)
	}
	if mem := resource.NewQuantity(info.MemoryBytes, resource.BinarySI).String(); !regexp.MustCompile(`^[0-9]+(Ki|Mi|Gi)$`).MatchString(mem) {
		t.Errorf("memory capacity %q, want a binary-suffixed quantity like 16318596Ki", mem)
	}
	uuid := regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	if !uuid.MatchString(info.BootID) {
		t.Errorf("bootID %q, want a UUID", info.BootID)
	}
	if info.MachineID == "" || info.SystemUUID == "" {
		t.Errorf("machineID %q systemUUID %q, want both set", info.MachineID, info.SystemUUID)
	}
	if _, err := os.Stat("/sys/class/dmi/id/product_uuid"); err != nil && info.SystemUUID != info.MachineID {
		t.Errorf("systemUUID %q without DMI, want the machine ID %q", info.SystemUUID, info.MachineID)
	}
	if !regexp.MustCompile(`^[0-9]+\.[0-9]+`).MatchString(info.KernelVersion) || strings.ContainsRune(info.KernelVersion, 0) {
		t.Errorf("kernelVersion %q, want uname -r", info.KernelVersion)
	}
	if info.OSImage == "" || strings.ContainsAny(info.OSImage, `"'`) {
		t.Errorf("osImage %q, want an unquoted PRETTY_NAME", info.OSImage)
	}

	u, err := h.Usage(t.TempDir())
	if err != nil {
		t.Fatalf("Usage: %v", err)
	}
	t.Logf("usage: %+v", u)
	if u.MemoryAvailable <= 0 || u.MemoryAvailable > info.MemoryBytes {
		t.Errorf("memory available %d of %d", u.MemoryAvailable, info.MemoryBytes)
	}
	if u.DiskCapacity <= 0 || u.DiskAvailable < 0 || u.DiskAvailable > u.DiskCapacity {
		t.Errorf("disk available %d of %d", u.DiskAvailable, u.DiskCapacity)
	}
	if u.PIDs <= 0 || u.PIDMax <= 0 || u.PIDs > u.PIDMax {
		t.Errorf("tasks %d of %d", u.PIDs, u.PIDMax)
	}
	if _, err := h.Usage("/no/such/dir"); err == nil {
		t.Error("Usage of a missing directory succeeded")
	}

	ip, err := h.DefaultAddress()
	if err != nil {
		if os.Getenv("MIZZEN_TEST_STRICT") == "1" {
			t.Fatalf("DefaultAddress: %v", err)
		}
		t.Skipf("no address to report: %v", err)
	}
	t.Logf("default address: %v", ip)
	if !ip.IsGlobalUnicast() {
		t.Errorf("default address %v, want a global unicast address", ip)
	}
}

func TestLocalHostStatusIsValid(t *testing.T) {
	a, err := New(Config{NodeName: "n1", Client: newFakeClient(), Runtime: fake.New(), Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	st, err := a.computeStatus(t.Context(), nil)
	if err != nil {
		t.Fatalf("computeStatus on this machine: %v", err)
	}
	for _, name := range []corev1.ResourceName{"cpu", "memory", "pods", "ephemeral-storage"} {
		c, al := st.Capacity[name], st.Allocatable[name]
		if c.Sign() <= 0 || al.Sign() < 0 || al.Cmp(c) > 0 {
			t.Errorf("%s capacity %s allocatable %s", name, c.String(), al.String())
		}
	}
	if last := st.Addresses[len(st.Addresses)-1]; last != (corev1.NodeAddress{Type: corev1.NodeHostName, Address: "n1"}) {
		t.Errorf("addresses %v, want the Hostname last", st.Addresses)
	}
}

func TestParseMeminfo(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string]int64
		wantErr bool
	}{
		{"kB fields", "MemTotal:       16318596 kB\nMemFree:         1000 kB\nMemAvailable:    8000000 kB\nHugePages_Total:       0\n",
			map[string]int64{"MemTotal": 16318596 * 1024, "MemFree": 1000 * 1024, "MemAvailable": 8000000 * 1024, "HugePages_Total": 0}, false},
		{"no MemTotal", "MemFree: 1 kB\n", nil, true},
		{"garbage number", "MemTotal: lots kB\n", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMeminfo(strings.NewReader(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %d, want %d", k, got[k], v)
				}
			}
		})
	}
}

func TestParseLoadavgTasks(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"0.11 0.13 0.62 1/91 13429\n", 91, false},
		{"0.00 0.00 0.00 3/123456 1", 123456, false},
		{"0.11 0.13 0.62", 0, true},
		{"0.11 0.13 0.62 191 1", 0, true},
	}
	for _, tt := range tests {
		got, err := parseLoadavgTasks(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseLoadavgTasks(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestPrettyName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n", "Debian GNU/Linux 12 (bookworm)"},
		{"PRETTY_NAME='Alpine Linux v3.20'\n", "Alpine Linux v3.20"},
		{"PRETTY_NAME=Arch\n", "Arch"},
		{"NAME=Foo\n", ""},
	}
	for _, tt := range tests {
		if got := prettyName([]byte(tt.in)); got != tt.want {
			t.Errorf("prettyName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
