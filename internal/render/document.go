package render

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	v1 "github.com/egress-router/egress-router/api/v1"
	"github.com/egress-router/egress-router/internal/config"
)

// cniVersion is the spec version of the rendered network configuration; Multus
// passes it to the plugin, which supports 0.3.1 to 1.1.0.
const cniVersion = "1.0.0"

// InvalidError is a spec the controller will not render: the configuration package
// refused the document it renders to, or the spec asks for what is not supported.
// Its message names the spec's fields.
type InvalidError struct {
	Problems []string
}

func (e *InvalidError) Error() string { return strings.Join(e.Problems, "; ") }

// document is the CNI network configuration of the router, as config.Load reads it.
type document struct {
	CNIVersion    string         `json:"cniVersion"`
	Name          string         `json:"name"`
	Type          string         `json:"type"`
	Mode          config.Mode    `json:"mode"`
	InterfaceType string         `json:"interfaceType"`
	InterfaceArgs interfaceArgs  `json:"interfaceArgs"`
	IP            ip             `json:"ip"`
	HTTPProxy     *proxySettings `json:"httpProxy,omitempty"`
	DNSProxy      *proxySettings `json:"dnsProxy,omitempty"`
	HA            *haSettings    `json:"ha,omitempty"`
}

// haSettings tells the plugin to leave the reserved addresses to egress-router-agent,
// which adds them only in the pod that holds the router's Lease.
type haSettings struct {
	Enabled bool `json:"enabled"`
}

type interfaceArgs struct {
	Master string `json:"master,omitempty"`
	Mode   string `json:"mode"`
}

type ip struct {
	Addresses    []string `json:"addresses"`
	Gateways     []string `json:"gateways,omitempty"`
	Destinations []string `json:"destinations,omitempty"`
	FallbackIP   string   `json:"fallbackIP,omitempty"`
}

type proxySettings struct {
	Destinations []string `json:"destinations"`
}

// modes maps the API's mode names to the configuration's.
var modes = map[v1.Mode]config.Mode{
	v1.ModeRedirect:  config.Redirect,
	v1.ModeHTTPProxy: config.HTTPProxy,
	v1.ModeDNSProxy:  config.DNSProxy,
}

// specFields names, for each field of the configuration, the spec field it comes
// from, so a problem the configuration package finds is reported where the user
// wrote it.
var specFields = map[string]string{
	"mode":                   "spec.mode",
	"interfaceArgs.master":   "spec.networkInterface.macvlan.master",
	"interfaceArgs.mode":     "spec.networkInterface.macvlan.mode",
	"ip.addresses":           "spec.addresses[].ip",
	"ip.gateways":            "spec.addresses[].gateway",
	"ip.destinations":        "spec.redirect.redirectRules",
	"ip.fallbackIP":          "spec.redirect.fallbackIP",
	"httpProxy.destinations": "spec.httpProxy.destinations",
	"dnsProxy.destinations":  "spec.dnsProxy.destinations",
}

// configuration renders the router's network configuration and validates it as the
// plugin and the proxies will: the same code, so the same verdict and messages.
func configuration(r *v1.EgressRouter, name string) ([]byte, *config.Config, error) {
	var problems []string
	specMode := r.Spec.Mode
	if specMode == "" {
		specMode = v1.ModeRedirect // the schema's default, for render -f
	}
	mode, ok := modes[specMode]
	if !ok {
		// Without a mode the configuration's checks would only add noise.
		problems = append(problems, fmt.Sprintf("spec.mode: %q is not one of Redirect, HTTPProxy, DNSProxy", r.Spec.Mode))
		return nil, nil, &InvalidError{Problems: problems}
	}
	doc := document{
		CNIVersion:    cniVersion,
		Name:          name,
		Type:          "egress-router",
		Mode:          mode,
		InterfaceType: config.Macvlan,
		InterfaceArgs: interfaceArgs{
			Master: r.Spec.NetworkInterface.Macvlan.Master,
			Mode:   strings.ToLower(string(r.Spec.NetworkInterface.Macvlan.Mode)),
		},
	}
	if doc.InterfaceArgs.Mode == "" {
		doc.InterfaceArgs.Mode = config.MacvlanModes[0] // the schema's default, for render -f
	}
	doc.IP, problems = addresses(r.Spec.Addresses, problems)
	if rd := r.Spec.Redirect; rd != nil {
		for _, rule := range rd.RedirectRules {
			line := fmt.Sprintf("%d %s %s", rule.Port, strings.ToLower(string(rule.Protocol)), rule.DestinationIP)
			if rule.TargetPort != 0 && rule.TargetPort != rule.Port {
				line += " " + strconv.Itoa(int(rule.TargetPort))
			}
			doc.IP.Destinations = append(doc.IP.Destinations, line)
		}
		doc.IP.FallbackIP = rd.FallbackIP
	}
	if HighlyAvailable(r) {
		doc.HA = &haSettings{Enabled: true}
	}
	if p := r.Spec.HTTPProxy; p != nil {
		doc.HTTPProxy = &proxySettings{Destinations: p.Destinations}
	}
	if p := r.Spec.DNSProxy; p != nil {
		doc.DNSProxy = &proxySettings{Destinations: p.Destinations}
	}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, nil, err // strings and lists of strings always encode
	}
	cfg, err := config.Load(data)
	if err != nil {
		problems = append(problems, specProblems(err)...)
	}
	if len(problems) > 0 {
		return nil, nil, &InvalidError{Problems: problems}
	}
	return append(data, '\n'), cfg, nil
}

// addresses renders spec.addresses: every address, and each gateway once. The
// configuration allows one gateway per family; two different ones are reported by
// config.Load.
func addresses(list []v1.EgressRouterAddress, problems []string) (ip, []string) {
	var (
		out  ip
		seen []netip.Addr
	)
	for i, a := range list {
		out.Addresses = append(out.Addresses, a.IP)
		if a.Gateway == "" {
			continue
		}
		g, err := netip.ParseAddr(a.Gateway)
		if err != nil {
			problems = append(problems, fmt.Sprintf("spec.addresses[%d].gateway: %q is not an IP address", i, a.Gateway))
			continue
		}
		if !slices.Contains(seen, g) {
			seen = append(seen, g)
			out.Gateways = append(out.Gateways, a.Gateway)
		}
	}
	return out, problems
}

// specProblems turns config.Load's errors into messages naming the spec's fields,
// keeping the configuration package's words.
func specProblems(err error) []string {
	list := []error{err}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		list = joined.Unwrap()
	}
	var out []string
	for _, e := range list {
		var fe *config.FieldError
		if errors.As(e, &fe) {
			if field, ok := specFields[fe.Field]; ok {
				out = append(out, field+": "+fe.Err.Error())
				continue
			}
		}
		out = append(out, e.Error())
	}
	return out
}

// HighlyAvailable reports whether the router runs more than one pod, a Lease electing
// the one holding the reserved addresses.
func HighlyAvailable(r *v1.EgressRouter) bool { return replicas(r) > 1 }

func replicas(r *v1.EgressRouter) int32 {
	if r.Spec.Replicas == nil {
		return 1 // the schema's default
	}
	return *r.Spec.Replicas
}
