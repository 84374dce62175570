// Package config owns the one configuration document of egress-router: the JSON that
// is a NetworkAttachmentDefinition's spec.config, read by the CNI plugin and by both
// proxies. Load returns a fully validated, normalised Config or every problem found;
// it never touches the kernel.
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/egress-router/egress-router/internal/canonical"
	"github.com/egress-router/egress-router/internal/dnstable"
	"github.com/egress-router/egress-router/internal/policy"
	"github.com/egress-router/egress-router/internal/redirect"
	"github.com/egress-router/egress-router/internal/reserved"
)

// Mode says who moves the bytes.
type Mode string

const (
	Redirect  Mode = "redirect"   // the kernel: DNAT per destination, SNAT to the reserved IP
	HTTPProxy Mode = "http-proxy" // egress-http-proxy
	DNSProxy  Mode = "dns-proxy"  // egress-dns-proxy
)

// Backend selects how redirect rules are written to the kernel.
type Backend string

const (
	Auto     Backend = "auto"
	NFTables Backend = "nftables"
	IPTables Backend = "iptables"
)

// Macvlan is the only interface type: the reserved IP needs its own MAC on the node's
// network so the gateway can tell it from the node.
const Macvlan = "macvlan"

// MacvlanModes are the macvlan modes interfaceArgs.mode accepts.
var MacvlanModes = []string{"bridge", "private", "vepa", "passthru"}

// Config is a validated, normalised configuration.
type Config struct {
	types.PluginConf

	Mode          Mode
	Backend       Backend
	InterfaceType string
	Interface     Interface
	IP            IP
	HTTPProxy     policy.Policy
	DNSProxy      dnstable.Table
	HA            HA
	LogFile       string
	LogLevel      slog.Level
}

// Interface is interfaceArgs: where and how net1 is created.
type Interface struct {
	Master string // "" = the link of the node's default route
	Mode   string // macvlan mode, lowercase
	MTU    int    // 0 = the master's
}

// HA is the "ha" object: whether the router runs as one of several replicas.
type HA struct {
	// Enabled: the reserved addresses move between replicas. The plugin creates net1
	// and its netfilter state but leaves the addresses, table and rules to
	// egress-router-agent, which adds them while its pod holds the router's Lease.
	Enabled bool
}

// IP is the reserved addressing and the redirect destinations.
type IP struct {
	Addresses []netip.Prefix // the reserved addresses, with their subnet length
	Gateways  []netip.Addr   // next hops on net1, at most one per family
	Redirect  redirect.Table // ip.destinations, with ip.fallbackIP folded in
}

// Sources are the reserved addresses as the sources egress traffic leaves from.
func (ip IP) Sources() reserved.Sources { return reserved.SourcesOf(ip.Addresses) }

// Gateway returns the next hop for the family of dst, if one is configured.
func (ip IP) Gateway(dst netip.Addr) (netip.Addr, bool) {
	for _, g := range ip.Gateways {
		if g.Is4() == dst.Is4() {
			return g, true
		}
	}
	return netip.Addr{}, false
}

// OnLink reports whether dst lies in the subnet of a reserved address, so it is
// reached on net1 without a gateway.
func (ip IP) OnLink(dst netip.Addr) bool {
	for _, p := range ip.Addresses {
		if p.Masked().Contains(dst) {
			return true
		}
	}
	return false
}

