// Package cmaf packages the access units of each rendition of a stream into
// CMAF tracks (ISO/IEC 23000-19): one init segment (ftyp+moov) per codec
// configuration, and segments made of parts (CMAF chunks, one moof+mdat
// each) that start at IDRs. One set of CMAF segments serves LL-HLS
// (origin/hls) and LL-DASH (origin/dash); both read it through this API.
//
// # Layout
//
// A [Registry] holds the live [Stream]s by hub stream id. A Stream has one
// [Rendition] per hub rendition ("source", "720p", ...). A Rendition has a
// video [Track] and, when the publisher sends audio, an audio Track: video
// and audio are separate CMAF tracks (separate files), so DASH gets one
// AdaptationSet per media type and HLS an EXT-X-MEDIA audio group. The two
// tracks of a rendition cut segments at the same instants and use the same
// segment numbers (MSN), so segment N of the audio track lines up with
// segment N of the video track.
//
// # What a reader (HLS, DASH) gets
//
//   - Init segment: [Track.Init](id). Every [Segment] names the InitID it
//     needs; a new InitID appears when the codec configuration changes
//     (H.264 SPS change, e.g. Chromium's resolution ramp) or a publisher
//     reconnects. Such a segment has Discontinuity set and a new
//     DiscontinuitySeq (DASH: start a new Period there).
//   - Segment list: [Track.Snapshot] returns a consistent copy of the
//     window: each Segment has its number (MSN, also the DASH $Number$),
//     Duration, BaseTime (the tfdt of its first sample, in Timescale units;
//     never goes backwards, also across reconnects and restarts), Wall (the
//     wall-clock time of its first sample: PROGRAM-DATE-TIME, DASH period
//     anchoring, ProducerReferenceTime), and its Parts. The last Segment of
//     a live track is incomplete (Complete false) and grows.
//   - Parts: [Segment.Parts] (index, duration, independent flag, bytes).
//     [Track.Part] fetches one part.
//   - Waiting: [Track.Wait](ctx, msn, part) blocks until that part (part
//     -1: the whole segment) is complete, the track ends, or ctx is done.
//     [Track.Changed] returns a channel closed at the next change, for
//     readers that re-render on any change.
//   - Chunked segments: [Track.WriteSegment](ctx, w, msn) writes a segment
//     that may still be in progress: styp, then each part as soon as it is
//     complete (flushing w when it is an http.Flusher) until the segment is
//     complete. This is what LL-DASH sends with chunked transfer.
//   - URLs: [InitName], [SegmentName], [PartName] give the file names under
//     /cmaf/{id}/{rendition}/{kind}/ that [Registry.RegisterRoutes] serves
//     (with ETag, Range, HEAD, CORS and Cache-Control); HLS and DASH must
//     reference the same URLs so that a CDN caches one copy.
//
// Numbering (next MSN, discontinuity sequence, init id, media time) is
// persisted through [State] so that a restart or a reconnect continues it.
package cmaf
