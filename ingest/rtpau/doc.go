// Package rtpau turns the RTP packets of a WHIP publisher into timestamped
// access units (media.AccessUnit): the media half of ingest. It is pure: it
// reads rtp.Packet and rtcp.SenderReport values and returns access units and
// counters; it starts no goroutines, does no I/O and does not import
// pion/webrtc.
//
// Per received track the session builds a pipeline
//
//	reorder := rtpau.NewReorder(0)                    // bounded, wrap-safe
//	clock := rtpau.NewClock(90000, nil)               // 48000 for Opus
//	dep := rtpau.NewH264(clock)                       // or rtpau.NewOpus(clock)
//
// and for every packet read from the track
//
//	for _, p := range reorder.Push(pkt) {
//		aus, err := dep.Push(p)
//		if errors.Is(err, rtpau.ErrNeedKeyframe) { /* send PLI now */ }
//		for _, au := range aus { publisher.WriteAU(track, au) }
//	}
//
// and for every RTCP sender report of the track's SSRC
// clock.HandleSenderReport(sr). While H264.NeedKeyframe is true the session
// keeps asking for a keyframe (PLI) at its own cadence. Stats (H264.Stats,
// Opus.Stats, Reorder.Stats, Clock.Stats) are cheap and safe to read from
// another goroutine for metrics.
//
// Timing: PTS and DTS count ticks of the track's RTP clock (90 kHz video,
// 48 kHz Opus) from the first packet; AccessUnit.Time is wall-clock time
// from RTCP sender reports when the publisher sends them, from arrival time
// otherwise (see Clock).
//
// Specs: RFC 3550 (RTP, sender reports, sequence numbers), RFC 6184 (H.264
// payload, packetization-mode=1), RFC 7587 (Opus payload).
package rtpau
