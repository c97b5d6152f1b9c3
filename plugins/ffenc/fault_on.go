//go:build faultinject

package ffenc

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// FaultInjection reports whether this binary honours the fault-injection
// environment (only test builds, -tags faultinject, do).
const FaultInjection = true

// ApplyFaults reads, for plugin NAME (upper-cased):
//
//	EDGENODE_FAULT_<NAME>_FAIL_AFTER=N  every session fails after N video frames
//	EDGENODE_FAULT_<NAME>_STALL_AFTER=N every session stops producing after N
//	                                    video frames but stays connected
//	EDGENODE_FAULT_<NAME>_PRETEND=1     a hardware plugin encodes with libx264
//	                                    and reports itself available, so
//	                                    hardware-failure paths run on any box
//	EDGENODE_FAULT_<NAME>_START_DELAY=D the process waits D (a Go duration)
//	                                    before it answers the host, as a
//	                                    plugin starting on a loaded box does
func ApplyFaults(p *Plugin) {
	pre := "EDGENODE_FAULT_" + strings.ToUpper(p.Profile.Name) + "_"
	if d, err := time.ParseDuration(os.Getenv(pre + "START_DELAY")); err == nil && d > 0 {
		time.Sleep(d)
	}
	if n, err := strconv.Atoi(os.Getenv(pre + "FAIL_AFTER")); err == nil && n > 0 {
		p.FailAfter = n
	}
	if n, err := strconv.Atoi(os.Getenv(pre + "STALL_AFTER")); err == nil && n > 0 {
		p.StallAfter = n
	}
	if os.Getenv(pre+"PRETEND") == "1" {
		x := X264()
		p.Profile.Check, p.Profile.InputArgs = nil, nil
		p.Profile.Scale, p.Profile.VideoArgs = x.Scale, x.VideoArgs
		p.Profile.Encoder = "libx264 (pretending to be " + p.Profile.Name + ")"
	}
}
