package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

func TestRenderRefusesWhatIsNotAValidEgressRouter(t *testing.T) {
	for _, tc := range []struct {
		name, input, want string
	}{
		{"empty file", "# nothing\n", "holds no EgressRouter"},
		{"another kind", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", `apiVersion "v1" kind "ConfigMap", want egress-router.io/v1 EgressRouter`},
		{"OpenShift's apiVersion", "apiVersion: network.operator.openshift.io/v1\nkind: EgressRouter\nmetadata: {name: x}\n", `apiVersion "network.operator.openshift.io/v1" kind "EgressRouter", want egress-router.io/v1 EgressRouter`},
		{"misspelt field", "apiVersion: egress-router.io/v1\nkind: EgressRouter\nmetadata: {name: x}\nspec: {fallbackIp: 203.0.113.9}\n", `unknown field "fallbackIp"`},
		{"invalid second router", "apiVersion: egress-router.io/v1\nkind: EgressRouter\nmetadata: {name: a}\nspec:\n  addresses: [{ip: 192.0.2.99/24}]\n  redirect: {fallbackIP: 192.0.2.7}\n---\n" +
			"apiVersion: egress-router.io/v1\nkind: EgressRouter\nmetadata: {name: b}\nspec: {mode: DNSProxy, addresses: [{ip: 192.0.2.98/24}], dnsProxy: {destinations: ['80']}}\n",
			`EgressRouter b: spec.dnsProxy.destinations: line 1 "80"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := renderCommand([]string{"-f", "-"}, strings.NewReader(tc.input), &stdout, &stderr)
			if code != 1 || !strings.Contains(stderr.String(), tc.want) || stdout.Len() > 0 {
				t.Errorf("exit %d, stderr %q, stdout %d bytes; want 1, an error containing %q, nothing printed", code, stderr.String(), stdout.Len(), tc.want)
			}
		})
	}
}

func TestRenderPrintsEveryRoutersObjects(t *testing.T) {
	input, err := os.ReadFile("../../test/controller/testdata/openshift-egressrouter.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Replace(string(input), "apiVersion: network.operator.openshift.io/v1", "apiVersion: egress-router.io/v1", 1)
	var stdout, stderr bytes.Buffer
	if code := renderCommand([]string{"-f", "-", "-pause-image=registry.example.com/pause:1"}, strings.NewReader(doc+"---\n"+strings.Replace(doc, "name: egress-router-redirect", "name: second", 1)), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"kind: ConfigMap", "kind: ServiceAccount", "kind: NetworkAttachmentDefinition", "kind: Service", "kind: Deployment"} {
		if n := strings.Count(out, "\n"+want+"\n"); n != 2 {
			t.Errorf("%q printed %d times, want once per router", want, n)
		}
	}
	if !strings.Contains(out, "image: registry.example.com/pause:1") || strings.Contains(out, "ownerReferences") {
		t.Errorf("want the -pause-image and no owner references:\n%s", out)
	}
}
