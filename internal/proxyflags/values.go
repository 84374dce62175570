package proxyflags

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// The values below are parsed, and so checked, as they are set: the flag package then
// reports an error as `invalid value "…" for flag -name: …`, as for a number.

// Ports defines a flag taking a comma-separated list of ports, 1 to 65535, at least
// one.
func (s *Set) Ports(p *[]uint16, name string, def []uint16, usage string) {
	*p = def
	s.fs.Var(portList{p}, name, usage)
}

type portList struct{ p *[]uint16 }

func (l portList) String() string {
	if l.p == nil {
		return ""
	}
	s := make([]string, len(*l.p))
	for i, p := range *l.p {
		s[i] = strconv.Itoa(int(p))
	}
	return strings.Join(s, ",")
}

func (l portList) Set(v string) error {
	var ports []uint16
	for _, s := range strings.Split(v, ",") {
		p, err := parsePort(s)
		if err != nil {
			return err
		}
		ports = append(ports, p)
	}
	*l.p = ports
	return nil
}

func parsePort(s string) (uint16, error) {
	p, err := strconv.ParseUint(strings.TrimSpace(s), 10, 16)
	if err != nil || p == 0 {
		return 0, fmt.Errorf("%q is not a port: want 1 to 65535", s)
	}
	return uint16(p), nil
}

// listenForm is what a listening address flag takes.
type listenForm int

const (
	// hostPort is a listener of the proxy's own: HOST:PORT, HOST an IP address or
	// empty for all, PORT 1 to 65535 (0 would listen where nobody looks).
	hostPort listenForm = iota
	// hostPortOrNone is hostPort, or empty for no listener at all.
	hostPortOrNone
	// hostOnly is the address of listeners whose ports come from elsewhere (the DNS
	// proxy's lines): an IP address, or empty for all.
	hostOnly
)

// listenAddr is a listening address, kept as the string net.Listen (or
// net.JoinHostPort) takes. HOST is an IP address, not a name: a listener bound to
// whatever a name resolves to at start would be a guess.
type listenAddr struct {
	p    *string
	form listenForm
}

func (a listenAddr) String() string {
	if a.p == nil {
		return ""
	}
	return *a.p
}

func (a listenAddr) Set(v string) error {
	if err := a.form.check(v); err != nil {
		return err
	}
	*a.p = v
	return nil
}

func (f listenForm) check(v string) error {
	switch {
	case f == hostOnly:
		if v != "" && !isIP(v) {
			return errors.New("want an IP address without a port (each line listens on its own), or empty for all addresses")
		}
		return nil
	case f == hostPortOrNone && v == "":
		return nil
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil || host != "" && !isIP(host) {
		return errors.New("want HOST:PORT, HOST an IP address or empty for all addresses")
	}
	_, err = parsePort(port)
	return err
}

func isIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

// serverList is name servers, each IP:PORT or a bare IP (port 53, as
// /etc/resolv.conf lists them), kept as the "host:port" strings the resolver takes.
type serverList struct{ p *[]string }

func (l serverList) String() string {
	if l.p == nil {
		return ""
	}
	return strings.Join(*l.p, ",")
}

func (l serverList) Set(v string) error {
	if v == "" {
		*l.p = nil
		return nil
	}
	var servers []string
	for _, s := range strings.Split(v, ",") {
		server, err := parseServer(strings.TrimSpace(s))
		if err != nil {
			return err
		}
		servers = append(servers, server)
	}
	*l.p = servers
	return nil
}

func parseServer(s string) (string, error) {
	if addr, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(addr, 53).String(), nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil || ap.Port() == 0 {
		return "", fmt.Errorf("%q is not a name server: want IP or IP:PORT ([IPv6]:PORT), PORT 1 to 65535", s)
	}
	return ap.String(), nil
}
