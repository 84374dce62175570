package render

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"

	v1 "github.com/egress-router/egress-router/api/v1"
)

func TestNameIsAServiceNameOfItsOwnPerRouter(t *testing.T) {
	long := strings.Repeat("a", 60)
	routers := []string{"egress", "egress.a", "egress-a", "9egress", long, long + "b", "EGRESS", "a.b.c", strings.Repeat("x.", 100) + "y"}
	seen := map[string]string{}
	for _, r := range routers {
		n := Name(r)
		if msgs := validation.IsDNS1035Label(n); len(msgs) > 0 {
			t.Errorf("Name(%q) = %q: %v", r, n, msgs)
		}
		if n != Name(r) {
			t.Errorf("Name(%q) is not deterministic", r)
		}
		if other, ok := seen[n]; ok {
			t.Errorf("Name(%q) = Name(%q) = %q", r, other, n)
		}
		seen[n] = r
	}
	if got := Name("egress"); got != "egress-egress-router" {
		t.Errorf(`Name("egress") = %q, want the readable "egress-egress-router"`, got)
	}
}

func TestInvalidSpecNamesTheSpecField(t *testing.T) {
	base := v1.EgressRouterSpec{Addresses: []v1.EgressRouterAddress{{IP: "192.0.2.99/24", Gateway: "192.0.2.1"}}}
	for _, tc := range []struct {
		name string
		spec func(v1.EgressRouterSpec) v1.EgressRouterSpec
		want string
	}{
		{"redirect target without a route", func(s v1.EgressRouterSpec) v1.EgressRouterSpec {
			s.Addresses[0].Gateway = ""
			s.Redirect = &v1.RedirectConfig{RedirectRules: []v1.L4RedirectRule{{DestinationIP: "203.0.113.9", Port: 80, Protocol: "TCP"}}}
			return s
		}, "spec.redirect.redirectRules: 203.0.113.9 is outside the reserved subnets and there is no IPv4 gateway to reach it"},
		{"DNS line on the metrics port", func(s v1.EgressRouterSpec) v1.EgressRouterSpec {
			s.Mode = v1.ModeDNSProxy
			s.DNSProxy = &v1.DNSProxyConfig{Destinations: []string{"9090 203.0.113.9"}}
			return s
		}, "spec.dnsProxy.destinations: port 9090 is the proxy's metrics port"},
		{"bad DNS line", func(s v1.EgressRouterSpec) v1.EgressRouterSpec {
			s.Mode = v1.ModeDNSProxy
			s.DNSProxy = &v1.DNSProxyConfig{Destinations: []string{"80"}}
			return s
		}, `spec.dnsProxy.destinations: line 1 "80"`},
		{"replicas > 1 offline without a namespace for the RoleBinding", func(s v1.EgressRouterSpec) v1.EgressRouterSpec {
			s.Replicas = ptr(int32(2))
			s.Redirect = &v1.RedirectConfig{FallbackIP: "203.0.113.9"}
			return s
		}, "metadata.namespace: a router with spec.replicas > 1 binds its pods' ServiceAccount"},
		{"reserved address the plugin refuses", func(s v1.EgressRouterSpec) v1.EgressRouterSpec {
			s.Addresses[0].IP = "127.0.0.1"
			s.Redirect = &v1.RedirectConfig{FallbackIP: "203.0.113.9"}
			return s
		}, "spec.addresses[].ip: \"127.0.0.1\" cannot be a reserved address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := tc.spec(*base.DeepCopy())
			_, err := Render(&v1.EgressRouter{Spec: spec}, DefaultImages())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Render: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
