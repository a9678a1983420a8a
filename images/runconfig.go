package images

import (
	"fmt"
	"io"
	"os"
	"path"

	"github.com/u-root/u-root/pkg/cpio"

	"github.com/vmm-dev/vmm/guestinit/protocol"
)

// newcAlign is the newc format's record alignment: an archive appended to
// another must start on it, which a trailer's padding guarantees.
const newcAlign = 4

// runArchiveInoBase starts the per-run archive's inode numbers well above
// any base archive's.
const runArchiveInoBase = 1 << 30

// WriteRunInitramfs writes the initramfs for one run: the cached archive at
// base, unchanged, then a small second archive holding cfg at
// protocol.RunConfigPath. The kernel unpacks concatenated archives in order
// (Documentation/driver-api/early-userspace/buffer-format.rst), so a run
// costs a copy of base and a few hundred bytes, not a rebuild.
func WriteRunInitramfs(w io.Writer, base string, cfg protocol.RunConfig) error {
	data, err := cfg.Marshal()
	if err != nil {
		return err
	}
	f, err := os.Open(base)
	if err != nil {
		return fmt.Errorf("open the base initramfs: %w", err)
	}
	defer f.Close()
	n, err := io.Copy(w, f)
	if err != nil {
		return fmt.Errorf("copy the base initramfs: %w", err)
	}
	if n%newcAlign != 0 {
		return fmt.Errorf("base initramfs %s is %d bytes, not a whole newc archive (a multiple of %d)", base, n, newcAlign)
	}
	return writeRunArchive(w, data)
}

// writeRunArchive writes the per-run archive: the config's directory and
// the config file, readable by root only.
func writeRunArchive(w io.Writer, data []byte) error {
	name := path.Clean(protocol.RunConfigPath)[1:] // archive names are relative
	recs := []cpio.Record{
		cpio.Directory(path.Dir(name), 0o700),
		cpio.StaticRecord(data, cpio.Info{Name: name, Mode: cpio.S_IFREG | 0o600}),
	}
	cw := cpio.Newc.Writer(w)
	for i := range recs {
		// Inode numbers apart from the base archive's, and one link each,
		// so the kernel never takes an entry for a hard link.
		recs[i].Ino = runArchiveInoBase + uint64(i)
		recs[i].NLink = 1
		if err := cw.WriteRecord(recs[i]); err != nil {
			return fmt.Errorf("write the run config archive: %w", err)
		}
	}
	if err := cpio.WriteTrailer(cw); err != nil {
		return fmt.Errorf("write the run config archive: %w", err)
	}
	return nil
}
