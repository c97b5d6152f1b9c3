package cmaf

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// Kind is the media type of a CMAF track.
type Kind uint8

// Track kinds.
const (
	Video Kind = iota + 1
	Audio
)

// String is the URL path element of the kind: "video" or "audio".
func (k Kind) String() string {
	switch k {
	case Video:
		return "video"
	case Audio:
		return "audio"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// ParseKind is the inverse of Kind.String.
func ParseKind(s string) (Kind, bool) {
	switch s {
	case "video":
		return Video, true
	case "audio":
		return Audio, true
	}
	return 0, false
}

// Part is one CMAF chunk (moof+mdat). Its fields never change once it is
// published in a Segment.
type Part struct {
	// Index within its segment, from 0.
	Index int
	// Duration in Timescale ticks and as a time.Duration.
	Ticks    uint64
	Duration time.Duration
	// Independent: the part starts with a random-access sample (IDR for
	// video; always true for audio). LL-HLS INDEPENDENT=YES.
	Independent bool
	// Data is the part's CMAF chunks (moof+mdat each; video: one per
	// frame). Read only.
	Data []byte
	// Samples is the number of samples (frames) in the part.
	Samples int
	// CRC is the CRC-32 (IEEE) of Data, for ETags.
	CRC uint32
	// Done is the wall-clock time the part was completed.
	Done time.Time
}

// Segment is one CMAF fragment sequence that starts at a random-access
// sample. Values returned by Snapshot are copies; Parts is shared read-only.
type Segment struct {
	// MSN is the media sequence number (DASH $Number$).
	MSN uint64
	// InitID names the init segment this segment needs (Track.Init).
	InitID uint64
	// Discontinuity is set on the first segment after a change of init
	// segment or of publisher session; DiscontinuitySeq counts them
	// (EXT-X-DISCONTINUITY-SEQUENCE of a playlist starting here).
	Discontinuity    bool
	DiscontinuitySeq uint64
	// BaseTime is the tfdt of the first sample, in Timescale ticks.
	BaseTime uint64
	// Ticks and Duration: total so far; final once Complete.
	Ticks    uint64
	Duration time.Duration
	// Wall is the wall-clock time of the first sample.
	Wall time.Time
	// Parts written so far.
	Parts []Part
	// Complete: no more parts will be added.
	Complete bool
	// Size in bytes of the whole segment file (styp + parts) once Complete.
	Size int
	// Gap: a segment the rendition does not have (its encoder was down
	// while the stream's other renditions had it), listed so that MSN N
	// is the same instant in every rendition. Always Complete, no parts;
	// its parts are 404 (LL-HLS: EXT-X-GAP, RFC 8216bis §4.4.4.7) and
	// its file a still picture (GapFill) or 404.
	Gap bool
}

// Snapshot is a consistent copy of a track's window.
type Snapshot struct {
	// Segments, oldest first. While the track is live the last one is
	// usually incomplete.
	Segments []Segment
	// Ended: the publisher left for good; no segment will follow.
	Ended bool
	// NextMSN/NextPart: where the next part will be written (the LL-HLS
	// preload hint).
	NextMSN  uint64
	NextPart int
	// Info about the current configuration.
	Info TrackInfo
	// Version increases with every change.
	Version uint64
}

// TrackInfo describes the current codec configuration of a track.
type TrackInfo struct {
	Kind Kind
	// Codec is the RFC 6381 codecs string ("avc1.42e01f", "opus",
	// "mp4a.40.2").
	Codec     string
	Timescale uint32
	// Video.
	Width, Height int
	FrameRate     float64
	// Audio.
	SampleRate, Channels int
	// Bandwidth: peak and average bit/s over the complete segments of the
	// window (0 until one segment is complete).
	PeakBandwidth, AvgBandwidth int
	// PartTarget and SegmentTarget from the config.
	PartTarget, SegmentTarget time.Duration
	// Window from the config: a complete segment is dropped once the
	// complete segments after it last Window (trimLocked), so it stays
	// served until at least Window after it ends.
	Window time.Duration
	// MaxSegment is the longest complete segment of the window.
	MaxSegment time.Duration
	// Captions: a complete segment's video carried CEA-608/708 closed
	// captions in SEI (hasCaptions). It stays set for the stream.
	Captions bool
}

// Track is one CMAF track of one rendition. It is written by its
// rendition's packager and read concurrently by any number of readers.
type Track struct {
	kind      Kind
	rendition string
	stream    uint64

	mu       sync.Mutex
	segs     []*Segment // window; last may be incomplete
	inits    map[uint64][]byte
	info     TrackInfo
	ended    bool
	nextMSN  uint64
	nextPart int
	version  uint64
	changed  chan struct{}
	// open is the part being written; grew is closed when it grows and
	// at every change (readers that stream it wait on it).
	open openPart
	grew chan struct{}
	// fills are the files of gap segments served so far (GapFill).
	fills map[uint64][]byte
}

// openPart is the chunks written so far of part idx of segment msn.
type openPart struct {
	msn  uint64
	idx  int
	data []byte // append-only: earlier slices of it stay valid
	live bool
}

func newTrack(stream uint64, rendition string, kind Kind) *Track {
	return &Track{
		stream: stream, rendition: rendition, kind: kind,
		inits:   map[uint64][]byte{},
		changed: make(chan struct{}),
		grew:    make(chan struct{}),
	}
}

// Kind is the media type.
func (t *Track) Kind() Kind { return t.kind }

// Rendition is the name of the rendition the track belongs to.
func (t *Track) Rendition() string { return t.rendition }

// Init returns init segment id (ftyp+moov), if still referenced by the
// window.
func (t *Track) Init(id uint64) ([]byte, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	b, ok := t.inits[id]
	return b, ok
}

// Info is the current configuration.
func (t *Track) Info() TrackInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.info
}

// Snapshot copies the window.
func (t *Track) Snapshot() Snapshot {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := Snapshot{
		Segments: make([]Segment, len(t.segs)),
		Ended:    t.ended,
		NextMSN:  t.nextMSN,
		NextPart: t.nextPart,
		Info:     t.info,
		Version:  t.version,
	}
	for i, sg := range t.segs {
		s.Segments[i] = *sg
		s.Segments[i].Parts = sg.Parts[:len(sg.Parts):len(sg.Parts)]
	}
	return s
}

// Window reports the MSN of the track's first listed segment and whether
// it has any and has not ended.
func (t *Track) Window() (first uint64, live bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.segs) == 0 || t.ended {
		return 0, false
	}
	return t.segs[0].MSN, true
}

