package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmm-dev/vmm/guestinit/agent"
	"github.com/vmm-dev/vmm/guestinit/protocol"
	"github.com/vmm-dev/vmm/vmtest"
)

// The agent tests prove vmm's side of the guest agent's channel: `vmm
// boot --port vmm.agent,socket=PATH` bridges the port to a SEQPACKET
// socket, one frame per message. The guest end is the vloop micro-guest,
// which writes back every byte it reads on the port and knows nothing of
// frames, so whatever the client gets back shows what the bridge did to
// the frames on the way in and on the way out. guestinit's own side of the
// channel runs under QEMU in agent_qemu_test.go.

// agentTimeout bounds one transfer through the guest: megabytes through
// the console device, twice.
const agentTimeout = time.Minute

// loopVM boots vloop with its port bridged to a socket, and returns the
// socket's path once the guest has opened the port.
func loopVM(t *testing.T) (*vmtest.VM, string) {
	t.Helper()
	kernel := guest(t, "vloop")
	sock := filepath.Join(t.TempDir(), "agent.sock")
	vm := vmtest.Start(t, vmtest.Config{Kernel: kernel, Memory: "64M",
		Args: []string{"--rng=false", "--stop-timeout=0", "--port", protocol.PortAgent + ",socket=" + sock}})
	vm.Expect(`vloop: ready\r?\n`, guestTimeout)
	return vm, sock
}

func dialAgent(t *testing.T, sock string) *net.UnixConn {
	t.Helper()
	c, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: sock, Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(agentTimeout))
	return c
}

// dataFrame is PutData frame seq of request id: the sequence number, then
// data.
func dataFrame(id uint32, seq int, data []byte) []byte {
	body := binary.LittleEndian.AppendUint32(nil, uint32(seq))
	return agent.Frame{ID: id, Type: agent.TypePutData, Body: append(body, data...)}.Append(nil)
}

// parseData checks that msg is one whole dataFrame and splits it.
func parseData(t *testing.T, msg []byte) (id uint32, seq int, data []byte) {
	t.Helper()
	f, err := agent.ParseFrame(msg)
	if err != nil || f.Type != agent.TypePutData || len(f.Body) < 4 {
		t.Fatalf("a %d-byte message is not a whole data frame (%v)", len(msg), err)
	}
	return f.ID, int(binary.LittleEndian.Uint32(f.Body)), f.Body[4:]
}

// chunk is the data per frame: the most a frame carries, less the
// sequence number.
const chunk = agent.MaxData - 4

// sendFile sends data as frames of request id, in a goroutine; the channel
// gets its error.
func sendFile(c *net.UnixConn, id uint32, data []byte) <-chan error {
	errc := make(chan error, 1)
	go func() {
		for seq, off := 0, 0; off < len(data); seq++ {
			end := min(off+chunk, len(data))
			if _, err := c.Write(dataFrame(id, seq, data[off:end])); err != nil {
				errc <- err
				return
			}
			off = end
		}
		errc <- nil
	}()
	return errc
}

// receiveFile reads frames until it has n bytes of request id's data, in
// order, and returns their sha256; whole frames of other requests are
// skipped and counted.
func receiveFile(t *testing.T, c *net.UnixConn, id uint32, n int) (sum [32]byte, others int) {
	t.Helper()
	h := sha256.New()
	buf := make([]byte, agent.MaxFrame+1)
	for seq, got := 0, 0; got < n; {
		m, err := c.Read(buf)
		if err != nil {
			t.Fatalf("after %d of %d bytes: %v", got, n, err)
		}
		fid, fseq, data := parseData(t, buf[:m])
		if fid != id {
			others++
			continue
		}
		if fseq != seq {
			t.Fatalf("frame %d came as number %d", fseq, seq)
		}
		h.Write(data)
		got += len(data)
		seq++
	}
	return [32]byte(h.Sum(nil)), others
}

