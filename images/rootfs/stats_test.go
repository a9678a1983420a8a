package rootfs

import (
	"context"
	"fmt"
	"testing"
)

// TestBuild_Stats builds a few-MB image and reports what it cost; run with
// -v to see the numbers. The disk must stay close to the data it holds:
// tar2ext4 is compact, and MaximumDiskSize is a cap, not a size.
func TestBuild_Stats(t *testing.T) {
	needE2fsprogs(t)
	var lower, upper []ent
	lower = append(lower, dir("usr/"), dir("usr/lib/"), dir("etc/"))
	for i := range 400 {
		size := []int{40, 900, 5000, 30000}[i%4]
		lower = append(lower, reg(fmt.Sprintf("usr/lib/f%03d", i), noise(uint64(i), size)))
	}
	for i := range 50 {
		lower = append(lower, reg(fmt.Sprintf("etc/conf%02d", i), "key=value\n"))
		upper = append(upper, reg(fmt.Sprintf("usr/lib/f%03d", i), noise(uint64(1000+i), 20000)))
	}
	upper = append(upper, reg("usr/lib/.wh.f399", ""))
	img := imageOf(t, layersOf(t, tarOf(t, lower...), tarOf(t, upper...))...)

	path, st, err := Build(context.Background(), img, t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	e2fsckClean(t, path)
	t.Logf("%d layers, %.2f MiB uncompressed; tree: %d entries, %.2f MiB of files; disk %.2f MiB (%.2fx the files, %.2fx the layers); built in %v",
		st.Layers, mib(st.LayerBytes), st.Entries, mib(st.DataBytes), mib(st.DiskBytes),
		float64(st.DiskBytes)/float64(st.DataBytes), float64(st.DiskBytes)/float64(st.LayerBytes), st.Duration)
	if limit := st.DataBytes + int64(st.Entries)*4096 + 1<<20; st.DiskBytes > limit {
		t.Errorf("disk %d bytes for %d bytes of files in %d entries; want at most %d", st.DiskBytes, st.DataBytes, st.Entries, limit)
	}
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }
