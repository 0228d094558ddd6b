package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// createOwned creates ConfigMap dep owned by the ConfigMap owner; extra is
// added to dep's metadata (JSON members, with a leading comma).
func (s *server) createOwned(owner, dep string, block bool, extra string) {
	s.t.Helper()
	uid := s.kubectl("get", "configmap", owner, "-o", "jsonpath={.metadata.uid}")
	s.kubectlInOK(fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":%q,"ownerReferences":[
		{"apiVersion":"v1","kind":"ConfigMap","name":%q,"uid":%q,"blockOwnerDeletion":%v}]%s}}`, dep, owner, uid, block, extra), "create", "-f", "-")
}

func (s *server) gone(kind, name string) func() error {
	return func() error {
		out, err := s.kubectlErr("get", kind, name, "-o", "name")
		if err == nil {
			return fmt.Errorf("%s %s still there: %s", kind, name, out)
		}
		if !strings.Contains(out, "NotFound") {
			return fmt.Errorf("get %s %s: %v %s", kind, name, err, out)
		}
		return nil
	}
}

func TestGarbageCollectorBackground(t *testing.T) {
	s := startServer(t)
	s.kubectl("create", "configmap", "owner")
	s.createOwned("owner", "dep", false, "")
	s.kubectl("create", "configmap", "other")
	s.createOwned("other", "kept", false, "")
	s.kubectl("delete", "configmap", "owner")
	eventually(t, 20*time.Second, s.gone("configmap", "dep"))
	s.kubectl("get", "configmap", "kept")
}

func TestGarbageCollectorForeground(t *testing.T) {
	s := startServer(t)
	// kubectl waits for the owner, which goes after its dependent.
	s.kubectl("create", "configmap", "owner")
	s.createOwned("owner", "dep", true, "")
	s.kubectl("delete", "configmap", "owner", "--cascade=foreground", "--timeout=30s")
	eventually(t, 10*time.Second, s.gone("configmap", "dep"))

	// A dependent that lingers (a finalizer) holds its owner.
	s.kubectl("create", "configmap", "owner2")
	s.createOwned("owner2", "dep2", true, `,"finalizers":["example.com/hold"]`)
	s.kubectl("delete", "configmap", "owner2", "--cascade=foreground", "--wait=false")
	eventually(t, 20*time.Second, func() error {
		if ts := s.kubectl("get", "configmap", "dep2", "-o", "jsonpath={.metadata.deletionTimestamp}"); ts == "" {
			return fmt.Errorf("dependent not being deleted")
		}
		return nil
	})
	if fins := s.kubectl("get", "configmap", "owner2", "-o", "jsonpath={.metadata.finalizers}"); !strings.Contains(fins, "foregroundDeletion") {
		t.Fatalf("owner finalizers %q while its dependent remains", fins)
	}
	s.kubectl("patch", "configmap", "dep2", "--type=merge", "-p", `{"metadata":{"finalizers":null}}`)
	eventually(t, 20*time.Second, s.gone("configmap", "dep2"))
	eventually(t, 20*time.Second, s.gone("configmap", "owner2"))
}

func TestGarbageCollectorOrphan(t *testing.T) {
	s := startServer(t)
	s.kubectl("create", "configmap", "owner")
	s.createOwned("owner", "dep", true, "")
	s.kubectl("delete", "configmap", "owner", "--cascade=orphan", "--timeout=30s")
	eventually(t, 20*time.Second, s.gone("configmap", "owner"))
	if refs := s.kubectl("get", "configmap", "dep", "-o", "jsonpath={.metadata.ownerReferences}"); refs != "" {
		t.Fatalf("orphaned dependent keeps owner references %s", refs)
	}
	// The dependent is not collected later either.
	s.kubectl("create", "configmap", "marker")
	s.createOwned("marker", "marker-dep", false, "")
	s.kubectl("delete", "configmap", "marker")
	eventually(t, 20*time.Second, s.gone("configmap", "marker-dep"))
	s.kubectl("get", "configmap", "dep")
}
