package rtpau

import "errors"

// ErrMalformed is returned for a packet that violates RFC 6184 or RFC 7587:
// a truncated STAP-A, a fragmentation unit without its start, a NAL unit
// with the forbidden bit set, an empty or reserved NAL unit type.
var ErrMalformed = errors.New("rtpau: malformed packet")

// ErrUnsupportedPacketization is returned for H.264 packet types that
// packetization-mode=1 does not allow (STAP-B, MTAP16, MTAP24, FU-B;
// RFC 6184 §5.2 table 3).
var ErrUnsupportedPacketization = errors.New("rtpau: packet type not allowed in packetization-mode=1")

// ErrNeedKeyframe is returned by H264.Push when a loss made the stream
// undecodable: the access unit in progress was dropped and nothing is emitted
// until the next IDR. The caller should send an RTCP PLI. It is returned once
// per loss; H264.NeedKeyframe reports the waiting state.
var ErrNeedKeyframe = errors.New("rtpau: packets lost, waiting for a keyframe")

// ErrNoParameterSets is returned when an IDR arrives before any SPS and PPS
// were seen (neither in-band nor earlier). The IDR is dropped; ask for a
// keyframe.
var ErrNoParameterSets = errors.New("rtpau: IDR without SPS/PPS")

// ErrTooLarge is returned when an access unit exceeds MaxAccessUnitSize or
// MaxNALUnits. The access unit is dropped.
var ErrTooLarge = errors.New("rtpau: access unit too large")

// ErrTimestamp is returned by Opus.Push for a packet whose timestamp does not
// advance (duplicate or from before a resync). The packet is dropped.
var ErrTimestamp = errors.New("rtpau: timestamp does not advance")
