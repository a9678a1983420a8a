package guestinit

import (
	"path"

	"golang.org/x/sys/unix"
)

// Where run mode assembles the container's root before switching into it:
// the image's read-only disk below, a tmpfs for everything the workload
// writes above, and the overlay of the two. Runs never modify the cached
// image (the disk is mounted read-only, and the host opens it read-only).
const (
	runLower = "/run/vmm/lower" // the image's ext4, read-only
	runRW    = "/run/vmm/rw"    // tmpfs holding the overlay's upper and work dirs
	RunRoot  = "/run/vmm/root"  // the overlay: the workload's /
)

// RootfsMounts mounts the image disk dev and the overlay over it at
// RunRoot, in order. The upper and work directories must exist on the
// tmpfs before the overlay mount (CreateDirs lists them).
func RootfsMounts(dev string) []Mount {
	return []Mount{
		{Source: dev, Target: runLower, FSType: "ext4", Flags: unix.MS_RDONLY},
		{Source: "tmpfs", Target: runRW, FSType: "tmpfs", Flags: unix.MS_NOSUID | unix.MS_NODEV, Data: "mode=0755"},
		{Source: "overlay", Target: RunRoot, FSType: "overlay",
			Data: "lowerdir=" + runLower + ",upperdir=" + path.Join(runRW, "upper") + ",workdir=" + path.Join(runRW, "work")},
	}
}

// OverlayDirs are the directories RootfsMounts needs on the tmpfs between
// its second and third mount.
func OverlayDirs() []string {
	return []string{path.Join(runRW, "upper"), path.Join(runRW, "work")}
}

// WorkloadMounts are the filesystems a container expects inside its root,
// as docker and runc give them, mounted under root before switching into
// it.
func WorkloadMounts(root string) []Mount {
	const hardened = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	at := func(p string) string { return path.Join(root, p) }
	return []Mount{
		{Source: "proc", Target: at("/proc"), FSType: "proc", Flags: hardened},
		{Source: "sysfs", Target: at("/sys"), FSType: "sysfs", Flags: hardened | unix.MS_RDONLY},
		{Source: "devtmpfs", Target: at("/dev"), FSType: "devtmpfs", Flags: unix.MS_NOSUID, Data: "mode=0755"},
		// A private devpts instance: the workload's ptys (and -t's) live
		// here; gid 5 is "tty" in Debian and Alpine alike.
		{Source: "devpts", Target: at("/dev/pts"), FSType: "devpts", Flags: unix.MS_NOSUID | unix.MS_NOEXEC,
			Data: "newinstance,ptmxmode=0666,mode=0620,gid=5"},
		{Source: "shm", Target: at("/dev/shm"), FSType: "tmpfs", Flags: hardened, Data: "mode=1777,size=65536k"},
		{Source: "tmpfs", Target: at("/run"), FSType: "tmpfs", Flags: unix.MS_NOSUID | unix.MS_NODEV, Data: "mode=0755"},
		{Source: "tmpfs", Target: at("/tmp"), FSType: "tmpfs", Flags: unix.MS_NOSUID | unix.MS_NODEV, Data: "mode=1777"},
	}
}
