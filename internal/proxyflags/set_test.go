package proxyflags

import (
	"bytes"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

func parse(t *testing.T, p Proxy, args ...string) (Shared, string, error) {
	t.Helper()
	var sh Shared
	var out bytes.Buffer
	err := New(p, &sh, &out).Parse(args)
	return sh, out.String(), err
}

// The two proxies differ only in -listen's form and -idle-timeout's meaning; every
// other shared flag has the same default in both.
func TestBothProxiesShareDefaultsButListenAndIdleTimeout(t *testing.T) {
	http, _, err := parse(t, HTTPProxy)
	if err != nil {
		t.Fatal(err)
	}
	dns, _, err := parse(t, DNSProxy)
	if err != nil {
		t.Fatal(err)
	}
	if http.Listen != ":8080" || dns.Listen != "" || http.IdleTimeout != 2*time.Minute || dns.IdleTimeout != 0 {
		t.Errorf("-listen %q and %q, -idle-timeout %s and %s; want :8080 and all addresses, 2m and never",
			http.Listen, dns.Listen, http.IdleTimeout, dns.IdleTimeout)
	}
	http.Listen, http.IdleTimeout = dns.Listen, dns.IdleTimeout
	if !reflect.DeepEqual(http, dns) {
		t.Errorf("shared defaults differ:\nhttp %+v\ndns  %+v", http, dns)
	}
	if dns.MaxConns != 3000 || dns.MaxPerClient != 1000 {
		t.Errorf("caps %d and %d, want 3000 and 1000 (20000 open files, ~6 per relayed connection)", dns.MaxConns, dns.MaxPerClient)
	}
}

// Every value out of range is reported at once, each line naming the program and the
// flag, so one run shows everything to fix.
func TestEveryValueOutOfRangeIsReported(t *testing.T) {
	_, out, err := parse(t, HTTPProxy, "-dns-timeout=0", "-max-connections=-5", "-reload-interval=-1s")
	if ExitCode(err) != 2 {
		t.Fatalf("exit code %d (%v), want 2", ExitCode(err), err)
	}
	for _, want := range []string{
		`egress-http-proxy: invalid value "0s" for flag -dns-timeout: must be positive`,
		`egress-http-proxy: invalid value "-5" for flag -max-connections: must be from 0 to 1048576`,
		`egress-http-proxy: invalid value "-1s" for flag -reload-interval: must be at least 100ms`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// A deprecated spelling sets the flag that replaces it and warns once however often
// it is used, the new spelling never; -help says what replaces it.
func TestAnAliasWarnsOnceAndHelpNamesItsReplacement(t *testing.T) {
	sh, out, err := parse(t, DNSProxy, "-listen-address=192.0.2.1", "-listen-address=192.0.2.2")
	if err != nil || sh.Listen != "192.0.2.2" {
		t.Fatalf("-listen %q (%v), want 192.0.2.2", sh.Listen, err)
	}
	if warning := "egress-dns-proxy: -listen-address is deprecated; use -listen\n"; out != warning {
		t.Errorf("output %q, want one warning %q", out, warning)
	}
	_, help, err := parse(t, DNSProxy, "-help")
	if ExitCode(err) != 0 || !strings.Contains(help, "  -listen-address value\n    \tdeprecated: use -listen\n") {
		t.Errorf("-help (exit code %d) does not name -listen-address's replacement:\n%s", ExitCode(err), help)
	}
	if _, out, err := parse(t, DNSProxy, "-listen=192.0.2.1"); err != nil || out != "" {
		t.Errorf("-listen itself: %v, output %q; want neither", err, out)
	}
}

// Defining an alias of a flag that does not exist is a programming error, caught at
// start rather than when a user types the alias.
func TestAnAliasOfNoFlagPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	New(HTTPProxy, &Shared{}, io.Discard).Alias("old", "no-such-flag")
}
