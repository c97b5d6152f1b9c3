package dash

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/Eyevinn/dash-mpd/mpd"

	"github.com/edgenode/edgenode/origin/cmaf"
)

// Schemes and profiles.
const (
	// UTCTimingScheme: the time endpoint answers ISO 8601 (DASH-IF IOP
	// §4.7, http-iso).
	UTCTimingScheme = "urn:mpeg:dash:utc:http-iso:2014"
	profiles        = "urn:mpeg:dash:profile:isoff-live:2011,urn:mpeg:dash:profile:cmaf:2019"
	dateTimeFormat  = "2006-01-02T15:04:05.000Z"
)

// view is one track as read for one MPD.
type view struct {
	rendition string
	kind      cmaf.Kind
	snap      cmaf.Snapshot
	track     *cmaf.Track // nil in unit tests
	// rateCap is the rung's configured video bit rate
	// (cmaf.Registry.RateCap; 0: the source, or audio).
	rateCap int
}

// period is one Period of the MPD: its anchor and the discontinuity
// sequence number of the source track that opens it.
type period struct {
	dsn uint64
	anchor
}

// mpdInput is everything an MPD is made from; buildMPD is a pure function
// of it.
type mpdInput struct {
	tracks  []view // primary (source rendition's video, or audio) first
	periods []period
	ast     time.Time
	now     time.Time
	timeURL string
	cfg     Config
	// video describes init segment id of a video track (nil: use the
	// track's current info).
	video func(v *view, initID uint64) (videoInfo, bool)
}

// startingUp reports whether the primary track's window is only the
// segment being written. The MPD announces it at its nominal length, but a
// publisher session's first segment is often short (ingest asks for an
// early keyframe so that HLS players, which start from a complete segment,
// start sooner). Such an MPD is rarely served: the request is held until
// the segment is complete (http.go holdForSegment). When the hold's bound
// runs out first (a publisher with a long first GOP), players that honour
// minimumUpdatePeriod are told to reload every part until the segment is
// complete, so they learn its real length before they look for the next
// one; dash.js reloads at most once a second whatever the MPD says.
func startingUp(s *cmaf.Snapshot) bool {
	return len(s.Segments) == 1 && !s.Segments[0].Complete && !s.Ended
}

func dur(d time.Duration) *mpd.Duration {
	v := mpd.Duration(d.Round(time.Millisecond))
	return &v
}

func u32(v uint32) *uint32 { return &v }

// periodOf returns the index of the period segment sg of v belongs to.
// The primary track's segments go by discontinuity sequence; the other
// tracks by media time (they cut at the same instants, within a frame).
func periodOf(in *mpdInput, v *view, sg *cmaf.Segment, primary bool) int {
	if primary {
		for i := len(in.periods) - 1; i >= 0; i-- {
			if in.periods[i].dsn <= sg.DiscontinuitySeq {
				return i
			}
		}
		return 0
	}
	t := float64(sg.BaseTime) / float64(v.snap.Info.Timescale)
	const tolerance = 0.1 // s: less than any segment, more than a frame
	for i := len(in.periods) - 1; i >= 0; i-- {
		if in.periods[i].media <= t+tolerance {
			return i
		}
	}
	return -1 // before the window of the source track
}

