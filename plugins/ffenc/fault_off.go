//go:build !faultinject

package ffenc

// FaultInjection reports whether this binary honours the fault-injection
// environment (only test builds, -tags faultinject, do).
const FaultInjection = false

// ApplyFaults does nothing in production builds.
func ApplyFaults(*Plugin) {}
