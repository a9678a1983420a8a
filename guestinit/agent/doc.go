// Package agent is the host↔guest command channel: the host runs programs
// in the guest (exec with argv, environment, working directory, user and
// stdin; stdout and stderr come back separately; then the exit status) and
// copies files in and out of it, over the virtio-console port
// protocol.PortAgent, without a network. guestinit serves it (Serve), in
// run mode alongside the workload and in agent mode (KernelFlag); the
// host talks to it through a Client, over the port's raw byte stream (a
// QEMU socket chardev) or over vmm's SEQPACKET bridge (package
// vmm/msgbridge), where one message is one frame.
//
// Besides the standard library and x/sys it uses only guestinit/workload
// (execvp's path search), so guest and host tools both import it.
//
// # Wire format
//
// On the port's byte stream every frame is
//
//	length u32 LE | payload (length bytes, headerLen <= length <= MaxFrame)
//
// and on the bridge's SEQPACKET socket each message is one payload. A
// payload is
//
//	id u32 LE | type u8 | body
//
// The id names the request a frame belongs to: the host picks a fresh id
// for each request, and every frame of the request, both ways, carries it.
// A client drops frames whose id is not one of its requests in flight,
// which is how the frames of an abandoned request (or of an earlier
// client) are ignored. Integers in bodies are u32 LE; a string is
// u32 LE length | bytes; a string list is u32 LE count | strings.
//
// Host to guest:
//
//	Exec      flags u8 (1: stdin follows) | dir | user | argv list | env list
//	Stdin     data: the program's stdin, at most MaxData bytes
//	StdinEnd  (empty) the program's stdin ends
//	Put       mode u32 (permission bits) | path
//	PutData   data: the file's contents, at most MaxData bytes
//	PutEnd    (empty) the file is complete
//	Get       path
//	Cancel    (empty) abandon the request: kill its program, drop its file
//	PowerOff  (empty) power the machine off (guestinit's agent mode)
//
// Guest to host:
//
//	Stdout, Stderr  data: the program's output, at most MaxData bytes
//	Exit      status u32 | message: the program ended with status (0-255,
//	          128+n for signal n); or it never started, and message says
//	          why, with status 127 (not found) or 126 (cannot run), as
//	          docker exec's
//	GetData   data: the file's contents, at most MaxData bytes
//	OK        (empty) Put, Get or PowerOff succeeded (Get: after its data)
//	Error     code u8 | message: the request failed; code is one of
//	          the Code values
//	Ack       n u32: the guest has consumed n more bytes of the request's
//	          Stdin or PutData
//
// An exec ends with exactly one Exit; Put, Get and PowerOff with one OK or
// one Error; a malformed request with one Error.
//
// Flow control: the host may have at most Window bytes of one request's
// Stdin and PutData unacknowledged; the guest acknowledges them as it
// writes them to the program or the file. So a program that does not read
// its stdin holds back only its own request, never the stream, and the
// guest buffers at most Window bytes per request. Output flows without
// acknowledgments: the port's own back-pressure paces it.
//
// The guest serves up to MaxRequests requests at once, each on its own
// goroutine; exec's programs run concurrently (a Client waits past
// MaxRequests of its own in flight).
//
// Exec runs the program as docker exec runs one in a container: chrooted
// to ServeOptions.Root, with the base environment plus the request's, in
// its own session (Cancel kills its process group). Its output is relayed
// until both pipes end, or for a second after it exits when a background
// process keeps them open; then the Exit follows. A program is a child of
// the serving process, which in a guest is PID 1 with a reaper taking
// every exit: ServeOptions.Start lets guestinit start it through
// workload.Children, which hands the reaper's exits back to the agent.
//
// File paths resolve inside Root as a program chrooted there sees them:
// ".." stops at the root, and symlinks (absolute ones too) resolve inside
// it. A put writes a temporary file next to the target and renames it
// into place once complete.
//
// A raw stream cannot recover from a frame cut short: a QEMU socket client
// that disconnects in the middle of one desynchronizes the stream. vmm's
// bridge writes whole frames only, whatever its clients do.
package agent
