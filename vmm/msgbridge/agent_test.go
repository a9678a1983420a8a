package msgbridge

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vmm-dev/vmm/guestinit/agent"
)

// The agent's packet client through the bridge to the agent's server on
// the port's byte stream, as vmm and guestinit run them, with the guest's
// side here in the test: exec and a 10 MiB file both ways, then a new
// client after the first went away.
func TestBridge_AgentClientToServer(t *testing.T) {
	b := newBridge(t)
	root := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	port := struct {
		io.Reader
		io.Writer
	}{b.In(), b.Out()}
	served := make(chan error, 1)
	go func() { served <- agent.Serve(ctx, port, agent.ServeOptions{}) }()

	c, err := agent.Dial(ctx, b.Path())
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	status, err := c.Exec(ctx, agent.Cmd{Argv: []string{"sh", "-c", "cat; echo err >&2; exit 3"}, Stdin: bytes.NewReader([]byte("in\n")), Stdout: &stdout, Stderr: &stderr})
	if err != nil || status != 3 || stdout.String() != "in\n" || stderr.String() != "err\n" {
		t.Fatalf("Exec = %d, %v, stdout %q, stderr %q", status, err, &stdout, &stderr)
	}
	data := make([]byte, 10<<20)
	rand.Read(data)
	if err := c.PutFile(ctx, root+"/blob", bytes.NewReader(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if onDisk, _ := os.ReadFile(filepath.Join(root, "blob")); sha256.Sum256(onDisk) != sha256.Sum256(data) {
		t.Fatal("the file put differs")
	}
	h := sha256.New()
	if err := c.GetFile(ctx, root+"/blob", h); err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(data); !bytes.Equal(h.Sum(nil), sum[:]) {
		t.Fatal("the file got differs")
	}
	// Gone in the middle of a long exec; the next client is served.
	go c.Exec(ctx, agent.Cmd{Argv: []string{"sh", "-c", "while :; do echo spam; done"}, Stdout: io.Discard})
	time.Sleep(50 * time.Millisecond)
	c.Close()
	c, err = agent.Dial(ctx, b.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	stdout.Reset()
	if status, err := c.Exec(ctx, agent.Cmd{Argv: []string{"echo", "second client"}, Stdout: &stdout}); err != nil || status != 0 || stdout.String() != "second client\n" {
		t.Fatalf("second client's Exec = %d, %v, %q", status, err, &stdout)
	}
	cancel()
	<-served
}
