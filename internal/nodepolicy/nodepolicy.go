// Package nodepolicy is the node's say over what an egress router attachment may do to
// it. With Multus, whoever may create a NetworkAttachmentDefinition writes the plugin's
// configuration, and the plugin runs as root on the node; the node policy, a file only
// the cluster admin writes (through the node installer), bounds that configuration:
// which links may be masters, which macvlan modes, which ranges the reserved addresses
// come from, and the one directory the plugin writes its logs in. Some things are
// refused whatever the policy says: loopback as master, and a reserved address that is
// already the node's, its gateway's, or the network or broadcast address of a subnet
// the node is on.
package nodepolicy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/egress-router/egress-router/internal/config"
)

const (
	// Dir holds the policy on the node: beside the CNI configuration, where an admin
	// looks for it, but in a directory of its own, because a runtime (libcni) takes
	// every *.conf, *.conflist and *.json directly in /etc/cni/net.d for a network.
	Dir = "/etc/cni/net.d/egress-router"
	// FileName is the policy's name in Dir, and its key in the installer's ConfigMap.
	FileName = "node-policy.json"
	// Path is where every plugin command reads the policy.
	Path = Dir + "/" + FileName
	// PathEnv, when set, replaces Path (tests use it). It is the plugin process's
	// environment, which only the container runtime, root on the node, sets: nothing
	// in a NetworkAttachmentDefinition reaches it.
	PathEnv = "EGRESS_ROUTER_NODE_POLICY"
	// DefaultLogDir is the log directory without a policy.
	DefaultLogDir = "/var/log/egress-router"
)

// DefaultMacvlanModes are every mode but passthru, which hands the master's MAC to the
// pod and takes the link over from the node.
var DefaultMacvlanModes = []string{"bridge", "private", "vepa"}

// Policy is a validated node policy.
type Policy struct {
	// File is where the policy was read from or, when Found is false, where it was
	// looked for before the defaults were taken.
	File  string
	Found bool
	// Masters are the links an attachment may use as master; nil means the links of
	// the node's default routes, which is what a configuration without a master uses.
	Masters []string
	// MacvlanModes are the modes an attachment may ask for, lowercase.
	MacvlanModes []string
	// AddressRanges contain every reserved address; nil means any range.
	AddressRanges []netip.Prefix
	// LogDir is the one directory the plugin writes log files in.
	LogDir string
}

// document is the file's JSON shape.
type document struct {
	Masters       []string `json:"masters"`
	MacvlanModes  []string `json:"macvlanModes"`
	AddressRanges []string `json:"addressRanges"`
	LogDir        string   `json:"logDir"`
}

// Defaults is the policy of a node without a policy file.
func Defaults() *Policy {
	return &Policy{MacvlanModes: DefaultMacvlanModes, LogDir: DefaultLogDir}
}

// Load reads the node's policy: the file PathEnv names, or Path.
func Load() (*Policy, error) {
	path := os.Getenv(PathEnv)
	if path == "" {
		path = Path
	}
	return Read(path)
}

// Read reads the policy file path. No file means the defaults; a file that cannot be
// read or is not a valid policy is an error naming it, never the defaults, which would
// silently undo what the admin wrote.
func Read(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		p := Defaults()
		p.File = path
		return p, nil
	}
	if err != nil {
		return nil, fmt.Errorf("node policy %s: %w", path, err)
	}
	p, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("node policy %s: %w", path, err)
	}
	p.File, p.Found = path, true
	return p, nil
}

