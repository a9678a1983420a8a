package rootfs

// Options bound what an image may ask of the host.
type Options struct {
	// MaxBytes caps the regular-file data of the flattened tree, and of any
	// one entry (a sparse entry counts at its full size, since the disk
	// stores it whole). 0 means DefaultMaxBytes.
	MaxBytes int64
	// MaxEntries caps the tar entries read over all layers, which bounds
	// the memory the plan holds. 0 means DefaultMaxEntries.
	MaxEntries int
}

const (
	// DefaultMaxBytes is above any image a micro-VM is likely to run and
	// below what would fill a host's disk by surprise.
	DefaultMaxBytes = 8 << 30
	// DefaultMaxEntries is some ten times the files of a large distribution
	// image; the plan takes a few hundred bytes per entry.
	DefaultMaxEntries = 2 << 20
)

func (o Options) maxBytes() int64 {
	if o.MaxBytes > 0 {
		return o.MaxBytes
	}
	return DefaultMaxBytes
}

func (o Options) maxEntries() int {
	if o.MaxEntries > 0 {
		return o.MaxEntries
	}
	return DefaultMaxEntries
}
