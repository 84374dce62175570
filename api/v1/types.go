package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Mode says who moves the bytes.
// +kubebuilder:validation:Enum=Redirect;HTTPProxy;DNSProxy
type Mode string

const (
	// ModeRedirect: the kernel redirects each rule's port to its destination.
	ModeRedirect Mode = "Redirect"
	// ModeHTTPProxy: egress-http-proxy lets clients reach what httpProxy allows.
	ModeHTTPProxy Mode = "HTTPProxy"
	// ModeDNSProxy: egress-dns-proxy relays each line's port to its host, names
	// re-resolved at run time.
	ModeDNSProxy Mode = "DNSProxy"
)

// EgressRouter gives pods a fixed, whitelisted source IP on the node's network: a
// router pod owns the reserved addresses on a macvlan interface and sends the chosen
// traffic out from them.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=er,categories=egress-router
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.mode`
// +kubebuilder:printcolumn:name="Reserved IP",type=string,JSONPath=`.spec.addresses[0].ip`
// +kubebuilder:printcolumn:name="Available",type=string,JSONPath=`.status.conditions[?(@.type=="Available")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type EgressRouter struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec EgressRouterSpec `json:"spec"`
	// +optional
	Status EgressRouterStatus `json:"status,omitempty"`
}

// EgressRouterSpec is what the router does. The section of the chosen mode is
// required and the others are refused, so a spec never carries rules that do nothing.
//
// +kubebuilder:validation:XValidation:rule="self.mode == 'Redirect' ? has(self.redirect) : !has(self.redirect)",message="redirect is required with mode Redirect, and allowed only then"
// +kubebuilder:validation:XValidation:rule="self.mode == 'HTTPProxy' ? has(self.httpProxy) : !has(self.httpProxy)",message="httpProxy is required with mode HTTPProxy, and allowed only then"
// +kubebuilder:validation:XValidation:rule="self.mode == 'DNSProxy' ? has(self.dnsProxy) : !has(self.dnsProxy)",message="dnsProxy is required with mode DNSProxy, and allowed only then"
type EgressRouterSpec struct {
	// Mode is who moves the bytes: Redirect (the default: the kernel), HTTPProxy or
	// DNSProxy.
	// +kubebuilder:default=Redirect
	// +optional
	Mode Mode `json:"mode,omitempty"`

	// Redirect holds the redirect rules; required with mode Redirect.
	// +optional
	Redirect *RedirectConfig `json:"redirect,omitempty"`

	// HTTPProxy holds the HTTP proxy's rules; required with mode HTTPProxy.
	// +optional
	HTTPProxy *HTTPProxyConfig `json:"httpProxy,omitempty"`

	// DNSProxy holds the DNS proxy's forwarding lines; required with mode DNSProxy.
	// +optional
	DNSProxy *DNSProxyConfig `json:"dnsProxy,omitempty"`

	// NetworkInterface is the interface the reserved addresses live on.
	// +kubebuilder:default={macvlan: {mode: Bridge}}
	// +optional
	NetworkInterface EgressRouterInterface `json:"networkInterface"`

	// Addresses are the reserved addresses, every one of them configured on the
	// router's interface: at most one gateway per address family.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +required
	Addresses []EgressRouterAddress `json:"addresses"`

	// Replicas is the number of router pods. With 1 (the default) the pod holds the
	// reserved addresses and is replaced, not overlapped, on every change. With more
	// (high availability), every pod runs egress-router-agent and a Lease elects the
	// one that holds the addresses; the others stand by, each on its own node, to take
	// them over within seconds. At most 5: a standby only waits, so more buys nothing
	// but Lease watchers and nodes kept busy.
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=5
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`
}

// EgressRouterInterface is the interface to create for the reserved addresses.
type EgressRouterInterface struct {
	// Macvlan is the macvlan interface's settings.
	// +kubebuilder:default={mode: Bridge}
	// +optional
	Macvlan MacvlanConfig `json:"macvlan"`
}

// MacvlanMode is the macvlan interface's mode.
// +kubebuilder:validation:Enum=Bridge;Private;VEPA;Passthru
type MacvlanMode string

// MacvlanConfig is the macvlan interface's settings.
type MacvlanConfig struct {
	// Mode is the macvlan mode: Bridge (the default), Private, VEPA or Passthru.
	// +kubebuilder:default=Bridge
	// +optional
	Mode MacvlanMode `json:"mode,omitempty"`

	// Master is the node link the interface sits on; by default the link of the
	// node's default route.
	// +kubebuilder:validation:MaxLength=15
	// +optional
	Master string `json:"master,omitempty"`
}

// EgressRouterAddress is one reserved address.
type EgressRouterAddress struct {
	// IP is the reserved address with its subnet length (192.0.2.99/24), or a bare
	// address (a /32 or /128). IPv4 or IPv6.
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="isIP(self) || isCIDR(self)",message="must be an IP address or an address with a subnet length (192.0.2.99/24)"
	// +required
	IP string `json:"ip"`

	// Gateway is the next hop on the router's interface for this address's family.
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="isIP(self)",message="must be an IP address"
	// +optional
	Gateway string `json:"gateway,omitempty"`
}

// RedirectConfig is redirect mode's rules: the kernel sends connections to each rule's
// port on to its destination, and everything else to the fallback, if any.
//
// +kubebuilder:validation:XValidation:rule="(has(self.redirectRules) && size(self.redirectRules) > 0) || has(self.fallbackIP)",message="give at least one redirect rule or a fallbackIP"
type RedirectConfig struct {
	// RedirectRules are the ports redirected, each to one destination. A port and
	// protocol pair appears once.
	// +listType=map
	// +listMapKey=port
	// +listMapKey=protocol
	// +kubebuilder:validation:MaxItems=1000
	// +optional
	RedirectRules []L4RedirectRule `json:"redirectRules,omitempty"`

	// FallbackIP receives the connections no rule matches, on their own port.
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="isIP(self)",message="must be an IP address"
	// +optional
	FallbackIP string `json:"fallbackIP,omitempty"`
}

// Protocol is a redirect rule's transport protocol.
// +kubebuilder:validation:Enum=TCP;UDP;SCTP
type Protocol string

// L4RedirectRule redirects one port to a destination.
type L4RedirectRule struct {
	// DestinationIP is the destination's address, IPv4 or IPv6.
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="isIP(self)",message="must be an IP address"
	// +required
	DestinationIP string `json:"destinationIP"`

	// Port is the port clients connect to on the router.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +required
	Port int32 `json:"port"`

	// Protocol is TCP, UDP or SCTP.
	// +required
	Protocol Protocol `json:"protocol"`

	// TargetPort is the destination's port; Port when unset.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	TargetPort int32 `json:"targetPort,omitempty"`
}

// HTTPProxyConfig is the HTTP proxy's rules, in the project's line grammar: an
// address, a range, a name or *.name, each optionally denied with a leading "!", and
// "*" as the last line to allow everything else. The first match decides; no match
// is denied.
type HTTPProxyConfig struct {
	// Destinations are the rules, tried in order.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=1000
	// +kubebuilder:validation:items:MaxLength=512
	// +listType=atomic
	// +required
	Destinations []string `json:"destinations"`
}

// DNSProxyConfig is the DNS proxy's forwarding lines, in the project's line grammar:
// "<port> <host>" or "<port> <host> <remote port>", the host an address or a DNS name
// resolved at run time.
type DNSProxyConfig struct {
	// Destinations are the forwarding lines, one local port each.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=1000
	// +kubebuilder:validation:items:MaxLength=512
	// +listType=atomic
	// +required
	Destinations []string `json:"destinations"`
}

// The condition types of status.conditions.
const (
	// ConditionAvailable: a router pod is available. With replicas > 1 that is the
	// active pod: only the Lease holder is ready, so one ready pod is the whole
	// router.
	ConditionAvailable = "Available"
	// ConditionProgressing: the router's objects are being rolled out.
	ConditionProgressing = "Progressing"
	// ConditionDegraded: the controller cannot make the router what the spec says; the
	// message says why. What ran before keeps running.
	ConditionDegraded = "Degraded"
)

// EgressRouterStatus is what the controller observed.
type EgressRouterStatus struct {
	// ObservedGeneration is the generation of the spec the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions are Available, Progressing and Degraded.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// EgressRouterList is a list of EgressRouters.
//
// +kubebuilder:object:root=true
type EgressRouterList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []EgressRouter `json:"items"`
}
