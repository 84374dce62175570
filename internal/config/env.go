package config

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// legacyNames maps the fields FromEnv fills to the environment variables of the older
// egress router images they came from, so errors name what the user wrote.
var legacyNames = map[string]string{
	"ip.addresses":           "EGRESS_SOURCE",
	"ip.gateway":             "EGRESS_GATEWAY",
	"httpProxy.destinations": "EGRESS_HTTP_PROXY_DESTINATION",
	"dnsProxy.destinations":  "EGRESS_DNS_PROXY_DESTINATION",
}

// FromEnv builds a proxy's configuration from the environment variables of the older
// egress router images, so an old pod definition moves over by changing the image:
// EGRESS_SOURCE (optional), EGRESS_GATEWAY (optional) and, for mode http-proxy,
// EGRESS_HTTP_PROXY_DESTINATION or, for mode dns-proxy, EGRESS_DNS_PROXY_DESTINATION.
// The values go through the same grammars as the JSON document.
func FromEnv(mode Mode, getenv func(string) string) (*Config, error) {
	doc := document{Mode: string(mode), IP: &ipJSON{Gateway: strings.TrimSpace(getenv("EGRESS_GATEWAY"))}}
	if source := strings.TrimSpace(getenv("EGRESS_SOURCE")); source != "" {
		doc.IP.Addresses = []string{source}
	}
	switch mode {
	case HTTPProxy:
		doc.HTTPProxy = &proxyJSON{Destinations: encodeJSON(getenv("EGRESS_HTTP_PROXY_DESTINATION"))}
	case DNSProxy:
		doc.DNSProxy = &proxyJSON{Destinations: encodeJSON(getenv("EGRESS_DNS_PROXY_DESTINATION"))}
	default:
		return nil, errors.New("the legacy environment configures only the http-proxy and dns-proxy modes")
	}
	c, errs := build(&doc, false)
	for _, err := range errs {
		var fe *FieldError
		if errors.As(err, &fe) {
			if name, ok := legacyNames[fe.Field]; ok {
				fe.Field = name
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// ForProxy loads a proxy's configuration: from file (the NetworkAttachmentDefinition's
// JSON, as mounted from a ConfigMap) when one is given, else from the legacy
// environment. It also returns the file's content, for reload to compare against.
func ForProxy(mode Mode, file string, getenv func(string) string) (*Config, []byte, error) {
	if file == "" {
		c, err := FromEnv(mode, getenv)
		return c, nil, err
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, nil, fmt.Errorf("read configuration: %w", err)
	}
	c, err := LoadFor(mode, data)
	return c, data, err
}

// LoadFor loads a document a proxy of mode serves, at start and on every reload: a
// valid document written for another mode (the redirect NAD mounted by mistake) is
// refused, not served with an empty rule list.
func LoadFor(mode Mode, data []byte) (*Config, error) {
	c, err := Load(data)
	if err != nil {
		return nil, err
	}
	if c.Mode != mode {
		return nil, &FieldError{Field: "mode", Err: fmt.Errorf("%q is not %q, the mode this proxy serves", c.Mode, mode)}
	}
	return c, nil
}