// buildMPD renders the MPD. ended makes it static (the stream is over).
func buildMPD(in *mpdInput, ended bool) *mpd.MPD {
	prim := &in.tracks[0]
	info := prim.snap.Info
	m := mpd.NewMPD(mpd.DYNAMIC_TYPE)
	m.Profiles = profiles
	utc := mpd.NewDescriptor(UTCTimingScheme, in.timeURL, "")
	segTarget := max(info.SegmentTarget, 100*time.Millisecond)
	partTarget := max(info.PartTarget, 10*time.Millisecond)
	maxSeg := max(info.MaxSegment, segTarget)

	// The presentation window every track keeps: the shortest of them.
	// Each listed segment must be served for timeShiftBufferDepth after
	// it ends (ISO/IEC 23009-1 §5.3.1.2 Table 3, MPD@timeShiftBufferDepth;
	// SPECS.md: every segment the MPD implies is served), and a track may keep a
	// segment less than the source video: an audio track's oldest was
	// gone while the source's window still promised it (404 to a client
	// at the window's start; node TestStockPlayers, the MPD rules).
	window := time.Duration(-1)
	for i := range in.tracks {
		var w time.Duration
		for _, sg := range in.tracks[i].snap.Segments {
			w += sg.Duration
		}
		if window < 0 || w < window {
			window = w
		}
	}
	window = max(window, segTarget)
	// What is listed can exceed what is kept by up to a segment and the
	// open one's parts (trimLocked drops a segment once the complete ones
	// after it last cmaf Config.Window): a time-shift buffer of the listed
	// sum promised the oldest two segments a second longer than they were
	// kept (the audio's segment 404 to the MPD rules right after the
	// stock players' plays, node TestStockPlayers). Kept at least Window
	// after it ends, a segment is served for all of a Window-long buffer.
	if w := info.Window; w > 0 && window > w {
		window = w
	}

	if ended {
		m.Type = mpd.Ptr(mpd.STATIC_TYPE)
		m.AvailabilityStartTime = ""
	} else {
		m.AvailabilityStartTime = mpd.DateTime(in.ast.UTC().Format(dateTimeFormat))
		m.PublishTime = mpd.DateTime(in.now.UTC().Format(dateTimeFormat))
		mup := in.cfg.MinimumUpdatePeriod
		if mup == 0 {
			mup = segTarget
		}
		if startingUp(&prim.snap) {
			mup = min(mup, partTarget)
		}
		m.MinimumUpdatePeriod = dur(mup)
		// Where the next version is (ISO/IEC 23009-1 §5.3.1.2 Table 3,
		// §5.4.1: a client uses Location for its updates): the URL of
		// the MPD that lists the segment after this one's newest,
		// relative so that it stays on whatever host (a CDN) the player
		// uses. The node holds a request for it until that segment
		// starts (http.go holdForNext).
		if k := len(prim.snap.Segments); k > 0 {
			next := prim.snap.Segments[k-1].MSN + 1
			m.Location = []*mpd.LocationType{{Value: MPDName + "?" + NextParam + "=" + strconv.FormatUint(next, 10)}}
		}
		m.SuggestedPresentationDelay = dur(in.cfg.TargetLatency)
		// The time-shift buffer is what the node keeps, not what a young
		// stream has listed so far: dash.js caps its live delay at the
		// first MPD's timeShiftBufferDepth (PlaybackController
		// computeAndSetLiveDelay) and Shaka Player its presentation delay
		// (DashParser), which on a stream's first segment was 1 s, under
		// the delay they were given. origin/cmaf keeps
		// at least 3 segment durations (cmaf.Config.Window), so that much
		// is always true.
		m.TimeShiftBufferDepth = dur(max(window, 3*segTarget))
		// DASH-IF IOP v5 low latency: latency target and the playback
		// rate range a player may use to reach it. dash.js starts about
		// 0.8 s behind its target (it waits for the segment holding its
		// start position); up to 1.15× it is at the target within ~5 s,
		// at 1.04× it took 15 s (measured in node/e2e_test.go).
		m.ServiceDescription = []*mpd.ServiceDescriptionType{{
			Id: 0,
			Latencies: []*mpd.LatencyType{{
				ReferenceId: 0,
				Target:      u32(uint32(in.cfg.TargetLatency.Milliseconds())),
				Min:         u32(uint32(in.cfg.TargetLatency.Milliseconds() / 2)),
				Max:         u32(uint32(in.cfg.TargetLatency.Milliseconds() * 3)),
			}},
			PlaybackRates: []*mpd.PlaybackRateType{{Min: 0.96, Max: 1.15}},
		}}
	}
	m.MinBufferTime = dur(segTarget)
	m.MaxSegmentDuration = dur(maxSeg.Round(time.Second) + time.Second)
	// DASH-IF IOP v5: a dynamic MPD SHALL carry UTCTiming; the node
	// serves its own time, so players never ask an internet server.
	m.UTCTimings = []*mpd.DescriptorType{utc}

	// Which segments of each track go into which period.
	type piece struct {
		v    *view
		segs []cmaf.Segment
	}
	byPeriod := make([][]piece, len(in.periods))
	shared := sharedAudio(in.tracks)
	for ti := range in.tracks {
		v := &in.tracks[ti]
		if ti > 0 && shared != "" && v.kind == cmaf.Audio && v.rendition != shared {
			continue
		}
		cur := -1
		for _, sg := range v.snap.Segments {
			p := periodOf(in, v, &sg, ti == 0)
			if p < 0 {
				continue
			}
			if p != cur {
				byPeriod[p] = append(byPeriod[p], piece{v: v})
				cur = p
			}
			pc := &byPeriod[p][len(byPeriod[p])-1]
			// One init segment per Representation per Period.
			if len(pc.segs) > 0 && pc.segs[0].InitID != sg.InitID {
				continue
			}
			pc.segs = append(pc.segs, sg)
		}
	}

	var first time.Time
	if len(in.periods) > 0 {
		first = in.periods[0].wall
	}
	var lastEnd time.Duration
	for pi, p := range in.periods {
		var start time.Duration
		if ended {
			start = p.wall.Sub(first)
		} else {
			start = p.wall.Sub(in.ast)
		}
		start = max(start, 0)
		per := &mpd.Period{Id: "p" + strconv.FormatUint(p.dsn, 10), Start: dur(start)}
		var sets [3]*mpd.AdaptationSetType
		for _, pc := range byPeriod[pi] {
			if len(pc.segs) == 0 {
				continue
			}
			v := pc.v
			ts := v.snap.Info.Timescale
			last := pc.segs[len(pc.segs)-1]
			incomplete := !last.Complete && !ended && pi == len(in.periods)-1
			rep := representation(v, pc.segs, p.media, incomplete, segTarget, partTarget, ended)
			if v.kind == cmaf.Video && in.video != nil {
				if vi, ok := in.video(v, pc.segs[0].InitID); ok {
					rep.Codecs = vi.codec
					rep.Width, rep.Height = uint32(max(vi.width, 0)), uint32(max(vi.height, 0))
					// The SPS's rate only where the samples give none
					// (representation).
					if rep.FrameRate == "" {
						rep.FrameRate = frameRate(vi.fps)
					}
				}
			}
			as := sets[v.kind]
			if as == nil {
				as = adaptationSet(v, uint32(v.kind)-1)
				// ProducerReferenceTime (DASH-IF IOP v5 low latency):
				// wall clock of a media time, with the MPD's UTCTiming.
				if !ended && !pc.segs[0].Wall.IsZero() {
					as.ProducerReferenceTimes = []*mpd.ProducerReferenceTimeType{{
						Id: 0, Type: "encoder",
						WallClockTime:    pc.segs[0].Wall.UTC().Format(dateTimeFormat),
						PresentationTime: pc.segs[0].BaseTime,
						UTCTiming:        mpd.NewDescriptor(UTCTimingScheme, in.timeURL, ""),
					}}
				}
				sets[v.kind] = as
				per.AdaptationSets = append(per.AdaptationSets, as)
			}
			as.Representations = append(as.Representations, rep)
			if v == prim {
				end := start + time.Duration(float64(last.BaseTime+last.Ticks)/float64(ts)*float64(time.Second)) -
					time.Duration(p.media*float64(time.Second))
				lastEnd = max(lastEnd, end)
			}
		}
		if len(per.AdaptationSets) > 0 {
			m.AppendPeriod(per)
		}
	}
	if ended {
		m.MediaPresentationDuration = dur(lastEnd)
	}
	return m
}

