package strategy

import (
	"path"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// volumeSource is one member of the VolumeSource union.
type volumeSource struct {
	name string
	set  bool
}

// volumeSources lists the members of a volume source in the order
// Kubernetes' validation checks them, so that "more than 1 volume type"
// blames the same member.
func volumeSources(s *corev1.VolumeSource) []volumeSource {
	return []volumeSource{
		{"emptyDir", s.EmptyDir != nil}, {"hostPath", s.HostPath != nil}, {"gitRepo", s.GitRepo != nil},
		{"gcePersistentDisk", s.GCEPersistentDisk != nil}, {"awsElasticBlockStore", s.AWSElasticBlockStore != nil},
		{"secret", s.Secret != nil}, {"nfs", s.NFS != nil}, {"iscsi", s.ISCSI != nil}, {"glusterfs", s.Glusterfs != nil},
		{"flocker", s.Flocker != nil}, {"persistentVolumeClaim", s.PersistentVolumeClaim != nil}, {"rbd", s.RBD != nil},
		{"cinder", s.Cinder != nil}, {"cephFS", s.CephFS != nil}, {"quobyte", s.Quobyte != nil},
		{"downwarAPI", s.DownwardAPI != nil}, {"fc", s.FC != nil}, {"flexVolume", s.FlexVolume != nil},
		{"configMap", s.ConfigMap != nil}, {"azureFile", s.AzureFile != nil}, {"vsphereVolume", s.VsphereVolume != nil},
		{"photonPersistentDisk", s.PhotonPersistentDisk != nil}, {"portworxVolume", s.PortworxVolume != nil},
		{"azureDisk", s.AzureDisk != nil}, {"storageos", s.StorageOS != nil}, {"projected", s.Projected != nil},
		{"scaleIO", s.ScaleIO != nil}, {"csi", s.CSI != nil}, {"ephemeral", s.Ephemeral != nil}, {"image", s.Image != nil},
	}
}

func volumeSourceCount(s *corev1.VolumeSource) int {
	n := 0
	for _, v := range volumeSources(s) {
		if v.set {
			n++
		}
	}
	return n
}

// validateVolumes validates the volumes of a pod spec and returns the
// valid ones by name, for mounts to refer to.
func validateVolumes(volumes []corev1.Volume, fld *field.Path) (map[string]corev1.VolumeSource, field.ErrorList) {
	var errs field.ErrorList
	vols := map[string]corev1.VolumeSource{}
	for i, v := range volumes {
		idx := fld.Index(i)
		namePath := idx.Child("name")
		el := validateVolumeSource(&v.VolumeSource, idx)
		if v.Name == "" {
			el = append(el, field.Required(namePath, ""))
		} else {
			el = append(el, validateDNS1123Label(v.Name, namePath)...)
		}
		if _, dup := vols[v.Name]; dup {
			el = append(el, field.Duplicate(namePath, v.Name))
		}
		if len(el) == 0 {
			vols[v.Name] = v.VolumeSource
		} else {
			errs = append(errs, el...)
		}
	}
	return vols, errs
}

func validateVolumeSource(s *corev1.VolumeSource, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	n := 0
	for _, v := range volumeSources(s) {
		if !v.set {
			continue
		}
		if n > 0 {
			errs = append(errs, field.Forbidden(fld.Child(v.name), "may not specify more than 1 volume type"))
			continue
		}
		n++
		errs = append(errs, validateVolumeMember(s, fld)...)
	}
	if n == 0 {
		errs = append(errs, field.Required(fld, "must specify a volume type"))
	}
	return errs
}

// validateVolumeMember validates the one member set in s; the volume
// types mizzen cannot mount are accepted as Kubernetes stores them.
func validateVolumeMember(s *corev1.VolumeSource, fld *field.Path) field.ErrorList {
	switch {
	case s.EmptyDir != nil:
		if l := s.EmptyDir.SizeLimit; l != nil && l.Sign() < 0 {
			return field.ErrorList{field.Forbidden(fld.Child("emptyDir", "sizeLimit"), "SizeLimit field must be a valid resource quantity")}
		}
	case s.HostPath != nil:
		return validateHostPath(s.HostPath, fld.Child("hostPath"))
	case s.GitRepo != nil:
		var errs field.ErrorList
		if s.GitRepo.Repository == "" {
			errs = append(errs, field.Required(fld.Child("gitRepo", "repository"), ""))
		}
		return append(errs, validateLocalDescendingPath(s.GitRepo.Directory, fld.Child("gitRepo", "directory"))...)
	case s.Secret != nil:
		return validateProjection(s.Secret.SecretName, "secretName", s.Secret.DefaultMode, s.Secret.Items, fld.Child("secret"))
	case s.ConfigMap != nil:
		return validateProjection(s.ConfigMap.Name, "name", s.ConfigMap.DefaultMode, s.ConfigMap.Items, fld.Child("configMap"))
	case s.NFS != nil:
		return validateNFS(s.NFS, fld.Child("nfs"))
	case s.PersistentVolumeClaim != nil:
		if s.PersistentVolumeClaim.ClaimName == "" {
			return field.ErrorList{field.Required(fld.Child("persistentVolumeClaim", "claimName"), "")}
		}
	case s.DownwardAPI != nil:
		return validateDownwardAPIVolume(s.DownwardAPI, fld.Child("downwardAPI"))
	case s.Projected != nil:
		return validateProjected(s.Projected, fld.Child("projected"))
	case s.CSI != nil:
		if s.CSI.Driver == "" {
			return field.ErrorList{field.Required(fld.Child("csi", "driver"), "")}
		}
	case s.Ephemeral != nil:
		if s.Ephemeral.VolumeClaimTemplate == nil {
			return field.ErrorList{field.Required(fld.Child("ephemeral", "volumeClaimTemplate"), "")}
		}
	case s.Image != nil:
		if s.Image.Reference == "" {
			return field.ErrorList{field.Required(fld.Child("image", "reference"), "")}
		}
	}
	return nil
}

var hostPathTypes = []corev1.HostPathType{
	corev1.HostPathUnset, corev1.HostPathBlockDev, corev1.HostPathCharDev, corev1.HostPathDirectory,
	corev1.HostPathDirectoryOrCreate, corev1.HostPathFile, corev1.HostPathFileOrCreate, corev1.HostPathSocket,
}

func validateHostPath(h *corev1.HostPathVolumeSource, fld *field.Path) field.ErrorList {
	if h.Path == "" {
		return field.ErrorList{field.Required(fld.Child("path"), "")}
	}
	errs := validatePathNoBacksteps(h.Path, fld.Child("path"))
	if h.Type != nil {
		known := false
		for _, t := range hostPathTypes {
			known = known || t == *h.Type
		}
		if !known {
			errs = append(errs, field.NotSupported(fld.Child("type"), *h.Type, hostPathTypes))
		}
	}
	return errs
}

func validateNFS(nfs *corev1.NFSVolumeSource, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	if nfs.Server == "" {
		errs = append(errs, field.Required(fld.Child("server"), ""))
	}
	if nfs.Path == "" {
		errs = append(errs, field.Required(fld.Child("path"), ""))
	}
	if !path.IsAbs(nfs.Path) {
		errs = append(errs, field.Invalid(fld.Child("path"), nfs.Path, "must be an absolute path"))
	}
	return errs
}

const fileModeErrorMsg = "must be a number between 0 and 0777 (octal), both inclusive"

func validateFileMode(mode *int32, fld *field.Path) field.ErrorList {
	if mode != nil && (*mode > 0o777 || *mode < 0) {
		return field.ErrorList{field.Invalid(fld, *mode, fileModeErrorMsg)}
	}
	return nil
}

// validateProjection validates a secret or configMap volume: its name,
// mode and items.
func validateProjection(name, nameField string, mode *int32, items []corev1.KeyToPath, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	if name == "" {
		errs = append(errs, field.Required(fld.Child(nameField), ""))
	}
	errs = append(errs, validateFileMode(mode, fld.Child("defaultMode"))...)
	for i := range items {
		errs = append(errs, validateKeyToPath(&items[i], fld.Child("items").Index(i))...)
	}
	return errs
}

func validateKeyToPath(kp *corev1.KeyToPath, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	if kp.Key == "" {
		errs = append(errs, field.Required(fld.Child("key"), ""))
	}
	if kp.Path == "" {
		errs = append(errs, field.Required(fld.Child("path"), ""))
	}
	errs = append(errs, validateLocalNonReservedPath(kp.Path, fld.Child("path"))...)
	return append(errs, validateFileMode(kp.Mode, fld.Child("mode"))...)
}

func validateDownwardAPIVolume(d *corev1.DownwardAPIVolumeSource, fld *field.Path) field.ErrorList {
	errs := validateFileMode(d.DefaultMode, fld.Child("defaultMode"))
	for i := range d.Items {
		errs = append(errs, validateDownwardAPIFile(&d.Items[i], fld)...)
	}
	return errs
}

// validateDownwardAPIFile reports at the volume's path, as Kubernetes does.
func validateDownwardAPIFile(f *corev1.DownwardAPIVolumeFile, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	if f.Path == "" {
		errs = append(errs, field.Required(fld.Child("path"), ""))
	}
	errs = append(errs, validateLocalNonReservedPath(f.Path, fld.Child("path"))...)
	switch {
	case f.FieldRef != nil:
		errs = append(errs, validateObjectFieldSelector(f.FieldRef, volumeFieldPaths, fld.Child("fieldRef"))...)
		if f.ResourceFieldRef != nil {
			errs = append(errs, field.Invalid(fld, "resource", "fieldRef and resourceFieldRef can not be specified simultaneously"))
		}
	case f.ResourceFieldRef != nil:
		errs = append(errs, validateResourceFieldSelector(f.ResourceFieldRef, true, fld.Child("resourceFieldRef"))...)
	default:
		errs = append(errs, field.Required(fld, "one of fieldRef and resourceFieldRef is required"))
	}
	return append(errs, validateFileMode(f.Mode, fld.Child("mode"))...)
}

func validateProjected(p *corev1.ProjectedVolumeSource, fld *field.Path) field.ErrorList {
	errs := validateFileMode(p.DefaultMode, fld.Child("defaultMode"))
	for i, s := range p.Sources {
		src := fld.Child("sources").Index(i)
		n := 0
		if s.Secret != nil {
			n++
			errs = append(errs, validateProjection(s.Secret.Name, "name", nil, s.Secret.Items, src.Child("secret"))...)
		}
		if s.ConfigMap != nil {
			n++
			errs = append(errs, validateProjection(s.ConfigMap.Name, "name", nil, s.ConfigMap.Items, src.Child("configMap"))...)
		}
		if s.DownwardAPI != nil {
			n++
			for j := range s.DownwardAPI.Items {
				errs = append(errs, validateDownwardAPIFile(&s.DownwardAPI.Items[j], src.Child("downwardAPI"))...)
			}
		}
		if t := s.ServiceAccountToken; t != nil {
			n++
			if t.ExpirationSeconds != nil && *t.ExpirationSeconds < 600 {
				errs = append(errs, field.Invalid(src.Child("serviceAccountToken", "expirationSeconds"), *t.ExpirationSeconds, "may not specify a duration less than 10 minutes"))
			}
			if t.Path == "" {
				errs = append(errs, field.Required(src.Child("serviceAccountToken", "path"), ""))
			}
		}
		if s.ClusterTrustBundle != nil {
			n++
		}
		if s.PodCertificate != nil {
			n++
		}
		if n > 1 {
			errs = append(errs, field.Forbidden(src, "may not specify more than 1 volume type per source"))
		}
	}
	return errs
}
