package proxy

import (
	"crypto/sha256"
	"encoding/base32"
)

// maxNameLen keeps chain and set names well under the kernel's limit of
// 256 bytes (NFT_NAME_MAXLEN) while staying readable.
const maxNameLen = 128

// chainName derives a stable, unique chain name from an object identity:
// a prefix, a hash of the identity (unique even when truncated) and as much
// of the identity as fits, for people reading `nft list`.
func chainName(prefix, id string) string {
	h := sha256.New()
	h.Write([]byte(prefix))
	h.Write([]byte{0})
	h.Write([]byte(id))
	var sum [sha256.Size]byte
	var enc [16]byte
	base32.StdEncoding.Encode(enc[:], h.Sum(sum[:0])[:7])
	b := make([]byte, 0, len(prefix)+12+len(id))
	b = append(append(append(append(b, prefix...), '-'), enc[:10]...), '-')
	b = append(b, id...)
	if len(b) > maxNameLen {
		b = b[:maxNameLen]
	}
	return string(b)
}

// affinitySet names the session-affinity set of an endpoint chain.
func affinitySet(epChain string) string {
	return chainName("aff", epChain)
}
