package rtpau

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
)

// SpropParameterSets extracts the SPS and PPS that an SDP fmtp line carries
// in sprop-parameter-sets (RFC 6184 §8.1: comma-separated base64 NAL
// units), e.g. from "profile-level-id=42e01f;packetization-mode=1;
// sprop-parameter-sets=Z0LAHtkA...,aMuDyyA=". Some encoders (GStreamer,
// hardware encoders) signal them only there. It returns nil slices when the
// parameter is absent and an error wrapping ErrMalformed when it is
// unreadable.
func SpropParameterSets(fmtp string) (sps, pps []byte, err error) {
	for _, kv := range strings.Split(fmtp, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "sprop-parameter-sets") {
			continue
		}
		for _, s := range strings.Split(strings.TrimSpace(v), ",") {
			if s == "" {
				continue
			}
			nal, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				// Some senders drop the padding.
				nal, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
			}
			if err != nil || len(nal) == 0 {
				return nil, nil, fmt.Errorf("%w: sprop-parameter-sets entry %q", ErrMalformed, s)
			}
			switch nal[0] & 0x1f {
			case nalSPS:
				if sps == nil {
					sps = nal
				}
			case nalPPS:
				if pps == nil {
					pps = nal
				}
			}
		}
	}
	return sps, pps, nil
}

// SetParameterSets seeds the SPS and PPS from out-of-band signalling
// (SpropParameterSets) so that IDRs sent without in-band parameter sets
// can be emitted. In-band parameter sets replace them when they arrive.
// Call it before the first Push, from the goroutine that calls Push. Empty
// arguments are ignored.
func (h *H264) SetParameterSets(sps, pps []byte) {
	if len(sps) > 0 && sps[0]&0x1f == nalSPS {
		h.setSPS(bytes.Clone(sps))
	}
	if len(pps) > 0 && pps[0]&0x1f == nalPPS {
		h.pps = bytes.Clone(pps)
		h.stats.update(func(*Stats) { h.tPPS = h.pps })
	}
}