func adaptationSet(v *view, id uint32) *mpd.AdaptationSetType {
	as := &mpd.AdaptationSetType{Id: u32(id), SegmentAlignment: true}
	as.StartWithSAP = 1
	if v.kind == cmaf.Video {
		as.ContentType = "video"
		as.MimeType = "video/mp4"
	} else {
		as.ContentType = "audio"
		as.MimeType = "audio/mp4"
		as.Lang = "und"
	}
	return as
}

// representation renders one track's segments of one period.
func representation(v *view, segs []cmaf.Segment, periodMedia float64, incomplete bool, segTarget, partTarget time.Duration, ended bool) *mpd.RepresentationType {
	info := v.snap.Info
	ts := info.Timescale
	rep := &mpd.RepresentationType{Id: v.rendition + "-" + v.kind.String()}
	// ISO/IEC 23009-1 §5.3.5.2: @bandwidth is the rate at which the
	// Representation, delivered continuously, plays out after
	// @minBufferTime: the measured peak with headroom and never below the
	// rung's rate cap, the very figure of the HLS BANDWIDTH
	// (SPECS.md § LL-DASH; the audio's is the HLS figure's other term).
	bw, _ := cmaf.Bandwidth(&v.snap, v.rateCap)
	rep.Bandwidth = uint32(min(bw, math.MaxUint32))
	rep.Codecs = info.Codec
	if v.kind == cmaf.Video {
		rep.Width, rep.Height = uint32(max(info.Width, 0)), uint32(max(info.Height, 0))
		// Measured over this Period's samples (its init segment may be
		// an older one than the track's current), else over the window.
		fps := sampleRate(segs)
		if fps == 0 {
			fps = info.FrameRate
		}
		rep.FrameRate = frameRate(fps)
	} else if info.SampleRate > 0 {
		rep.AudioSamplingRate = mpd.Ptr(mpd.UIntVectorType(strconv.Itoa(info.SampleRate)))
		if info.Channels > 0 {
			rep.AudioChannelConfigurations = []*mpd.DescriptorType{mpd.NewDescriptor(
				"urn:mpeg:mpegB:cicp:ChannelConfiguration", strconv.Itoa(info.Channels), "")}
		}
	}
	dir := v.rendition + "/" + v.kind.String() + "/"
	st := &mpd.SegmentTemplateType{
		Media:          dir + "seg$Number$.m4s",
		Initialization: dir + cmaf.InitName(segs[0].InitID),
	}
	st.SetTimescale(ts)
	st.StartNumber = u32(uint32(segs[0].MSN))
	pto := uint64(math.Round(periodMedia * float64(ts)))
	st.PresentationTimeOffset = &pto
	if !ended {
		// A segment is available half a part after it starts and is then
		// sent with chunked transfer as it is written (DASH-IF IOP v5 low
		// latency: ATO = segment duration − chunk duration; the node's
		// chunks are single video frames and ≥ 60 ms of audio). dash.js
		// asks for a segment no earlier than that: at one part (0.8 s) its
		// request came 0.2 s after the segment started, 0.2 s of a 1 s
		// latency target's buffer.
		ato := (segTarget - partTarget/2).Seconds()
		if ato <= 0 {
			ato = segTarget.Seconds() / 2
		}
		st.AvailabilityTimeOffset = mpd.FloatInf64(ato)
		st.AvailabilityTimeComplete = mpd.Ptr(false)
	}
	// Gap segments (cmaf.Segment.Gap: a rung whose encoder restarted) are
	// listed like any other: $Number$ is startNumber + the entry's index
	// (dash.js 5.2.1 does not read S@n), so leaving them out would give
	// every later segment a number that is not its MSN. A video gap's
	// file is a still picture (cmaf.Track.GapFill), so a player that
	// loads it keeps the Representation.
	tl := &mpd.SegmentTimelineType{}
	var next uint64
	for i, sg := range segs {
		d := sg.Ticks
		if i == len(segs)-1 && incomplete {
			// The segment being written: announce its nominal length.
			d = max(d, uint64(segTarget.Seconds()*float64(ts)))
		}
		if d == 0 {
			continue
		}
		if n := len(tl.S); n > 0 && sg.BaseTime == next && tl.S[n-1].D == d {
			tl.S[n-1].R++
		} else {
			t := sg.BaseTime
			tl.S = append(tl.S, &mpd.S{T: &t, D: d})
		}
		next = sg.BaseTime + d
	}
	st.SegmentTimeline = tl
	rep.SegmentTemplate = st
	return rep
}

