// Package version holds the release version, stamped at build time by the Makefile
// (-ldflags -X github.com/novaha/novaha/lib/version.Version=...).
package version

// Version is set by the linker; it is never assigned at run time.
var Version = "dev"
