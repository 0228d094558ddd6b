package pki

import (
	"fmt"
	"os"
	"path/filepath"

	"sigs.k8s.io/yaml"
)

// kubeconfig is the subset of the client-go kubeconfig format we write.
// []byte fields are base64-encoded by the JSON encoding, which is what the
// *-data keys expect.
type kubeconfig struct {
	APIVersion     string         `json:"apiVersion"`
	Kind           string         `json:"kind"`
	Clusters       []namedCluster `json:"clusters"`
	Contexts       []namedContext `json:"contexts"`
	CurrentContext string         `json:"current-context"`
	Preferences    struct{}       `json:"preferences"`
	Users          []namedUser    `json:"users"`
}

type namedCluster struct {
	Name    string `json:"name"`
	Cluster struct {
		Server                   string `json:"server"`
		CertificateAuthorityData []byte `json:"certificate-authority-data"`
	} `json:"cluster"`
}

type namedContext struct {
	Name    string `json:"name"`
	Context struct {
		Cluster string `json:"cluster"`
		User    string `json:"user"`
	} `json:"context"`
}

type namedUser struct {
	Name string `json:"name"`
	User struct {
		ClientCertificateData []byte `json:"client-certificate-data"`
		ClientKeyData         []byte `json:"client-key-data"`
	} `json:"user"`
}

// WriteKubeconfig writes a kubeconfig for server with the CA, client
// certificate and key embedded, whose cluster, context and user are all
// named "default" (as k3s does). The file is replaced atomically and ends up
// with exactly mode, even if it existed with another one. A missing parent
// directory is created 0755: the file's own mode decides who may read it.
func WriteKubeconfig(path string, mode os.FileMode, server string, caPEM, certPEM, keyPEM []byte) error {
	const name = "default"
	cfg := kubeconfig{APIVersion: "v1", Kind: "Config", CurrentContext: name}
	cluster := namedCluster{Name: name}
	cluster.Cluster.Server = server
	cluster.Cluster.CertificateAuthorityData = caPEM
	context := namedContext{Name: name}
	context.Context.Cluster, context.Context.User = name, name
	user := namedUser{Name: name}
	user.User.ClientCertificateData, user.User.ClientKeyData = certPEM, keyPEM
	cfg.Clusters = []namedCluster{cluster}
	cfg.Contexts = []namedContext{context}
	cfg.Users = []namedUser{user}

	data, err := yaml.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	return writeFileAtomic(path, data, mode.Perm())
}
