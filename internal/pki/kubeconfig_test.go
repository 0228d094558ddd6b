package pki

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestWriteKubeconfigEnforcesMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mizzen.yaml")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteKubeconfig(path, 0o600, "https://127.0.0.1:6443", []byte("ca"), []byte("cert"), []byte("key")); err != nil {
		t.Fatal(err)
	}
	wantMode(t, path, 0o600)
	if err := WriteKubeconfig(path, 0o644, "https://127.0.0.1:6443", []byte("ca"), []byte("cert"), []byte("key")); err != nil {
		t.Fatal(err)
	}
	wantMode(t, path, 0o644)
	if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*tmp*")); len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

func TestWriteKubeconfigParsesWithEmbeddedCredentials(t *testing.T) {
	ca, dir := newCA(t)
	certPEM, keyPEM, err := EnsureClientCert(dir, ca, "client-admin", "system:admin", []string{"system:masters"})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "etc", "mizzen", "mizzen.yaml")
	const server = "https://127.0.0.1:6443"
	if err := WriteKubeconfig(path, 0o600, server, ca.CertPEM, certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		APIVersion     string         `json:"apiVersion"`
		Kind           string         `json:"kind"`
		CurrentContext string         `json:"current-context"`
		Preferences    map[string]any `json:"preferences"`
		Clusters       []struct {
			Name    string
			Cluster map[string]string
		}
		Contexts []struct {
			Name    string
			Context map[string]string
		}
		Users []struct {
			Name string
			User map[string]string
		}
	}
	if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
		t.Fatalf("kubeconfig is not valid YAML: %v\n%s", err, data)
	}
	if cfg.APIVersion != "v1" || cfg.Kind != "Config" || cfg.CurrentContext != "default" {
		t.Errorf("header = %s %s %s", cfg.APIVersion, cfg.Kind, cfg.CurrentContext)
	}
	if len(cfg.Clusters) != 1 || cfg.Clusters[0].Name != "default" || cfg.Clusters[0].Cluster["server"] != server {
		t.Fatalf("clusters = %+v", cfg.Clusters)
	}
	if len(cfg.Contexts) != 1 || cfg.Contexts[0].Context["cluster"] != "default" || cfg.Contexts[0].Context["user"] != "default" {
		t.Errorf("contexts = %+v", cfg.Contexts)
	}
	if len(cfg.Users) != 1 || cfg.Users[0].Name != "default" {
		t.Fatalf("users = %+v", cfg.Users)
	}
	if got := decode(t, cfg.Clusters[0].Cluster["certificate-authority-data"]); string(got) != string(ca.CertPEM) {
		t.Error("certificate-authority-data does not hold the CA")
	}
	if got := decode(t, cfg.Users[0].User["client-certificate-data"]); string(got) != string(certPEM) {
		t.Error("client-certificate-data does not hold the client certificate")
	}
	if got := decode(t, cfg.Users[0].User["client-key-data"]); string(got) != string(keyPEM) {
		t.Error("client-key-data does not hold the client key")
	}
	wantMode(t, path, 0o600)
}

func decode(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("decode %q: %v", s, err)
	}
	return b
}
