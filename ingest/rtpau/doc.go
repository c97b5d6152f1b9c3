// Package rtpau turns the RTP packets of a WHIP publisher into timestamped
// access units (media.AccessUnit): the media half of ingest. It is pure: it
// reads rtp.Packet and rtcp.SenderReport values and returns access units and
// counters; it starts no goroutines, does no I/O and does not import
// pion/webrtc.
//
// # Pipeline
//
// Per received track the session builds
//
//	reorder := rtpau.NewReorder(128)                  // bounded, wrap-safe
//	reorder.SetMaxDelay(300*time.Millisecond, nil)    // > RTT, so NACK/RTX can fill gaps
//	clock := rtpau.NewClock(90000, nil)               // 48000 for Opus
//	dep := rtpau.NewH264(clock)                       // or rtpau.NewOpus(clock)
//
// and for every packet read from the track
//
//	for _, p := range reorder.Push(pkt) {
//		aus, err := dep.Push(p)
//		if errors.Is(err, rtpau.ErrNeedKeyframe) || errors.Is(err, rtpau.ErrNoParameterSets) {
//			// send a PLI now
//		}
//		for _, au := range aus { publisher.WriteAU(track, au) }
//	}
//
// with reorder.Flush() pushed the same way when the track ends, and
// clock.HandleSenderReport(sr) for every RTCP sender report of the track's
// SSRC (from the RTCP read loop). H264.NeedKeyframe is true at the start and
// after a loss until an IDR arrives: keep asking (PLI) while it is.
//
// # API
//
//   - NewReorder(size) *Reorder; Push(*rtp.Packet) []*rtp.Packet; Flush();
//     SetMaxDelay(d, now); Lost(); Stats() ReorderStats.
//   - NewClock(rate, now) *Clock; Ticks(uint32) int64; Time(int64) time.Time;
//     HandleSenderReport(*rtcp.SenderReport); Duration; Stats() ClockStats.
//   - NewH264(*Clock) *H264; Push(*rtp.Packet) ([]*media.AccessUnit, error);
//     NeedKeyframe() bool; Stats() Stats; Track() media.Track;
//     SetParameterSets(sps, pps) with SpropParameterSets(fmtp) for senders
//     that signal SPS/PPS only in the SDP.
//   - NewOpus(*Clock) *Opus; Push; Stats; Track; OpusDuration([]byte).
//   - Errors (errors.go): ErrMalformed, ErrUnsupportedPacketization,
//     ErrNeedKeyframe, ErrNoParameterSets, ErrTooLarge, ErrTimestamp. Every
//     error means "this packet or access unit was dropped, carry on".
//
// Push, Flush and Ticks belong to the track's RTP goroutine; Stats, Track,
// NeedKeyframe and HandleSenderReport are safe from any goroutine (metrics
// scrape, RTCP loop, PLI timer).
//
// # Timing
//
// PTS and DTS count ticks of the track's RTP clock (90 kHz video, 48 kHz
// Opus) from the track's first packet; DTS never goes backwards.
// AccessUnit.Time is wall-clock time from RTCP sender reports when the
// publisher sends them, from arrival time otherwise (see Clock); it is the
// value to compare across the tracks of a session.
//
// # What each piece handles
//
// Reorder: sequence-number wrap-around (RFC 3550 §A.1), duplicates, late
// packets, loss given up after a full window or the maximum delay, sender
// restarts. H264 (RFC 6184, packetization-mode=1): single NAL unit,
// STAP-A, FU-A; SPS/PPS in their own packets, in STAP-A or once only, put
// in front of every IDR; multi-slice frames; missing marker bits; padding;
// B-frames (detected, DTS from the picture order count); resolution
// changes (Stats.ResolutionChanges, Width, Height). Opus (RFC 7587): one
// access unit per packet, TOC checked (RFC 6716 §3.1).
//
// Specs: RFC 3550 (RTP, sender reports, sequence numbers), RFC 6184 (H.264
// payload), RFC 7587 (Opus payload), RFC 6716 (Opus packets).
package rtpau