// FieldError is a problem with one field of the configuration.
type FieldError struct {
	Field string // JSON path, such as "ip.destinations"
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// Load parses and validates a configuration document.
func Load(data []byte) (*Config, error) {
	var doc document
	var errs []error
	if err := json.Unmarshal(data, &doc); err != nil {
		// A value of the wrong type leaves its field empty and the rest decoded, so
		// the other fields are still checked; a syntax error leaves nothing to check.
		var typeErr *json.UnmarshalTypeError
		if !errors.As(err, &typeErr) || typeErr.Field == "" {
			return nil, fmt.Errorf("configuration is not valid JSON: %w", err)
		}
		errs = append(errs, &FieldError{typeErr.Field, fmt.Errorf("want %s, got a JSON %s", describeGoType(typeErr.Type.String()), typeErr.Value)})
	}
	errs = append(errs, misspelt(data)...)
	c, buildErrs := build(&doc, true)
	if errs = append(errs, buildErrs...); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

func describeGoType(t string) string {
	switch t {
	case "string":
		return "a string"
	case "[]string":
		return "a list of strings"
	case "bool", "map[string]bool":
		return "true or false"
	}
	if strings.HasPrefix(t, "config.") || strings.HasPrefix(t, "*config.") || strings.HasPrefix(t, "map[") {
		return "an object"
	}
	return t
}

// problems collects field errors and remembers which fields had one, so a check that
// builds on a field (such as "needs at least one line") stays quiet when the field's own
// errors already explain it.
type problems struct {
	errs   []error
	failed map[string]bool
}

func (p *problems) add(field string, err error) {
	if p.failed == nil {
		p.failed = map[string]bool{}
	}
	p.failed[field] = true
	// A grammar reports one joined error per bad line; each gets the field's name.
	list := []error{err}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		list = joined.Unwrap()
	}
	for _, e := range list {
		p.errs = append(p.errs, &FieldError{Field: field, Err: e})
	}
}

// build validates the document; each error names its field. requireAddress is false
// only for the legacy environment, where EGRESS_SOURCE was optional.
func build(doc *document, requireAddress bool) (*Config, []error) {
	c := &Config{PluginConf: doc.PluginConf}
	var p problems
	c.Mode = Mode(p.oneOf("mode", doc.Mode, string(Redirect), string(HTTPProxy), string(DNSProxy)))
	c.Backend = Backend(p.oneOf("backend", doc.Backend, string(Auto), string(NFTables), string(IPTables)))
	c.InterfaceType = p.oneOf("interfaceType", doc.InterfaceType, Macvlan)
	if doc.InterfaceArgs != nil {
		c.Interface = p.buildInterface(doc.InterfaceArgs)
	} else {
		c.Interface.Mode = MacvlanModes[0]
	}
	ip := doc.IP
	if ip == nil {
		ip = &ipJSON{}
	}
	c.IP = p.buildIP(ip, requireAddress)
	if doc.HTTPProxy != nil {
		rules := p.lines("httpProxy.destinations", doc.HTTPProxy.Destinations)
		var err error
		if c.HTTPProxy, err = policy.Parse(rules); err != nil {
			p.add("httpProxy.destinations", err)
		}
	}
	if doc.DNSProxy != nil {
		rules := p.lines("dnsProxy.destinations", doc.DNSProxy.Destinations)
		var err error
		if c.DNSProxy, err = dnstable.Parse(rules); err != nil {
			p.add("dnsProxy.destinations", err)
		}
	}
	p.checkMode(c)
	if doc.HA != nil {
		c.HA.Enabled = doc.HA.Enabled
	}
	c.LogFile = doc.LogFile
	var err error
	if c.LogLevel, err = ParseLogLevel(doc.LogLevel); err != nil {
		p.add("log_level", err)
	}
	return c, p.errs
}

func (p *problems) buildInterface(args *interfaceArgsJSON) Interface {
	i := Interface{Master: args.Master}
	if err := CheckLinkName(args.Master); err != nil {
		p.add("interfaceArgs.master", err)
	}
	i.Mode = p.oneOf("interfaceArgs.mode", args.Mode, MacvlanModes...)
	mtuText, err := decodeNumberText(args.MTU)
	if err != nil {
		p.add("interfaceArgs.mtu", err)
		return i
	}
	if mtuText != "" {
		mtu, err := strconv.Atoi(mtuText)
		if err != nil || mtu < 68 || mtu > 65535 {
			p.add("interfaceArgs.mtu", fmt.Errorf("%q is not an MTU (want 68-65535)", mtuText))
		}
		i.MTU = mtu
	}
	return i
}

func (p *problems) buildIP(doc *ipJSON, requireAddress bool) IP {
	var (
		ip  IP
		err error
	)
	if ip.Addresses, err = parseAddresses(doc.Addresses); err != nil {
		p.add("ip.addresses", err)
	} else if len(ip.Addresses) == 0 && requireAddress {
		p.add("ip.addresses", errors.New("at least one reserved address is required"))
	}
	gateways, gatewayField := doc.Gateways, "ip.gateways"
	if doc.Gateway != "" {
		if len(gateways) > 0 {
			p.add("ip.gateway", errors.New("give either ip.gateway or ip.gateways, not both"))
		}
		gateways, gatewayField = []string{doc.Gateway}, "ip.gateway"
	}
	if ip.Gateways, err = parseGateways(gateways, ip.Addresses); err != nil {
		p.add(gatewayField, err)
	}
	if ip.Redirect, err = redirect.Parse(p.lines("ip.destinations", doc.Destinations)); err != nil {
		p.add("ip.destinations", err)
	}
	if doc.FallbackIP != "" {
		fallback, err := redirect.Parse([]string{doc.FallbackIP})
		switch {
		case err != nil:
			p.add("ip.fallbackIP", err)
		case !fallback.Fallback.IsValid():
			p.add("ip.fallbackIP", fmt.Errorf("%q is not a single IP address", doc.FallbackIP))
		case ip.Redirect.Fallback.IsValid():
			p.add("ip.fallbackIP", errors.New("a fallback is also the last line of ip.destinations; keep one"))
		default:
			ip.Redirect.Fallback = fallback.Fallback
		}
	}
	return ip
}

// lines decodes a grammar's input, recording a wrongly typed value against field.
func (p *problems) lines(field string, raw json.RawMessage) []string {
	l, err := decodeLines(raw)
	if err != nil {
		p.add(field, err)
	}
	return l
}

// checkMode checks what the chosen mode needs from the lists.
func (p *problems) checkMode(c *Config) {
	switch {
	case c.Mode == Redirect:
		p.checkRedirectReachable(c.IP)
	case c.Mode == HTTPProxy && len(c.HTTPProxy.Rules) == 0 && !p.failed["httpProxy.destinations"]:
		p.add("httpProxy.destinations", errors.New("http-proxy mode needs at least one rule (everything else is denied)"))
	case c.Mode == DNSProxy && len(c.DNSProxy.Rules) == 0 && !p.failed["dnsProxy.destinations"]:
		p.add("dnsProxy.destinations", errors.New("dns-proxy mode needs at least one forwarding line"))
	}
}

// checkRedirectReachable makes sure every redirect target can leave through net1 from a
// reserved address: there is an address of its family, and it is on-link or there is
// a gateway for that family. Otherwise its packets would follow eth0's routes.
func (p *problems) checkRedirectReachable(ip IP) {
	if p.failed["ip.destinations"] || p.failed["ip.fallbackIP"] {
		return
	}
	if len(ip.Redirect.Rules) == 0 && !ip.Redirect.Fallback.IsValid() {
		p.add("ip.destinations", errors.New("redirect mode needs at least one destination line or ip.fallbackIP"))
		return
	}
	if len(ip.Addresses) == 0 {
		return // reported on ip.addresses
	}
	for _, dst := range ip.Redirect.Targets() {
		family := familyName(dst)
		if _, ok := ip.Sources().For(dst); !ok {
			p.add("ip.destinations", fmt.Errorf("%s is an %s destination but ip.addresses has no %s address", dst, family, family))
		} else if _, ok := ip.Gateway(dst); !ok && !ip.OnLink(dst) {
			p.add("ip.destinations", fmt.Errorf("%s is outside the reserved subnets and there is no %s gateway to reach it", dst, family))
		}
	}
}

// oneOf normalises an enumerated, case-insensitive field; "" means the first allowed
// value, the default.
func (p *problems) oneOf(field, value string, allowed ...string) string {
	if value == "" {
		return allowed[0]
	}
	v := strings.ToLower(value)
	if slices.Contains(allowed, v) {
		return v
	}
	p.add(field, fmt.Errorf("%q is not one of %s", value, strings.Join(allowed, ", ")))
	return allowed[0]
}

// CheckLinkName reports whether name can be a link's name; "" passes (no link named).
func CheckLinkName(name string) error {
	if name == "" {
		return nil
	}
	if len(name) > 15 || strings.ContainsAny(name, "/: \t\n") || name == "." || name == ".." {
		return fmt.Errorf("%q is not a valid interface name", name)
	}
	return nil
}

// parseAddresses reads the reserved addresses: CIDR, or a bare IP meaning /32 or /128.
func parseAddresses(list []string) ([]netip.Prefix, error) {
	var (
		out  []netip.Prefix
		errs []error
	)
	for _, s := range list {
		p, err := parseInterfaceAddress(s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, q := range out {
			if q.Addr() == p.Addr() {
				errs = append(errs, fmt.Errorf("%s is listed twice", p.Addr()))
			}
		}
		out = append(out, p)
	}
	return out, errors.Join(errs...)
}

func parseInterfaceAddress(s string) (netip.Prefix, error) {
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = canonical.Prefix(s); err != nil {
			return p, err
		}
	} else {
		a, err := canonical.Addr(s)
		if err != nil {
			return p, err
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	a := p.Addr()
	if a.IsUnspecified() || a.IsLoopback() || a.IsMulticast() || a.IsLinkLocalUnicast() {
		return p, fmt.Errorf("%q cannot be a reserved address (unspecified, loopback, multicast or link-local)", s)
	}
	if a.Is4() && (thisNetwork.Contains(a) || reservedIPv4.Contains(a)) {
		return p, fmt.Errorf("%q cannot be a reserved address (0.0.0.0/8 means this network, 240.0.0.0/4 is reserved and holds the limited broadcast)", s)
	}
	if IsNetworkOrBroadcast(p, a) {
		return p, fmt.Errorf("%q is the network or broadcast address of its subnet, not a host address", s)
	}
	return p, nil
}

// IPv4 ranges no host may hold (RFC 1122, RFC 1112): a neighbour would not answer or
// route for them as it does for a unicast address.
var (
	thisNetwork  = netip.MustParsePrefix("0.0.0.0/8")
	reservedIPv4 = netip.MustParsePrefix("240.0.0.0/4")
)

// IsNetworkOrBroadcast reports whether a is the network or the broadcast address of
// the IPv4 subnet p; subnets of 31 and 32 bits have neither (RFC 3021).
func IsNetworkOrBroadcast(p netip.Prefix, a netip.Addr) bool {
	return a.Is4() && p.Addr().Is4() && p.Bits() < 31 && (a == p.Masked().Addr() || a == broadcast(p))
}

func broadcast(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	for i := p.Bits(); i < 32; i++ {
		b[i/8] |= 1 << (7 - i%8)
	}
	return netip.AddrFrom4(b)
}

func parseGateways(list []string, addresses []netip.Prefix) ([]netip.Addr, error) {
	var (
		out  []netip.Addr
		errs []error
	)
	for _, s := range list {
		g, err := canonical.Addr(s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		family := familyName(g)
		hasAddress := false
		for _, p := range addresses {
			hasAddress = hasAddress || p.Addr().Is4() == g.Is4()
		}
		if slices.ContainsFunc(addresses, func(p netip.Prefix) bool { return p.Addr() == g }) {
			errs = append(errs, fmt.Errorf("%s is also a reserved address", g))
		}
		if !hasAddress && len(addresses) > 0 {
			errs = append(errs, fmt.Errorf("%s is an %s gateway but ip.addresses has no %s address", g, family, family))
		}
		if i := slices.IndexFunc(out, func(o netip.Addr) bool { return o.Is4() == g.Is4() }); i >= 0 {
			errs = append(errs, fmt.Errorf("%s: only one %s gateway is allowed (%s is already one)", g, family, out[i]))
		}
		out = append(out, g)
	}
	return out, errors.Join(errs...)
}

func familyName(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// ParseLogLevel reads log_level. Besides slog's names it takes the ones existing
// egress-router-cni configs use (warning, panic, fatal); "" means info.
func ParseLogLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error", "panic", "fatal":
		return slog.LevelError, nil
	}
	return slog.LevelInfo, fmt.Errorf("%q is not one of debug, info, warning, error", s)
}

// MarshalJSON renders the configuration in its normalised form, which Load reads back
// as an equal value.
func (c *Config) MarshalJSON() ([]byte, error) {
	doc := document{
		PluginConf:    c.PluginConf,
		Mode:          string(c.Mode),
		Backend:       string(c.Backend),
		InterfaceType: c.InterfaceType,
		InterfaceArgs: &interfaceArgsJSON{Master: c.Interface.Master, Mode: c.Interface.Mode},
		IP:            &ipJSON{},
		LogFile:       c.LogFile,
		LogLevel:      strings.ToLower(c.LogLevel.String()),
	}
	if c.Interface.MTU != 0 {
		doc.InterfaceArgs.MTU = encodeJSON(strconv.Itoa(c.Interface.MTU))
	}
	if lines := c.IP.Redirect.Lines(); len(lines) > 0 {
		doc.IP.Destinations = encodeJSON(lines)
	}
	for _, p := range c.IP.Addresses {
		doc.IP.Addresses = append(doc.IP.Addresses, p.String())
	}
	for _, g := range c.IP.Gateways {
		doc.IP.Gateways = append(doc.IP.Gateways, g.String())
	}
	if len(c.HTTPProxy.Rules) > 0 {
		doc.HTTPProxy = &proxyJSON{Destinations: encodeJSON(c.HTTPProxy.Lines())}
	}
	if len(c.DNSProxy.Rules) > 0 {
		doc.DNSProxy = &proxyJSON{Destinations: encodeJSON(c.DNSProxy.Lines())}
	}
	if c.HA.Enabled {
		doc.HA = &haJSON{Enabled: true}
	}
	return json.Marshal(doc)
}
