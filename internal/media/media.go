// Package media holds the common currency that flows through the node:
// access units with timestamps, the description of a published track, and
// the renditions of a ladder. It is a leaf package: it imports nothing of
// the node's own.
package media

import (
	"fmt"
	"time"
)

// Codec names the coding of an access unit.
type Codec uint8

// Codecs the node carries.
const (
	CodecUnknown Codec = iota
	CodecH264
	CodecOpus
	CodecAAC
)

func (c Codec) String() string {
	switch c {
	case CodecH264:
		return "H264"
	case CodecOpus:
		return "Opus"
	case CodecAAC:
		return "AAC"
	}
	return fmt.Sprintf("Codec(%d)", uint8(c))
}

// IsVideo reports whether c is a video codec.
func (c Codec) IsVideo() bool { return c == CodecH264 }

// ClockRate is the RTP/CMAF timescale of c: 90 kHz for video, 48 kHz for
// Opus and for AAC as the node encodes it.
func (c Codec) ClockRate() uint32 {
	if c.IsVideo() {
		return 90000
	}
	return 48000
}

// AccessUnit is one decodable unit: a whole video frame (all its slices) or
// one audio frame.
//
// Timestamps count ticks of Codec.ClockRate() from the start of the
// publisher's session and never go backwards in DTS order within a session.
// Time is the wall-clock instant that PTS maps to (from RTCP sender reports
// when the publisher sends them, from arrival time otherwise), used for
// PROGRAM-DATE-TIME, ProducerReferenceTime and latency figures.
type AccessUnit struct {
	Codec Codec
	PTS   int64
	DTS   int64
	Time  time.Time
	// Key is true for an IDR access unit (video) and for every audio frame.
	Key bool
	// Payload: for H.264 the NAL units without start codes, in decoding
	// order; an IDR carries the active SPS and PPS in front of its slices.
	// For Opus and AAC a single element holding one raw frame.
	Payload [][]byte
}

// Duration converts a tick count of this AU's clock to a time.Duration.
func (au *AccessUnit) Duration(ticks int64) time.Duration {
	return time.Duration(ticks) * time.Second / time.Duration(au.Codec.ClockRate())
}

// Size is the total payload size in bytes.
func (au *AccessUnit) Size() int {
	n := 0
	for _, p := range au.Payload {
		n += len(p)
	}
	return n
}

// Track describes one published track.
type Track struct {
	Codec Codec
	// Video: the SPS and PPS last seen (may be empty until the first IDR),
	// and the coded size they describe.
	SPS, PPS      []byte
	Width, Height int
	// Audio.
	SampleRate int
	Channels   int
}

// Rendition is one rung of an ABR ladder (or the source itself).
type Rendition struct {
	// Name is the URL-safe identifier ("source", "720p", ...).
	Name string `json:"name" yaml:"name"`
	// Width and Height of the picture; 0 for the source rendition, which
	// keeps whatever the publisher sends.
	Width  int `json:"width,omitempty" yaml:"width"`
	Height int `json:"height,omitempty" yaml:"height"`
	// Bitrate of the video in bit/s; 0 for the source rendition.
	Bitrate int `json:"bitrate,omitempty" yaml:"bitrate"`
}