// TestAgentBridge_LoopbackGuest_10MiBBothWays: a 10 MiB file goes to the
// guest end and comes back as the same frames, in order, with the same
// sha256; vmm then stops on SIGTERM and removes its socket.
func TestAgentBridge_LoopbackGuest_10MiBBothWays(t *testing.T) {
	vm, sock := loopVM(t)
	c := dialAgent(t, sock)
	data := randomBytes(t, 10<<20)
	start := time.Now()
	sent := sendFile(c, 42, data)
	sum, others := receiveFile(t, c, 42, len(data))
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if want := sha256.Sum256(data); sum != want || others != 0 {
		t.Fatalf("came back with sha256 %s and %d foreign frames; sent %s", hex.EncodeToString(sum[:]), others, hex.EncodeToString(want[:]))
	}
	t.Logf("10 MiB to the guest end and back in %v (%.1f MiB/s each way)", took.Round(time.Millisecond), 10/took.Seconds())

	vm.Signal(syscall.SIGTERM)
	if code := vm.Wait(guestTimeout); code != 143 {
		t.Errorf("vmm exit status %d after SIGTERM, want 143", code)
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the socket is still there after vmm exited: %v", err)
	}
}

// TestAgentBridge_ClientDisconnectsMidStream_NextClientWorks: a client
// that leaves while its frames are in flight both ways leaves no partial
// frame in either direction: the next client gets whole frames only (the
// first one's, which it tells apart by id, then all of its own), and a
// file of its own comes back intact.
func TestAgentBridge_ClientDisconnectsMidStream_NextClientWorks(t *testing.T) {
	_, sock := loopVM(t)
	first := dialAgent(t, sock)
	sent := sendFile(first, 1, randomBytes(t, 4<<20))
	buf := make([]byte, agent.MaxFrame+1)
	for range 3 { // some came back: frames are in flight both ways
		n, err := first.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		parseData(t, buf[:n])
	}
	first.Close()
	<-sent

	second := dialAgent(t, sock)
	data := randomBytes(t, 3<<20+12345)
	start := time.Now()
	sentSecond := sendFile(second, 2, data)
	sum, others := receiveFile(t, second, 2, len(data))
	if err := <-sentSecond; err != nil {
		t.Fatal(err)
	}
	if sum != sha256.Sum256(data) {
		t.Fatal("the second client's file came back with a different sha256")
	}
	t.Logf("the second client's %d bytes came back in %v, after %d whole frames of the first's",
		len(data), time.Since(start).Round(time.Millisecond), others)
	// And nothing more is in flight: one more frame comes straight back.
	if _, err := second.Write(dataFrame(2, 0, []byte("last"))); err != nil {
		t.Fatal(err)
	}
	for {
		n, err := second.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if id, _, d := parseData(t, buf[:n]); id == 2 {
			if !bytes.Equal(d, []byte("last")) {
				t.Fatalf("last frame carried %q", d)
			}
			break
		}
	}
}

// TestAgentBridge_VmmRunAgentFlag: `vmm run --agent PATH` adds the agent
// port to the run's own and bridges it to PATH: vloop finds it among them
// and frames go round; the socket goes when vmm does.
func TestAgentBridge_VmmRunAgentFlag(t *testing.T) {
	kernel := guest(t, "vloop")
	sock := filepath.Join(t.TempDir(), "agent.sock")
	r := startRun(t, nil, "--agent", sock, "--memory", "64M", "--kernel", kernel, "--initrd", runBaseInitrd(t), runImage(t))
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(r.consoleText(), "vloop: ready"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("vloop never got the agent port; stderr:\n%s\nconsole:\n%s", r.stderr, r.consoleText())
		}
	}
	c := dialAgent(t, sock)
	data := randomBytes(t, 1<<20)
	sent := sendFile(c, 9, data)
	if sum, _ := receiveFile(t, c, 9, len(data)); sum != sha256.Sum256(data) {
		t.Error("the frames came back with a different sha256")
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	// The guest sends no exit status: a second SIGTERM stops the VM.
	for range 2 {
		r.cmd.Process.Signal(syscall.SIGTERM)
		time.Sleep(100 * time.Millisecond)
	}
	if code := r.wait(t, 20*time.Second); code != 125 {
		t.Errorf("vmm run exit status %d, want 125 (no exit status); stderr:\n%s", code, r.stderr)
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the socket is still there after vmm run exited: %v", err)
	}
}
