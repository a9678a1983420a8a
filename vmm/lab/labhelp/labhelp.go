// Package labhelp is the help text of `vmm lab`, shared by vmm (`vmm help
// lab`) and vmm-lab, which runs the lab. It is a leaf apart from package
// lab so that vmm prints the help without linking the lab and its TOML
// parser.
package labhelp

// Text is what `vmm help lab` prints.
const Text = `Usage: vmm lab FILE

FILE is a TOML lab file:

  [[network]]
  name = "lan"                    # subnet = "10.89.0.0/24" by default

  [[vm]]
  name = "server"
  image = "oci-layout:out/busybox:latest"
  command = ["httpd", "-f", "-p", "80"]
  networks = ["lan"]              # image VMs get an address and /etc/hosts names

  [[vm]]
  name = "probe"
  kernel = "probe.bzImage"        # initrd, cmdline; memory, cpus, disks for any VM
  networks = ["lan"]

Every VM is its own vmm process (vmm boot for a kernel, vmm run for an
image); the VMs on a network share an L2 segment through a switch this
process hosts, so no root and no host interface is involved. Their output
is shown line by line, prefixed with the VM's name. Ctrl-C stops them all
(SIGTERM, then SIGKILL after 10 s).

Exit status: 0 when every VM ended with status 0, 1 otherwise (each VM's
status is printed at the end), 2 for a bad command line or lab file.
`