// sampleRate is the frame rate the samples of segs play at: frames over
// the duration of the parts that hold them (0: no frame counted yet).
func sampleRate(segs []cmaf.Segment) float64 {
	var n int
	var d time.Duration
	for _, sg := range segs {
		for _, p := range sg.Parts {
			if p.Samples > 0 {
				n += p.Samples
				d += p.Duration
			}
		}
	}
	if n == 0 || d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// Frame rates frameRate states; any other is left out (the attribute is
// optional).
const minFrameRate, maxFrameRate = 1, 240

// frameRate renders f frames per second as @frameRate: ISO/IEC 23009-1
// §5.3.12.2, FrameRateType, an integer or "N/D" frames per second. Rates
// within 0.01 of an integer or of n*1000/1001 (NTSC) are stated exactly,
// any other measured rate as the nearest integer. "" (leave the attribute
// out) outside minFrameRate..maxFrameRate: an SPS's VUI may carry the
// timescale there (time_scale 180000 over 2 ticks, a 90 kHz encoder with
// no fixed rate), which is no frame rate.
func frameRate(f float64) mpd.FrameRateType {
	if !(f >= minFrameRate-0.5 && f < maxFrameRate+0.5) {
		return ""
	}
	if r := math.Round(f); math.Abs(f-r) < 0.01 {
		return mpd.FrameRateType(strconv.Itoa(int(r)))
	}
	// NTSC-style rates: n*1000/1001.
	n := math.Round(f * 1001 / 1000)
	if math.Abs(n*1000/1001-f) < 0.01 {
		return mpd.FrameRateType(strconv.Itoa(int(n*1000)) + "/1001")
	}
	return mpd.FrameRateType(strconv.Itoa(int(math.Round(f))))
}

// sharedAudio names the rendition whose AAC audio is the stream's one
// audio Representation: the transcoder publishes an audio-only AAC
// rendition next to its video rungs (hwenc.AudioRendition). DASH players
// pick video and audio independently, so the audio AdaptationSet lists it
// alone rather than the source's Opus and a copy of the same AAC per rung
// (DASH-IF IOP: one codec per AdaptationSet). "" when there is no such
// rendition (no encoder: every audio track is listed, i.e. the Opus).
func sharedAudio(tracks []view) string {
	hasVideo := map[string]bool{}
	for _, v := range tracks {
		if v.kind == cmaf.Video {
			hasVideo[v.rendition] = true
		}
	}
	if len(hasVideo) == 0 {
		return ""
	}
	for _, v := range tracks {
		if v.kind == cmaf.Audio && !hasVideo[v.rendition] && strings.HasPrefix(v.snap.Info.Codec, "mp4a") && len(v.snap.Segments) > 0 {
			return v.rendition
		}
	}
	return ""
}
