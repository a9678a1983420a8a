// Package workload runs a container image's process inside a vmm guest
// the way docker runs it in a container.
//
// Resolve applies docker's rules to a protocol.RunConfig and the image's
// /etc/passwd and /etc/group, giving a Spec: argv, environment, working
// directory, uid, gid and groups. Supervise then starts the Spec and does
// what PID 1 does while it runs: it reaps every child that exits (orphans
// included), forwards the signals a user sends to the workload, and
// returns the workload's exit status as docker reports it.
//
// Mounting the root filesystem and switching into it need a kernel of
// their own and are guestinit's job; this package assumes they are done
// (or, for tests, uses Options.Chroot).
package workload
