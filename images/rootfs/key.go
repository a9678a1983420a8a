package rootfs

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// diskFormat names how disks are made; change it when the flattening rules
// or the tar2ext4 options change, so that old disks are not reused.
const diskFormat = "ext4-v1"

// chainID is the OCI image spec's ChainID of the layer stack: the identity
// of the ordered uncompressed layers, which is all the disk depends on. It
// is the cache key rather than the manifest digest, which also changes with
// compression, annotations or a docker-archive's locally made manifest, or
// the config digest, which also changes with CMD, ENV and labels: images
// that differ only in those share one disk. It is sound because Flatten
// hashes each layer against its diff_id as it reads it, so a config that
// lies about diff_ids cannot plant a disk under another image's key.
//
// No layers gives sha256 of nothing, the ChainID of one empty layer, whose
// tree is the same.
func chainID(diffIDs []v1.Hash) (v1.Hash, error) {
	if len(diffIDs) == 0 {
		return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sha256.New().Sum(nil))}, nil
	}
	for _, d := range diffIDs {
		if !validHash(d) {
			return v1.Hash{}, fmt.Errorf("diff_id %q is not a sha256 or sha512 digest", d)
		}
	}
	id := diffIDs[0]
	for _, d := range diffIDs[1:] {
		sum := sha256.Sum256([]byte(id.String() + " " + d.String()))
		id = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	}
	return id, nil
}

// validHash also keeps the key safe to use as a file name.
func validHash(h v1.Hash) bool {
	n := map[string]int{"sha256": 64, "sha512": 128}[h.Algorithm]
	return n > 0 && len(h.Hex) == n && strings.Trim(h.Hex, "0123456789abcdef") == ""
}
