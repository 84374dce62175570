// Package version holds the build's version, set by the Makefile from `git describe`.
package version

// Version is overridden at link time (-ldflags -X); "dev" marks an untagged go build.
var Version = "dev"
