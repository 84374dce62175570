module github.com/egress-router/egress-router

go 1.26.0

require (
	github.com/containernetworking/cni v1.3.0
	golang.org/x/net v0.62.0
)

require (
	github.com/onsi/ginkgo/v2 v2.25.1 // indirect
	github.com/onsi/gomega v1.38.1 // indirect
	github.com/vishvananda/netns v0.0.5 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.43.0 // indirect
)
