package guestinit

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestServeOnce_SendsEverythingToOneConnection(t *testing.T) {
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	payload := bytes.Repeat([]byte("0123456789abcdef"), 64<<10/16)
	got := make(chan []byte, 1)
	go func() {
		conn, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			got <- nil
			return
		}
		defer conn.Close()
		b, _ := io.ReadAll(conn)
		got <- b
	}()
	r := serveOnce(ln, bytes.NewReader(payload), "/mnt/f", 10*time.Second)
	if b := <-got; !bytes.Equal(b, payload) {
		t.Errorf("client got %d bytes, want the %d served", len(b), len(payload))
	}
	if v, _ := r.Get("bytes"); !r.OK() || v != "65536" || r.Name != "serve" {
		t.Errorf("serveOnce = %q, want a serve result of 65536 bytes", r)
	}
}

func TestServeOnce_NoConnection_TimesOut(t *testing.T) {
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	r := serveOnce(ln, strings.NewReader("x"), "/f", 50*time.Millisecond)
	if r.OK() || !strings.Contains(r.Err, "no connection within 50ms") {
		t.Errorf("serveOnce = %q, want a timeout failure", r)
	}
}
