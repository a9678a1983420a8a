package guestinit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// Requests to the kernel's routing netlink (rtnetlink(7)): what `ip addr
// add`, `ip link set up` and `ip route add default` send, built as bytes by
// pure functions so tests can check them. Layouts are the C structs of
// include/uapi/linux/{netlink,rtnetlink,if_addr,if_link}.h, in host byte
// order.

// nlRequest returns a netlink message: an nlmsghdr, then body.
func nlRequest(typ, flags uint16, seq uint32, body []byte) []byte {
	b := make([]byte, unix.SizeofNlMsghdr, unix.SizeofNlMsghdr+len(body))
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], uint32(unix.SizeofNlMsghdr+len(body)))   // nlmsg_len
	ne.PutUint16(b[4:], typ)                                     // nlmsg_type
	ne.PutUint16(b[6:], flags|unix.NLM_F_REQUEST|unix.NLM_F_ACK) // nlmsg_flags
	ne.PutUint32(b[8:], seq)                                     // nlmsg_seq
	// nlmsg_pid 0: the kernel fills in the sender.
	return append(b, body...)
}

// appendAttr appends a struct rtattr and its data, padded to 4 bytes
// (RTA_ALIGN).
func appendAttr(b []byte, typ uint16, data []byte) []byte {
	var hdr [unix.SizeofRtAttr]byte
	binary.NativeEndian.PutUint16(hdr[0:], uint16(unix.SizeofRtAttr+len(data))) // rta_len
	binary.NativeEndian.PutUint16(hdr[2:], typ)                                 // rta_type
	b = append(append(b, hdr[:]...), data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// newAddrRequest is RTM_NEWADDR: put prefix p's address on interface index.
func newAddrRequest(seq uint32, index int, p netip.Prefix) []byte {
	body := make([]byte, unix.SizeofIfAddrmsg)
	body[0] = unix.AF_INET                                 // ifa_family
	body[1] = byte(p.Bits())                               // ifa_prefixlen
	body[3] = unix.RT_SCOPE_UNIVERSE                       // ifa_scope
	binary.NativeEndian.PutUint32(body[4:], uint32(index)) // ifa_index
	addr := p.Addr().As4()
	body = appendAttr(body, unix.IFA_LOCAL, addr[:])
	body = appendAttr(body, unix.IFA_ADDRESS, addr[:])
	return nlRequest(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_REPLACE, seq, body)
}

// linkUpRequest is RTM_NEWLINK on an existing link: set IFF_UP.
func linkUpRequest(seq uint32, index int) []byte {
	body := make([]byte, unix.SizeofIfInfomsg)
	body[0] = unix.AF_UNSPEC                               // ifi_family
	binary.NativeEndian.PutUint32(body[4:], uint32(index)) // ifi_index
	binary.NativeEndian.PutUint32(body[8:], unix.IFF_UP)   // ifi_flags
	binary.NativeEndian.PutUint32(body[12:], unix.IFF_UP)  // ifi_change
	return nlRequest(unix.RTM_NEWLINK, 0, seq, body)
}

// defaultRouteRequest is RTM_NEWROUTE: 0.0.0.0/0 via gw out of index.
func defaultRouteRequest(seq uint32, index int, gw netip.Addr) []byte {
	body := make([]byte, unix.SizeofRtMsg)
	body[0] = unix.AF_INET           // rtm_family; rtm_dst_len 0: default
	body[4] = unix.RT_TABLE_MAIN     // rtm_table
	body[5] = unix.RTPROT_BOOT       // rtm_protocol
	body[6] = unix.RT_SCOPE_UNIVERSE // rtm_scope
	body[7] = unix.RTN_UNICAST       // rtm_type
	a := gw.As4()
	body = appendAttr(body, unix.RTA_GATEWAY, a[:])
	var oif [4]byte
	binary.NativeEndian.PutUint32(oif[:], uint32(index))
	body = appendAttr(body, unix.RTA_OIF, oif[:])
	return nlRequest(unix.RTM_NEWROUTE, unix.NLM_F_CREATE|unix.NLM_F_REPLACE, seq, body)
}

// errNoAck is returned when the kernel's reply holds no answer to the request.
var errNoAck = errors.New("rtnetlink: no acknowledgement in the reply")

// parseAck finds the NLMSG_ERROR message answering seq in a reply and
// returns its error: nil for an acknowledgement, the errno otherwise.
func parseAck(reply []byte, seq uint32) error {
	ne := binary.NativeEndian
	for len(reply) >= unix.SizeofNlMsghdr {
		n := int(ne.Uint32(reply[0:]))
		if n < unix.SizeofNlMsghdr || n > len(reply) {
			return fmt.Errorf("rtnetlink: bad message length %d in a %d-byte reply", n, len(reply))
		}
		typ, gotSeq := ne.Uint16(reply[4:]), ne.Uint32(reply[8:])
		if typ == unix.NLMSG_ERROR && gotSeq == seq {
			if n < unix.SizeofNlMsghdr+4 {
				return fmt.Errorf("rtnetlink: short error message (%d bytes)", n)
			}
			if errno := int32(ne.Uint32(reply[unix.SizeofNlMsghdr:])); errno != 0 {
				return unix.Errno(-errno)
			}
			return nil
		}
		step := (n + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1)
		if step > len(reply) {
			break
		}
		reply = reply[step:]
	}
	return errNoAck
}

// rtnetlink sends requests, in order, and waits for each one's
// acknowledgement.
type rtnetlink struct {
	fd  int
	seq uint32
}

func dialRtnetlink() (*rtnetlink, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("rtnetlink socket: %w", err)
	}
	// A kernel that never answers must not hang init.
	tv := unix.NsecToTimeval((5 * time.Second).Nanoseconds())
	if err := errors.Join(
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv),
		unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}),
	); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("rtnetlink socket: %w", err)
	}
	return &rtnetlink{fd: fd}, nil
}

func (r *rtnetlink) Close() error { return unix.Close(r.fd) }

// do sends the request that build makes for the next sequence number.
func (r *rtnetlink) do(build func(seq uint32) []byte) error {
	r.seq++
	if err := unix.Sendto(r.fd, build(r.seq), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	buf := make([]byte, 8192)
	for {
		n, _, err := unix.Recvfrom(r.fd, buf, 0)
		if err != nil {
			return err
		}
		if err := parseAck(buf[:n], r.seq); err != errNoAck {
			return err
		}
	}
}