// Version increases with every change of the track.
func (t *Track) Version() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.version
}

// Changed returns a channel that is closed at the next change of the
// track (part, segment, end).
func (t *Track) Changed() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.changed
}

// segLocked finds msn in the window.
func (t *Track) segLocked(msn uint64) *Segment {
	if len(t.segs) == 0 {
		return nil
	}
	first := t.segs[0].MSN
	if msn < first || msn-first >= uint64(len(t.segs)) {
		return nil
	}
	return t.segs[msn-first]
}

// Segment returns a copy of segment msn.
func (t *Track) Segment(msn uint64) (Segment, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	sg := t.segLocked(msn)
	if sg == nil {
		return Segment{}, false
	}
	c := *sg
	c.Parts = sg.Parts[:len(sg.Parts):len(sg.Parts)]
	return c, true
}

// IsGap reports whether segment msn is a gap segment (Segment.Gap).
func (t *Track) IsGap(msn uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	sg := t.segLocked(msn)
	return sg != nil && sg.Gap
}

// Part returns part idx of segment msn if it is complete.
func (t *Track) Part(msn uint64, idx int) (Part, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	sg := t.segLocked(msn)
	if sg == nil || idx < 0 || idx >= len(sg.Parts) {
		return Part{}, false
	}
	return sg.Parts[idx], true
}

// availableLocked reports whether (msn, part) is complete; part < 0 asks
// for the whole segment. A part index past the last part of a complete
// segment means part 0 of the next one (LL-HLS §6.2.5.2), so it is
// available when that one is.
func (t *Track) availableLocked(msn uint64, part int) bool {
	for {
		sg := t.segLocked(msn)
		if sg == nil {
			if len(t.segs) > 0 && msn < t.segs[0].MSN {
				return true // already gone: not worth waiting for
			}
			return false
		}
		if part < 0 {
			return sg.Complete
		}
		if part < len(sg.Parts) {
			return true
		}
		if !sg.Complete {
			return false
		}
		msn, part = msn+1, 0
	}
}

// Available reports without blocking whether Wait(msn, part) would
// return at once.
func (t *Track) Available(msn uint64, part int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.availableLocked(msn, part)
}

