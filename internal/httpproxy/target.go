package httpproxy

import (
	"bytes"
	"errors"
	"net/netip"
	"strconv"

	"github.com/egress-router/egress-router/internal/canonical"
)

// target is where a request goes: a host name (canonical) or an IP literal, and a port.
type target struct {
	host string     // canonical host name; "" when the client gave an IP literal
	addr netip.Addr // the IP literal, when host is ""
	port uint16
	// authority is the Host field sent upstream: the canonical host, with the port
	// when it is not the scheme's default.
	authority string
}

var errTarget = errors.New("invalid request target")

// parseAbsolute reads an absolute-form target ("http://host[:port]/path?query") and
// returns the authority part and the origin-form path to send upstream. Only the http
// scheme is proxied as a request; HTTPS goes through CONNECT.
func parseAbsolute(t []byte) (authority, path []byte, err error) {
	const scheme = "http://"
	if len(t) < len(scheme) || !bytes.EqualFold(t[:len(scheme)], []byte(scheme)) || bytes.IndexByte(t, '#') >= 0 {
		return nil, nil, errTarget
	}
	rest := t[len(scheme):]
	end := bytes.IndexAny(rest, "/?")
	if end < 0 {
		return rest, []byte("/"), nil
	}
	authority, path = rest[:end], rest[end:]
	if path[0] == '?' {
		// "http://host?q" has an empty path; origin-form needs the "/".
		return authority, append([]byte("/"), path...), nil
	}
	return authority, path, nil
}

// parseAuthority reads "host:port" (port required when defaultPort is 0) into a
// target. Every host gets the one spelling rules are written in: IP literals through
// canonical.Addr (no octal, hex, mapped or zoned forms), names through
// canonical.Hostname (lowercase, no trailing dot, punycode, no numeric last label).
// User information ("user@host") is refused rather than stripped.
func parseAuthority(a []byte, defaultPort uint16) (target, error) {
	if len(a) == 0 || bytes.IndexByte(a, '@') >= 0 {
		return target{}, errTarget
	}
	host, port := a, []byte(nil)
	if a[0] == '[' {
		end := bytes.IndexByte(a, ']')
		if end < 0 {
			return target{}, errTarget
		}
		host = a[1:end]
		switch rest := a[end+1:]; {
		case len(rest) == 0:
		case rest[0] == ':':
			port = rest[1:]
			if len(port) == 0 {
				return target{}, errTarget
			}
		default:
			return target{}, errTarget
		}
	} else if i := bytes.IndexByte(a, ':'); i >= 0 {
		host, port = a[:i], a[i+1:]
		if len(port) == 0 {
			return target{}, errTarget
		}
	}
	t := target{port: defaultPort}
	if port != nil {
		p, err := strconv.ParseUint(string(port), 10, 16)
		if err != nil || p == 0 || port[0] == '0' {
			return target{}, errTarget
		}
		t.port = uint16(p)
	}
	if t.port == 0 {
		return target{}, errTarget
	}
	if err := t.setHost(string(host), a[0] == '['); err != nil {
		return target{}, err
	}
	return t, nil
}

func (t *target) setHost(host string, bracketed bool) error {
	hostPart := host
	if addr, err := canonical.Addr(host); err == nil {
		if addr.Is6() != bracketed {
			return errTarget // "[192.0.2.1]" or a bare IPv6 literal
		}
		t.addr, hostPart = addr, addr.String()
		if bracketed {
			hostPart = "[" + hostPart + "]"
		}
	} else {
		name, err := canonical.Hostname(host)
		if bracketed || err != nil {
			return errTarget
		}
		t.host, hostPart = name, name
	}
	t.authority = hostPart
	if t.port != 80 {
		t.authority += ":" + strconv.Itoa(int(t.port))
	}
	return nil
}

// String names the target for logs.
func (t target) String() string {
	if t.host != "" {
		return t.host + ":" + strconv.Itoa(int(t.port))
	}
	return netip.AddrPortFrom(t.addr, t.port).String()
}
