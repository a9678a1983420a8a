package netswitch

import (
	"bytes"
	"net"
	"os"
	"slices"
	"strings"
	"syscall"
)

// PortStats are one port's counters since it was first seen. Frames that
// came in on the port count once in Forwarded, Flooded or Dropped; frames
// sent out of it count in Delivered or Lost.
type PortStats struct {
	// Addr is the port's socket address: a path, or @name for an
	// abstract one (what a vmm's socket backend autobinds).
	Addr string
	// MACs are the addresses learned on the port, in order.
	MACs []net.HardwareAddr

	Forwarded uint64 // unicast frames sent to the one port that owns their destination
	Flooded   uint64 // broadcast, multicast and unknown unicast frames sent to every other port
	// Dropped counts datagrams from the port that went nowhere: shorter
	// than an Ethernet header (and not a registration), longer than
	// MaxFrame, a registration or source of a group or zero address, or
	// a frame to a MAC on this same port.
	Dropped uint64

	Delivered uint64 // frames sent to the port
	Lost      uint64 // frames for the port that its socket had no room for

	// Route is the socket the switch sends the port's frames on, whose
	// buffer holds what the port leaves unread.
	Route Route
}

// Stats are the switch's counters.
type Stats struct {
	Ports []PortStats // the ports the switch knows now, by address
	// Dropped counts datagrams from senders that are no port: an unbound
	// socket, or a first datagram that is neither frame nor registration.
	Dropped uint64
	// Forgotten counts ports dropped because their socket went away.
	Forgotten uint64
}

// Stats returns a snapshot of the counters.
func (s *Switch) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Dropped: s.dropped, Forgotten: s.forgotten}
	for _, p := range s.ports {
		ps := p.stats
		ps.MACs = nil
		for mac := range p.macs {
			ps.MACs = append(ps.MACs, net.HardwareAddr(mac[:]))
		}
		slices.SortFunc(ps.MACs, func(a, b net.HardwareAddr) int { return bytes.Compare(a, b) })
		st.Ports = append(st.Ports, ps)
	}
	slices.SortFunc(st.Ports, func(a, b PortStats) int { return strings.Compare(a.Addr, b.Addr) })
	return st
}

// Port returns the stats of the port that owns mac, if one does.
func (st Stats) Port(mac net.HardwareAddr) (PortStats, bool) {
	for _, p := range st.Ports {
		if slices.ContainsFunc(p.MACs, func(m net.HardwareAddr) bool { return bytes.Equal(m, mac) }) {
			return p, true
		}
	}
	return PortStats{}, false
}

// fileID names a file across renames: its device and inode.
type fileID struct{ dev, ino uint64 }

func statID(path string) (fileID, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return fileID{}, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, os.ErrInvalid
	}
	return fileID{dev: st.Dev, ino: st.Ino}, nil
}