// Wait blocks until part of segment msn (part < 0: the whole segment) is
// complete. It returns nil then, ErrEnded if the track ends first,
// ErrTooFar at once if msn is more than two segments past the last
// complete segment (LL-HLS §6.2.5.2: 400), or ctx.Err().
func (t *Track) Wait(ctx context.Context, msn uint64, part int) error {
	for {
		t.mu.Lock()
		if t.availableLocked(msn, part) {
			t.mu.Unlock()
			return nil
		}
		if t.ended {
			t.mu.Unlock()
			return ErrEnded
		}
		// nextMSN is the segment being written; the last complete one is
		// nextMSN-1.
		if msn > t.nextMSN+1 {
			t.mu.Unlock()
			return ErrTooFar
		}
		ch := t.changed
		t.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// WriteSegment writes segment msn to w: the styp box, then its parts as
// they are written, chunk by chunk (the open part's too), flushing w after
// each write when it implements http.Flusher, until the segment is
// complete. A segment that does not exist yet is waited for (up to two
// segments ahead). It returns ErrNotFound for a segment outside the
// window.
func (t *Track) WriteSegment(ctx context.Context, w io.Writer, msn uint64) error {
	if err := t.waitStarted(ctx, msn); err != nil {
		if err == ErrEnded {
			return ErrNotFound
		}
		return err
	}
	if t.IsGap(msn) {
		return ErrNotFound
	}
	fl, _ := w.(http.Flusher)
	if _, err := w.Write(stypBox); err != nil {
		return err
	}
	// next: parts sent whole; sent: bytes sent of part next (it was the
	// open part then; a complete part is its chunks, byte for byte).
	next, sent := 0, 0
	for {
		t.mu.Lock()
		sg := t.segLocked(msn)
		if sg == nil {
			t.mu.Unlock()
			return ErrNotFound
		}
		parts := sg.Parts[next:len(sg.Parts):len(sg.Parts)]
		var open []byte
		if o := t.open; o.live && o.msn == msn && o.idx == len(sg.Parts) {
			open = o.data
		}
		complete := sg.Complete
		ended := t.ended
		ch := t.grew
		t.mu.Unlock()
		wrote := false
		for _, p := range parts {
			if _, err := w.Write(p.Data[sent:]); err != nil {
				return err
			}
			wrote = wrote || len(p.Data) > sent
			next, sent = next+1, 0
		}
		if len(open) > sent {
			if _, err := w.Write(open[sent:]); err != nil {
				return err
			}
			sent, wrote = len(open), true
		}
		if wrote && fl != nil {
			fl.Flush()
		}
		if complete || ended {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// waitStarted blocks until segment msn has its first chunk (or is
// complete), with Wait's rules and errors.
func (t *Track) waitStarted(ctx context.Context, msn uint64) error {
	for {
		_, _, started, ch := t.partProgress(msn, 0)
		if started {
			return nil
		}
		t.mu.Lock()
		avail := t.availableLocked(msn, 0)
		ended, tooFar := t.ended, msn > t.nextMSN+1
		t.mu.Unlock()
		switch {
		case avail:
			return nil
		case ended:
			return ErrEnded
		case tooFar:
			return ErrTooFar
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// SegmentBytes returns the whole file of a complete segment (styp + parts).
func (t *Track) SegmentBytes(msn uint64) ([]byte, bool) {
	t.mu.Lock()
	sg := t.segLocked(msn)
	if sg == nil || !sg.Complete || sg.Gap {
		t.mu.Unlock()
		return nil, false
	}
	parts := sg.Parts
	size := sg.Size
	t.mu.Unlock()
	b := make([]byte, 0, size)
	b = append(b, stypBox...)
	for _, p := range parts {
		b = append(b, p.Data...)
	}
	return b, true
}

// notifyLocked wakes every waiter.
func (t *Track) notifyLocked() {
	t.version++
	close(t.changed)
	t.changed = make(chan struct{})
	t.growLocked()
}

// growLocked wakes the readers streaming the open part or segment (and
// not the playlist waiters: a chunk is not a change they care about).
func (t *Track) growLocked() {
	close(t.grew)
	t.grew = make(chan struct{})
}

// partProgress returns the bytes of part idx of segment msn written so
// far, whether the part is complete, whether it has started, and a
// channel closed when that may have changed.
func (t *Track) partProgress(msn uint64, idx int) (data []byte, complete, started bool, ch <-chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ch = t.grew
	if sg := t.segLocked(msn); sg != nil && idx >= 0 && idx < len(sg.Parts) {
		return sg.Parts[idx].Data, true, true, ch
	}
	if o := t.open; o.live && o.msn == msn && o.idx == idx {
		return o.data, false, true, ch
	}
	return nil, false, false, ch
}