// Parse validates a policy document; every problem is reported, each naming its
// field. An unknown field is an error: a misspelt one must not leave a default in
// place that the admin meant to narrow.
func Parse(data []byte) (*Policy, error) {
	var doc document
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("not a valid JSON policy document: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("not a valid JSON policy document: something follows the object")
	}
	if err := checkKeys(data); err != nil {
		return nil, err
	}
	p := Defaults()
	var errs []error
	if doc.Masters != nil {
		if len(doc.Masters) == 0 {
			errs = append(errs, errors.New("masters: list at least one link, or leave the field out for the default-route links"))
		}
		for _, m := range doc.Masters {
			if err := config.CheckLinkName(m); err != nil || m == "" {
				errs = append(errs, fmt.Errorf("masters: %q is not a link name", m))
			}
		}
		p.Masters = doc.Masters
	}
	if doc.MacvlanModes != nil {
		if len(doc.MacvlanModes) == 0 {
			errs = append(errs, errors.New("macvlanModes: list at least one mode, or leave the field out for the default"))
		}
		p.MacvlanModes = nil
		for _, m := range doc.MacvlanModes {
			mode := strings.ToLower(m)
			if !slices.Contains(config.MacvlanModes, mode) {
				errs = append(errs, fmt.Errorf("macvlanModes: %q is not one of %s", m, strings.Join(config.MacvlanModes, ", ")))
			}
			p.MacvlanModes = append(p.MacvlanModes, mode)
		}
	}
	if doc.AddressRanges != nil {
		if len(doc.AddressRanges) == 0 {
			errs = append(errs, errors.New("addressRanges: list at least one range, or leave the field out for any"))
		}
		for _, s := range doc.AddressRanges {
			r, err := netip.ParsePrefix(s)
			switch {
			case err != nil:
				errs = append(errs, fmt.Errorf("addressRanges: %w", err))
			case r != r.Masked():
				errs = append(errs, fmt.Errorf("addressRanges: %q has host bits set; the range is %s", s, r.Masked()))
			default:
				p.AddressRanges = append(p.AddressRanges, r)
			}
		}
	}
	if doc.LogDir != "" {
		if !filepath.IsAbs(doc.LogDir) || filepath.Clean(doc.LogDir) != doc.LogDir || doc.LogDir == "/" {
			errs = append(errs, fmt.Errorf("logDir: %q is not a clean absolute directory path other than /", doc.LogDir))
		}
		p.LogDir = doc.LogDir
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

// checkKeys refuses a field given twice or spelt in another case, which the decoder
// takes (it matches keys case-insensitively and keeps the last value): a second
// spelling further down would override the line a reviewer of the policy reads. data
// is a JSON object (Parse decoded it).
func checkKeys(data []byte) error {
	doc := reflect.TypeFor[document]()
	names := make([]string, doc.NumField())
	for i := range names {
		names[i] = doc.Field(i).Tag.Get("json")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil { // the object's '{'
		return fmt.Errorf("not a valid JSON policy document: %w", err)
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return fmt.Errorf("not a valid JSON policy document: %w", err)
		}
		key, _ := t.(string)
		switch {
		case !slices.Contains(names, key):
			return fmt.Errorf("field %q: the fields are spelt exactly %s", key, strings.Join(names, ", "))
		case seen[key]:
			return fmt.Errorf("field %q is given twice", key)
		}
		seen[key] = true
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return fmt.Errorf("not a valid JSON policy document: %w", err)
		}
	}
	return nil
}

// Node is what the policy's checks need to know of the node, read in its network
// namespace, where the plugin runs.
type Node struct {
	// Master is the master link the attachment resolved to ("" when unknown).
	Master           string
	MasterIsLoopback bool
	// DefaultRouteLinks carry the node's default routes: the masters allowed when the
	// policy lists none.
	DefaultRouteLinks []string
	// Addresses are every address a link of the node holds, with its subnet.
	Addresses []netip.Prefix
	// Gateways are the next hops of the node's routes.
	Gateways []netip.Addr
}

// Check reports everything in c that p, or the rules that hold whatever p says,
// refuse on node n: one error naming each rule broken and the policy file.
func (p *Policy) Check(c *config.Config, n Node) error {
	var broken []string
	refuse := func(rule, format string, args ...any) {
		broken = append(broken, fmt.Sprintf("rule %q: ", rule)+fmt.Sprintf(format, args...))
	}
	if n.Master != "" {
		allowed, which := p.Masters, "the policy's masters"
		if allowed == nil {
			allowed, which = n.DefaultRouteLinks, "the links of the node's default routes (the policy lists no masters)"
		}
		switch {
		case n.MasterIsLoopback:
			refuse("loopback master", "%s is a loopback link and can never be a master", n.Master)
		case !slices.Contains(allowed, n.Master):
			refuse("masters", "master %s is not among %s: %s", n.Master, which, strings.Join(allowed, ", "))
		}
	}
	if !slices.Contains(p.MacvlanModes, c.Interface.Mode) {
		refuse("macvlanModes", "interfaceArgs.mode %q is not allowed (allowed: %s)", c.Interface.Mode, strings.Join(p.MacvlanModes, ", "))
	}
	for _, reserved := range c.IP.Addresses {
		a := reserved.Addr()
		if p.AddressRanges != nil && !slices.ContainsFunc(p.AddressRanges, func(r netip.Prefix) bool { return r.Contains(a) }) {
			refuse("addressRanges", "reserved address %s is outside the policy's ranges %s", a, joinPrefixes(p.AddressRanges))
		}
		// The kernel would take the address from its holder on the wire: the
		// announcement ADD sends re-points the neighbours at the pod.
		if i := slices.IndexFunc(n.Addresses, func(q netip.Prefix) bool { return q.Addr() == a }); i >= 0 {
			refuse("node address", "reserved address %s is an address of the node (%s)", a, n.Addresses[i])
		}
		if slices.Contains(n.Gateways, a) {
			refuse("gateway address", "reserved address %s is the address of a gateway of the node", a)
		}
		if i := slices.IndexFunc(n.Addresses, func(q netip.Prefix) bool { return config.IsNetworkOrBroadcast(q, a) }); i >= 0 {
			refuse("network or broadcast address", "reserved address %s is the network or broadcast address of the node's subnet %s", a, n.Addresses[i].Masked())
		}
	}
	if len(broken) == 0 {
		return nil
	}
	return fmt.Errorf("%s refuses the configuration: %s", p, strings.Join(broken, "; "))
}

// String names the policy for messages: its file, and whether that file exists.
func (p *Policy) String() string {
	if p.Found {
		return "node policy " + p.File
	}
	return "node policy " + p.File + " (no such file: the defaults)"
}

func joinPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}
