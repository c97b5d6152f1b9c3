package dash

import (
	"bytes"
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
)

// videoInfo is what a Representation states about an init segment's
// picture: TrackInfo only describes the current configuration, while an
// older Period still refers to an earlier init segment (Chromium's
// resolution ramp).
type videoInfo struct {
	codec         string
	width, height int
	fps           float64 // a fixed rate the SPS declares; 0: none
}

// parseVideoInit reads the avcC of an init segment (ftyp+moov).
func parseVideoInit(b []byte) (videoInfo, error) {
	var in fmp4.Init
	if err := in.Unmarshal(bytes.NewReader(b)); err != nil {
		return videoInfo{}, err
	}
	for _, t := range in.Tracks {
		c, ok := t.Codec.(*codecs.H264)
		if !ok {
			continue
		}
		sps := c.SPS
		if len(sps) < 4 {
			return videoInfo{}, fmt.Errorf("short SPS")
		}
		vi := videoInfo{codec: fmt.Sprintf("avc1.%02x%02x%02x", sps[1], sps[2], sps[3])}
		var s h264.SPS
		if err := s.Unmarshal(sps); err == nil {
			vi.width, vi.height = s.Width(), s.Height()
			// H.264 Annex E.2.1: without fixed_frame_rate_flag the VUI's
			// time_scale/(2·num_units_in_tick) is only a bound (90 kHz
			// encoders write 180000/1, i.e. "90000 fps").
			if ti := s.VUI; ti != nil && ti.TimingInfo != nil && ti.TimingInfo.FixedFrameRateFlag {
				vi.fps = s.FPS()
			}
		}
		return vi, nil
	}
	return videoInfo{}, fmt.Errorf("no H.264 track in init segment")
}
