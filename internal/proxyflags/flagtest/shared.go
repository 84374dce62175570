package flagtest

// Shared are the cases of the flags both proxies take alike, boundaries included: all
// the shared flags but -listen and -idle-timeout, whose forms differ between the two
// (see proxyflags.Proxy) and which each proxy's own table covers.
func Shared() []Case {
	const (
		positive    = "must be positive"
		notNegative = "must be 0 or positive"
		caps        = "must be from 0 to 1048576"
		listen      = "want HOST:PORT, HOST an IP address or empty for all addresses"
		port        = "want 1 to 65535"
		server      = "want IP or IP:PORT"
	)
	return []Case{
		{Args: nil},
		{Args: []string{"unexpected"}, Want: []string{`unexpected argument "unexpected"`}},
		{Args: []string{"-no-such-flag"}, Want: []string{"flag provided but not defined: -no-such-flag"}},

		{Args: []string{"-config=/etc/egress-router/config.json"}},
		{Args: []string{"-config"}, Want: []string{"flag needs an argument: -config"}},
		{Args: []string{"-version"}},
		{Args: []string{"-version=maybe"}, Want: []string{`invalid boolean value "maybe" for -version`}},

		{Args: []string{"-metrics-listen=127.0.0.1:1"}},
		{Args: []string{"-metrics-listen=[2001:db8::1]:65535"}},
		{Args: []string{"-metrics-listen="}}, // no metrics server
		{Args: []string{"-metrics-listen=:0"}, Want: []string{"-metrics-listen", port}},
		{Args: []string{"-metrics-listen=:65536"}, Want: []string{"-metrics-listen", port}},
		{Args: []string{"-metrics-listen=9090"}, Want: []string{"-metrics-listen", listen}},
		{Args: []string{"-metrics-listen=localhost:9090"}, Want: []string{"-metrics-listen", listen}},

		{Args: []string{"-dns-server=192.0.2.53:1"}},
		{Args: []string{"-dns-server=192.0.2.53, 2001:db8::53"}, Same: []string{"-dns-server=192.0.2.53:53,[2001:db8::53]:53"}},
		{Args: []string{"-dns-server=[2001:db8::53]:65535"}},
		{Args: []string{"-dns-server="}, Same: []string{}}, // /etc/resolv.conf's, the default
		{Args: []string{"-dns-server=192.0.2.53:0"}, Want: []string{"-dns-server", server, "PORT 1 to 65535"}},
		{Args: []string{"-dns-server=192.0.2.53:65536"}, Want: []string{"-dns-server", server}},
		{Args: []string{"-dns-server=ns.example.com:53"}, Want: []string{"-dns-server", server}},
		{Args: []string{"-dns-server=192.0.2.53,"}, Want: []string{"-dns-server", server}},

		{Args: []string{"-dns-timeout=1ns"}},
		{Args: []string{"-dns-timeout=0"}, Want: []string{"-dns-timeout", positive}},
		{Args: []string{"-dns-timeout=-1s"}, Want: []string{"-dns-timeout", positive}},
		{Args: []string{"-dns-timeout=soon"}, Want: []string{`invalid value "soon" for flag -dns-timeout`}},

		{Args: []string{"-dial-timeout=1ns"}},
		{Args: []string{"-dial-timeout=0"}, Want: []string{"-dial-timeout", positive}},
		{Args: []string{"-dial-timeout=-1s"}, Want: []string{"-dial-timeout", positive}},

		{Args: []string{"-max-connections=0"}}, // no cap
		{Args: []string{"-max-connections=1048576"}},
		{Args: []string{"-max-connections=-1"}, Want: []string{"-max-connections", caps}},
		{Args: []string{"-max-connections=1048577"}, Want: []string{"-max-connections", caps}},
		{Args: []string{"-max-connections=many"}, Want: []string{`invalid value "many" for flag -max-connections`}},

		{Args: []string{"-max-connections-per-client=0"}},
		{Args: []string{"-max-connections-per-client=1048576"}},
		{Args: []string{"-max-connections-per-client=-1"}, Want: []string{"-max-connections-per-client", caps}},
		{Args: []string{"-max-connections-per-client=1048577"}, Want: []string{"-max-connections-per-client", caps}},

		{Args: []string{"-drain-grace=0"}}, // close at once
		{Args: []string{"-drain-grace=1h"}},
		{Args: []string{"-drain-grace=-1ns"}, Want: []string{"-drain-grace", notNegative}},

		{Args: []string{"-reload-interval=100ms"}},
		{Args: []string{"-reload-interval=99ms"}, Want: []string{`invalid value "99ms" for flag -reload-interval: must be at least 100ms`}},
		{Args: []string{"-reload-interval=1ns"}, Want: []string{"-reload-interval", "at least 100ms"}},
		{Args: []string{"-reload-interval=0"}, Want: []string{"-reload-interval", "at least 100ms"}},
		{Args: []string{"-reload-interval=-1s"}, Want: []string{`invalid value "-1s" for flag -reload-interval: must be at least 100ms`}},
	}
}
