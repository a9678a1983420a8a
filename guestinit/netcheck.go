package guestinit

import (
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/vmm-dev/vmm/guestinit/protocol"
)

// netCheck configures the interface, reports it, and then, when a port is
// given, serves the file to one TCP connection and reports that.
func netCheck(report func(protocol.Result), n protocol.NetCheck) {
	ifc, err := waitInterface(n.Interface, deviceWait)
	if err == nil {
		err = configureIPv4(ifc.Index, n)
	}
	if err != nil {
		report(protocol.Failed(protocol.CheckNet, err))
		return
	}
	kv := []string{"if", n.Interface, "mac", ifc.HardwareAddr.String(), "addr", n.Addr.String()}
	if n.Gateway.IsValid() {
		kv = append(kv, "gw", n.Gateway.String())
	}
	if n.Port == 0 {
		report(protocol.Passed(protocol.CheckNet, kv...))
		return
	}
	// Open the file before listening, so a missing one fails the net line
	// that a host waits for, not a connection it has already made.
	f, err := os.Open(n.File)
	if err != nil {
		report(protocol.Failed(protocol.CheckNet, fmt.Errorf("file to serve: %w", err)))
		return
	}
	defer f.Close()
	ln, err := net.Listen("tcp4", ":"+strconv.Itoa(int(n.Port)))
	if err != nil {
		report(protocol.Failed(protocol.CheckNet, err))
		return
	}
	defer ln.Close()
	report(protocol.Passed(protocol.CheckNet, append(kv, "port", strconv.Itoa(int(n.Port)))...))
	report(serveOnce(ln.(*net.TCPListener), f, n.File, n.Timeout))
}

// serveOnce accepts one connection within timeout, writes all of f to it
// and closes it.
func serveOnce(ln *net.TCPListener, f io.Reader, name string, timeout time.Duration) protocol.Result {
	deadline := time.Now().Add(timeout)
	if err := ln.SetDeadline(deadline); err != nil {
		return protocol.Failed(protocol.ResultServe, err)
	}
	conn, err := ln.Accept()
	if err != nil {
		return protocol.Failed(protocol.ResultServe, fmt.Errorf("no connection within %v: %w", timeout, err))
	}
	defer conn.Close()
	if err := conn.SetDeadline(deadline); err != nil {
		return protocol.Failed(protocol.ResultServe, err)
	}
	n, err := io.Copy(conn, f)
	if err == nil {
		err = conn.Close()
	}
	if err != nil {
		return protocol.Failed(protocol.ResultServe, fmt.Errorf("send %s to %s after %d bytes: %w", name, conn.RemoteAddr(), n, err))
	}
	return protocol.Passed(protocol.ResultServe, "file", name, "peer", conn.RemoteAddr().String(), "bytes", strconv.FormatInt(n, 10))
}

// configureIPv4 sets the address, brings the link up and adds the default
// route when there is a gateway.
func configureIPv4(index int, n protocol.NetCheck) error {
	nl, err := dialRtnetlink()
	if err != nil {
		return err
	}
	defer nl.Close()
	if err := nl.do(func(seq uint32) []byte { return newAddrRequest(seq, index, n.Addr) }); err != nil {
		return fmt.Errorf("add address %s to %s: %w", n.Addr, n.Interface, err)
	}
	if err := nl.do(func(seq uint32) []byte { return linkUpRequest(seq, index) }); err != nil {
		return fmt.Errorf("bring %s up: %w", n.Interface, err)
	}
	if n.Gateway.IsValid() {
		if err := nl.do(func(seq uint32) []byte { return defaultRouteRequest(seq, index, n.Gateway) }); err != nil {
			return fmt.Errorf("add default route via %s: %w", n.Gateway, err)
		}
	}
	return nil
}

// waitInterface waits for the driver to register the named interface: the
// module is loaded by then, but the probe is not always finished.
func waitInterface(name string, timeout time.Duration) (*net.Interface, error) {
	var ifc *net.Interface
	err := waitFor(timeout, func() (err error) {
		ifc, err = net.InterfaceByName(name)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", name, err)
	}
	return ifc, nil
}

// deviceWait bounds how long a check waits for its device to appear.
const deviceWait = 10 * time.Second

// waitFor polls try until it succeeds or timeout passes, and returns its
// last error.
func waitFor(timeout time.Duration, try func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := try()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}
