// Package canonical gives every address and host name in the configuration and in
// requests exactly one spelling, so rules and the destination guard compare like with
// like. Anything with a second spelling (IPv4 in octal or hex, IPv4-mapped IPv6, zone
// IDs, mixed case, trailing dots, Unicode names) is rejected or normalised here.
package canonical

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Addr parses an IPv4 or IPv6 literal. netip already refuses the lenient IPv4 forms
// (leading zeros, octal, hex, fewer than four parts); on top of that, IPv6 forms that
// embed an IPv4 address and zone IDs are refused, since they name an address that a
// rule written for the plain form would not match.
func Addr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%s is not an IP address", strconv.Quote(s))
	}
	if err := refuseSecondSpelling(a); err != nil {
		return netip.Addr{}, fmt.Errorf("%s: %w", strconv.Quote(s), err)
	}
	return a, nil
}

// Prefix parses an address with a prefix length ("192.0.2.0/24", "2001:db8::/64").
// Host bits may be set: callers decide whether that is an address-with-mask (an
// interface address) or a mistake (a range rule).
func Prefix(s string) (netip.Prefix, error) {
	addr, bits, ok := strings.Cut(s, "/")
	if !ok {
		return netip.Prefix{}, fmt.Errorf("%s is not in CIDR form (address/length)", strconv.Quote(s))
	}
	a, err := Addr(addr)
	if err != nil {
		return netip.Prefix{}, err
	}
	n, err := strconv.Atoi(bits)
	if err != nil || n < 0 || n > a.BitLen() || bits != strconv.Itoa(n) {
		return netip.Prefix{}, fmt.Errorf("%s has an invalid mask /%s (want 0-%d)", strconv.Quote(s), bits, a.BitLen())
	}
	return netip.PrefixFrom(a, n), nil
}

func refuseSecondSpelling(a netip.Addr) error {
	switch {
	case a.Zone() != "":
		return errors.New("zone IDs are not allowed")
	case a.Is4In6():
		return errors.New("IPv4-mapped IPv6 addresses are not allowed; write the IPv4 address")
	case a.Is6() && isIPv4Compatible(a):
		return errors.New("IPv4-compatible IPv6 addresses are not allowed; write the IPv4 address")
	case ipv4Translated.Contains(a):
		return errors.New("IPv4-translated (SIIT, ::ffff:0:a.b.c.d) addresses are not allowed; write the IPv4 address")
	}
	return nil
}

// ipv4Translated is RFC 2765's IPv4-translated form, one more IPv6 spelling of an
// IPv4 address.
var ipv4Translated = netip.MustParsePrefix("::ffff:0:0:0/96")

// isIPv4Compatible reports the deprecated ::a.b.c.d form (RFC 4291 2.5.5.1), leaving
// :: and ::1 alone.
func isIPv4Compatible(a netip.Addr) bool {
	b := a.As16()
	for _, x := range b[:12] {
		if x != 0 {
			return false
		}
	}
	return b[12]|b[13] != 0
}

// lookup maps Unicode names to lowercase punycode and enforces the letters-digits-
// hyphen rule of host names (STD3), as a resolver would see them. Its mapping also
// turns every character UTS #46 reads as a label separator (U+3002, U+FF0E, U+FF61)
// into '.'. It leaves empty labels alone, so Hostname can judge dots on its output;
// profile then adds the DNS length limits.
var (
	lookup  = idna.New(idnaOptions(false)...)
	profile = idna.New(idnaOptions(true)...)
)

func idnaOptions(verifyLength bool) []idna.Option {
	return []idna.Option{
		idna.MapForLookup(),
		idna.BidiRule(),
		idna.Transitional(false),
		idna.StrictDomainName(true),
		idna.VerifyDNSLength(verifyLength),
	}
}

// Hostname normalises a DNS host name: lowercase, trailing dot removed, Unicode in
// punycode. It refuses anything a resolver could read as an IPv4 address (a numeric
// last label, such as "2130706433" or "127.1"), and IP literals, which callers parse
// with Addr instead.
//
// Dots are judged only after the IDNA mapping: a Unicode full stop is a '.' to every
// resolver, so "secret.example.com\uff0e" is secret.example.com, and a check made
// before the mapping would leave it a trailing dot no rule matches.
func Hostname(s string) (string, error) {
	if s == "" {
		return "", errors.New("host name is empty")
	}
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("%s is not a valid host name: it is not valid UTF-8", strconv.Quote(s))
	}
	mapped, err := lookup.ToASCII(s)
	if err != nil {
		return "", fmt.Errorf("%s is not a valid host name: %v", strconv.Quote(s), stripIDNAPrefix(err))
	}
	name := strings.TrimSuffix(mapped, ".")
	switch {
	case name == "":
		return "", errors.New("host name is empty")
	case strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") || strings.Contains(name, ".."):
		return "", fmt.Errorf("%s is not a valid host name: it has an empty label", strconv.Quote(s))
	}
	if _, err := netip.ParseAddr(name); err == nil {
		return "", fmt.Errorf("%s is an IP address, not a host name", strconv.Quote(s))
	}
	// The normalised form must normalise to itself, or a rendered rule would not
	// read back as the same rule.
	again, err := profile.ToASCII(name)
	if err != nil {
		return "", fmt.Errorf("%s is not a valid host name: %v", strconv.Quote(s), stripIDNAPrefix(err))
	}
	if again != name {
		return "", fmt.Errorf("%s is not a valid host name: its punycode form does not decode", strconv.Quote(s))
	}
	labels := strings.Split(name, ".")
	if looksNumeric(labels[len(labels)-1]) {
		return "", fmt.Errorf("%s is not a valid host name: it reads as a non-standard IPv4 address", strconv.Quote(s))
	}
	return name, nil
}

// stripIDNAPrefix shortens idna's message; one that would repeat raw non-ASCII input
// is replaced, since error texts reach logs and terminals.
func stripIDNAPrefix(err error) string {
	msg := strings.TrimPrefix(err.Error(), "idna: ")
	for _, r := range msg {
		if r < ' ' || r > '~' {
			return "it has an invalid label"
		}
	}
	return msg
}

// looksNumeric reports a label that inet_aton-style parsers accept as a number:
// decimal, or hex with 0x. Such a last label never names a real top-level domain.
func looksNumeric(label string) bool {
	digits := label
	base := 10
	if l := strings.ToLower(label); strings.HasPrefix(l, "0x") {
		digits, base = l[2:], 16
	}
	if digits == "" {
		return base == 16
	}
	_, err := strconv.ParseUint(digits, base, 64)
	return err == nil || errors.Is(err, strconv.ErrRange)
}
