// Package protocol is what the host and guestinit agree on, and nothing
// else: the kernel command-line options guestinit reads, the files the host
// writes into the initramfs for it, and the lines it prints on the console.
// It is a leaf (standard library only), so images, e2e tests and guestinit
// itself import the same definitions.
//
// # Kernel modules
//
// When the initramfs holds the file ModuleList, guestinit loads the modules
// it names, one absolute path per line, in that order (the host resolves
// dependencies and writes dependencies first), before anything else.
//
// # Checks
//
// Checks prove the guest side of vmm's devices against a real kernel. They
// run only when the command line asks for them with
//
//	vmm.check=LIST          comma-separated subset of cpus,pci,disk,net
//
// and always in the order cpus, pci, disk, net, whatever order LIST has.
// Every value below is percent-decoded (as in URLs: %20 is a space), so
// file contents and paths with spaces fit on the command line.
//
//	cpus  prints the online CPU list (/sys/devices/system/cpu/online).
//	pci   prints every PCI function's vendor:device from /sys/bus/pci/devices.
//	disk  mounts a disk at /mnt (MountPoint), prints the SHA-256 of one file
//	      on it, writes another, syncs. The disk stays mounted until every
//	      check has run (the net check may serve a file from it), then it is
//	      unmounted, which prints an "umount" result.
//	        vmm.disk.dev=PATH     block device (default /dev/vda)
//	        vmm.disk.fstype=TYPE  filesystem (default ext4)
//	        vmm.disk.hash=PATH    file to hash, relative to the disk's root
//	        vmm.disk.write=PATH   file to create or replace, relative to the root
//	        vmm.disk.data=TEXT    its contents (default empty)
//	net   gives an interface a static IPv4 address and brings it up (the
//	      kernel then answers ping by itself), optionally adds a default
//	      route, and optionally serves one file to one TCP connection.
//	        vmm.net.if=NAME       interface (default eth0)
//	        vmm.net.addr=A.B.C.D/N  address and prefix length (required)
//	        vmm.net.gw=A.B.C.D    default gateway (optional)
//	        vmm.net.port=N        TCP port to serve on (optional)
//	        vmm.net.file=PATH     guest path of the file served (required with port)
//	        vmm.net.timeout=SECS  how long to wait for the connection (default 60)
//
// # Results
//
// Each check prints one line per result, starting with ResultPrefix:
//
//	VMM-CHECK cpus online=0-1 count=2 ok
//	VMM-CHECK pci 0000:00:00.0=8086:29c0 0000:00:02.0=1af4:1042 ok
//	VMM-CHECK disk dev=/dev/vda hash=/hello.bin sha256=9f86... wrote=/out.txt bytes=5 ok
//	VMM-CHECK net if=eth0 mac=52:54:00:12:34:56 addr=10.0.2.15/24 port=8080 ok
//	VMM-CHECK serve file=/mnt/hello.bin peer=10.0.2.1:51234 bytes=131072 ok
//	VMM-CHECK umount path=/mnt ok
//	VMM-CHECK disk FAIL mount /dev/vda on /mnt: no such device or address
//
// A failed check prints FAIL and why, and the next check still runs. When
// the vmm.* options cannot be used at all, the only line is a "config"
// failure. The "net" line comes once the address is set and the port is
// listening: a host waits for it before it pings or connects. ParseResult
// reads a line back.
//
// # Runs
//
// For `vmm run` the host appends a second archive holding RunConfigPath
// to the cached initramfs; guestinit runs the workload it describes when
// the file is there. The image's read-only ext4 disk is RootfsDevice.
// The workload's stdio travels on virtio-console ports named PortStdin,
// PortStdout and PortStderr, and the control port PortControl carries
// line messages both ways (control.go):
//
//	host → guest   signal N      deliver signal N to the workload
//	host → guest   winsize R C   the terminal is R rows by C columns (-t)
//	guest → host   exit N        the workload's exit status; power-off follows
//
// The kernel's and guestinit's own messages stay on the serial console,
// so the workload's stdout and stderr are exactly its bytes.
package protocol
