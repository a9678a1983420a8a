package rootfs

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"

	"github.com/Microsoft/hcsshim/ext4/tar2ext4"
)

// padInodeBitmaps sets the bits past each group's last inode in its inode
// bitmap. ext4 wants them set, and e2fsck 1.47 reports "Padding at end of
// inode bitmap is not set" otherwise; tar2ext4 v0.15.0 leaves them clear.
// The kernel mounts the disk either way; this keeps e2fsck -fn clean.
func padInodeBitmaps(f *os.File) error {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	sb, err := tar2ext4.ReadExt4SuperBlockReadSeeker(f)
	if err != nil {
		return err
	}
	const incompat64bit = 0x80 // its group descriptors would be 64 bytes
	ipg, bs := sb.InodesPerGroup, uint32(1024)<<sb.LogBlockSize
	if sb.FeatureIncompat&incompat64bit != 0 || ipg == 0 || ipg > bs*8 || sb.InodesCount%ipg != 0 {
		return fmt.Errorf("pad inode bitmaps: unexpected layout: %d inodes, %d per group, %d-byte blocks", sb.InodesCount, ipg, bs)
	}
	if ipg == bs*8 {
		return nil
	}
	bitmap := make([]byte, bs)
	gdt := int64(sb.FirstDataBlock+1) * int64(bs) // group descriptors follow the superblock's block
	for g := range int64(sb.InodesCount / ipg) {
		var gd [32]byte // ext4 group descriptor; bg_inode_bitmap_lo at 4
		if _, err := f.ReadAt(gd[:], gdt+g*int64(len(gd))); err != nil {
			return fmt.Errorf("pad inode bitmaps: group %d: %w", g, err)
		}
		off := int64(binary.LittleEndian.Uint32(gd[4:8])) * int64(bs)
		if _, err := f.ReadAt(bitmap, off); err != nil {
			return fmt.Errorf("pad inode bitmaps: group %d: %w", g, err)
		}
		for i := ipg; i < bs*8; i++ {
			bitmap[i/8] |= 1 << (i % 8)
		}
		if _, err := f.WriteAt(bitmap, off); err != nil {
			return fmt.Errorf("pad inode bitmaps: group %d: %w", g, err)
		}
	}
	return nil
}
