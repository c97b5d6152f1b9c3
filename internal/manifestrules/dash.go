package manifestrules

import (
	"context"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/Eyevinn/dash-mpd/mpd"
)

// listed is one segment a SegmentTimeline lists.
type listed struct {
	number   uint64
	t, d     uint64 // in the timescale
	ts       uint32
	pto      uint64
	periodAt time.Duration // Period@start
}

// start is the segment's presentation start, after availabilityStartTime.
func (s listed) start() time.Duration {
	return s.periodAt + time.Duration((float64(s.t)-float64(s.pto))/float64(s.ts)*float64(time.Second))
}

func (s listed) duration() time.Duration {
	return time.Duration(float64(s.d) / float64(s.ts) * float64(time.Second))
}

// CheckMPD checks a dynamic or static MPD fetched from mpdURL and fetches
// its init segments and every segment that is available at now (a
// dynamic MPD) or listed (a static one).
func CheckMPD(ctx context.Context, mpdURL string, body []byte, get Getter, now time.Time, exp Expect) Errors {
	began := time.Now()
	var errs Errors
	m, err := mpd.MPDFromBytes(body)
	if err != nil {
		errs.add("ISO/IEC 23009-1 §5.3.1 (MPD schema): third-party parser: %v", err)
		return errs
	}
	dynamic := m.GetType() == mpd.DYNAMIC_TYPE
	var ast time.Time
	if dynamic {
		// §5.3.1.2 Table 3: a dynamic MPD has @availabilityStartTime and
		// @publishTime; the node updates it, so @minimumUpdatePeriod.
		if ast, err = time.Parse(time.RFC3339Nano, string(m.AvailabilityStartTime)); err != nil {
			errs.add("ISO/IEC 23009-1 §5.3.1.2: dynamic MPD @availabilityStartTime %q: %v", m.AvailabilityStartTime, err)
		}
		if _, err := time.Parse(time.RFC3339Nano, string(m.PublishTime)); err != nil {
			errs.add("ISO/IEC 23009-1 §5.3.1.2: dynamic MPD @publishTime %q: %v", m.PublishTime, err)
		}
		if m.MinimumUpdatePeriod == nil {
			errs.add("ISO/IEC 23009-1 §5.3.1.2: a live MPD without @minimumUpdatePeriod is never reloaded")
		}
		if m.TimeShiftBufferDepth == nil || m.SuggestedPresentationDelay == nil {
			errs.add("DASH-IF IOP v5 (live): @timeShiftBufferDepth and @suggestedPresentationDelay are required")
		}
		// DASH-IF IOP v5: a dynamic MPD SHALL carry UTCTiming.
		if len(m.UTCTimings) == 0 {
			errs.add("DASH-IF IOP v5 (live): dynamic MPD without UTCTiming")
		}
		// docs/cdn.md rule 7: a live MPD names its next version
		// (ISO/IEC 23009-1 §5.3.1.2 Location, used for updates §5.4.1), on
		// the host the player uses (relative), so that a CDN keeps one copy
		// per segment and players learn of segments as they start.
		if len(m.Location) == 0 {
			errs.add("ISO/IEC 23009-1 §5.3.1.2 (docs/cdn.md rule 7): live MPD without Location naming its next version")
		} else if v := m.Location[0].Value; strings.Contains(v, "://") || strings.HasPrefix(v, "/") {
			errs.add("ISO/IEC 23009-1 §5.3.1.2 (docs/cdn.md rule 7): Location %q is not relative to the MPD: players would leave the CDN", v)
		}
		// DASH-IF IOP v5 low latency: ServiceDescription with a target.
		if len(m.ServiceDescription) == 0 || len(m.ServiceDescription[0].Latencies) == 0 ||
			m.ServiceDescription[0].Latencies[0].Target == nil {
			errs.add("DASH-IF IOP v5 (low latency): no ServiceDescription/Latency@target")
		}
	}
	if m.MinBufferTime == nil {
		errs.add("ISO/IEC 23009-1 §5.3.1.2: @minBufferTime is mandatory")
	}
	var utc string
	if len(m.UTCTimings) > 0 {
		utc = m.UTCTimings[0].Value
	}
	var tsbd time.Duration
	if m.TimeShiftBufferDepth != nil {
		tsbd = time.Duration(*m.TimeShiftBufferDepth)
	}

	periodIDs := map[string]bool{}
	var prevInits map[string]string
	var prevStart time.Duration = -1
	for pi, p := range m.Periods {
		if p.Id == "" || periodIDs[p.Id] {
			errs.add("ISO/IEC 23009-1 §5.3.2.2: Period %d @id %q empty or repeated", pi, p.Id)
		}
		periodIDs[p.Id] = true
		var pStart time.Duration
		if p.Start != nil {
			pStart = time.Duration(*p.Start)
		} else if dynamic {
			errs.add("ISO/IEC 23009-1 §5.3.2.2: Period %s of a dynamic MPD without @start", p.Id)
		}
		if pStart < prevStart {
			errs.add("ISO/IEC 23009-1 §5.3.2.1: Period %s starts at %v, before the one before it (%v)", p.Id, pStart, prevStart)
		}
		prevStart = pStart
		inits := map[string]string{}
		for _, as := range p.AdaptationSets {
			kind := string(as.ContentType)
			if kind != "video" && kind != "audio" {
				errs.add("ISO/IEC 23009-1 §5.3.3.2: Period %s AdaptationSet without @contentType video/audio (%q)", p.Id, kind)
			}
			if as.MimeType != kind+"/mp4" {
				errs.add("ISO/IEC 23009-1 §5.3.7.2: Period %s %s AdaptationSet @mimeType %q", p.Id, kind, as.MimeType)
			}
			if dynamic && len(as.ProducerReferenceTimes) > 0 {
				for _, prt := range as.ProducerReferenceTimes {
					// DASH-IF IOP v5 low latency: an encoder PRT whose
					// UTCTiming is the MPD's own.
					if prt.UTCTiming == nil || prt.UTCTiming.Value != utc {
						errs.add("DASH-IF IOP v5 (low latency): Period %s ProducerReferenceTime without the MPD's UTCTiming", p.Id)
					}
					if _, err := time.Parse(time.RFC3339Nano, prt.WallClockTime); err != nil {
						errs.add("ISO/IEC 23009-1 §5.12: Period %s ProducerReferenceTime@wallClockTime %q", p.Id, prt.WallClockTime)
					}
				}
			}
			// DASH-IF IOP: the Representations of an AdaptationSet are
			// seamlessly switchable, so of one codec (Opus and AAC in one
			// set are not).
			family := ""
			for _, rep := range as.Representations {
				f, _, _ := strings.Cut(rep.Codecs, ".")
				if family != "" && f != family {
					errs.add("DASH-IF IOP (switchable Representations): Period %s %s AdaptationSet mixes codecs %s and %s", p.Id, kind, family, f)
				}
				family = f
			}
			byNumber := map[uint64]listed{} // the first Representation's, for §5.3.3.2 alignment
			alignedTo := ""
			for ri, rep := range as.Representations {
				id := rep.Id
				inits[id] = ""
				if id == "" {
					errs.add("ISO/IEC 23009-1 §5.3.5.2: Period %s Representation %d without @id", p.Id, ri)
				}
				// §5.3.5.2: @bandwidth, what continuous delivery needs.
				if rep.Bandwidth == 0 {
					errs.add("ISO/IEC 23009-1 §5.3.5.2: %s/%s @bandwidth missing", p.Id, id)
				}
				if capRate := exp.RateCaps[rendition(id)]; kind == "video" && capRate > 0 && int(rep.Bandwidth) < capRate {
					errs.add("ISO/IEC 23009-1 §5.3.5.2: %s/%s @bandwidth %d below the rung's rate cap %d: a player cannot budget on it", p.Id, id, rep.Bandwidth, capRate)
				}
				codecs := rep.Codecs
				if codecs == "" {
					codecs = as.Codecs
				}
				if !codecOK(codecs, kind) {
					errs.add("ISO/IEC 23009-1 §5.3.7.2 / RFC 6381: %s/%s @codecs %q is not a %s codec string", p.Id, id, codecs, kind)
				}
				if kind == "video" {
					if rep.Width == 0 || rep.Height == 0 {
						errs.add("ISO/IEC 23009-1 §5.3.7.2: %s/%s video without @width/@height", p.Id, id)
					}
					fr := rep.FrameRate
					if fr == "" {
						fr = as.FrameRate
					}
					if f, ok := frameRate(string(fr)); !ok || f <= 0 || f > maxFrameRate {
						errs.add("ISO/IEC 23009-1 §5.3.12.2: %s/%s @frameRate %q is not a frame rate (integer or N/D fps ≤ %d)", p.Id, id, fr, maxFrameRate)
					}
				} else if rep.AudioSamplingRate == nil && as.AudioSamplingRate == nil {
					errs.add("ISO/IEC 23009-1 §5.3.7.2: %s/%s audio without @audioSamplingRate", p.Id, id)
				}
				st := rep.SegmentTemplate
				if st == nil {
					st = as.SegmentTemplate
				}
				if st == nil {
					errs.add("ISO/IEC 23009-1 §5.3.9.4: %s/%s has no SegmentTemplate", p.Id, id)
					continue
				}
				inits[id] = st.Initialization
				segs, e := expand(p.Id, id, st, pStart)
				errs = append(errs, e...)
				if dynamic {
					ato := float64(st.AvailabilityTimeOffset)
					// Against the longest listed segment: one ATO serves
					// every segment, and a session's first may be short
					// (the ingest asks for an early key frame).
					var maxD time.Duration
					for _, s := range segs {
						maxD = max(maxD, s.duration())
					}
					// DASH-IF IOP v5 low latency: chunked delivery is
					// announced by 0 < ATO < segment duration and
					// availabilityTimeComplete="false".
					if ato <= 0 || (len(segs) > 0 && time.Duration(ato*float64(time.Second)) >= maxD) ||
						st.AvailabilityTimeComplete == nil || *st.AvailabilityTimeComplete {
						errs.add("DASH-IF IOP v5 (low latency): %s/%s availabilityTimeOffset %v (want 0 < ATO < %v) and availabilityTimeComplete=false", p.Id, id, ato, maxD)
					}
					segs = available(segs, ast, now, time.Duration(ato*float64(time.Second)), tsbd)
				}
				var expired func(listed) bool
				if dynamic {
					// Checked as each segment is fetched: the check
					// takes seconds, and a segment near the window's
					// start may leave it meanwhile (404 then is right).
					expired = func(s listed) bool {
						at := now.Add(time.Since(began))
						return tsbd > 0 && at.After(ast.Add(s.start()+s.duration()).Add(tsbd-time.Second))
					}
				}
				errs = append(errs, fetchSegments(ctx, mpdURL, p.Id, id, st, segs, expired, get)...)
				// §5.3.3.2 @segmentAlignment: segments of one number
				// cover the same time in every Representation.
				if as.SegmentAlignment {
					for _, s := range segs {
						if o, ok := byNumber[s.number]; ok {
							if d := o.start() - s.start(); d > 20*time.Millisecond || d < -20*time.Millisecond {
								errs.add("ISO/IEC 23009-1 §5.3.3.2 (segmentAlignment): %s segment %d starts at %v in %s but %v in %s",
									p.Id, s.number, o.start(), alignedTo, s.start(), id)
							}
						} else if alignedTo == "" || alignedTo == id {
							byNumber[s.number] = s
						}
					}
					if alignedTo == "" && len(segs) > 0 {
						alignedTo = id
					}
				}
			}
		}
		// ISO/IEC 23009-1 §5.3.2: a Period is where the content changes
		// (SPECS.md § LL-DASH as stock players read it: players handle a
		// Period boundary worst of all). One that keeps every
		// Representation and its init segment had no reason to begin.
		if prevInits != nil && sameInits(prevInits, inits) {
			errs.add("ISO/IEC 23009-1 §5.3.2: Period %s keeps every Representation and init segment of the Period before it: a Period boundary where nothing changed", p.Id)
		}
		prevInits = inits
	}
	return errs
}

func sameInits(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// expand lists the segments of a SegmentTemplate's SegmentTimeline
// (ISO/IEC 23009-1 §5.3.9.6), numbered from @startNumber.
func expand(period, id string, st *mpd.SegmentTemplateType, pStart time.Duration) ([]listed, Errors) {
	var errs Errors
	if st.SegmentTimeline == nil {
		errs.add("ISO/IEC 23009-1 §5.3.9.6: %s/%s SegmentTemplate without SegmentTimeline", period, id)
		return nil, errs
	}
	ts := st.GetTimescale()
	var pto uint64
	if st.PresentationTimeOffset != nil {
		pto = *st.PresentationTimeOffset
	}
	num := uint64(1)
	if st.StartNumber != nil {
		num = uint64(*st.StartNumber)
	}
	var out []listed
	var next uint64
	for i, s := range st.SegmentTimeline.S {
		t := next
		if s.T != nil {
			if i > 0 && *s.T < next {
				errs.add("ISO/IEC 23009-1 §5.3.9.6: %s/%s S@t %d overlaps the segment before it (ends %d)", period, id, *s.T, next)
			}
			t = *s.T
		} else if i == 0 {
			t = pto
		}
		if s.D == 0 {
			errs.add("ISO/IEC 23009-1 §5.3.9.6: %s/%s S@d is 0", period, id)
			return out, errs
		}
		if s.R < 0 {
			errs.add("ISO/IEC 23009-1 §5.3.9.6: %s/%s S@r=-1 is not expected from the node", period, id)
			return out, errs
		}
		if i == 0 && t+s.D <= pto {
			// A first segment may begin before the Period (its samples
			// before @presentationTimeOffset are not presented), but not
			// end there.
			errs.add("ISO/IEC 23009-1 §5.3.9.6: %s/%s first segment [%d, %d) lies before @presentationTimeOffset %d", period, id, t, t+s.D, pto)
		}
		for r := 0; r <= s.R; r++ {
			out = append(out, listed{number: num, t: t, d: s.D, ts: ts, pto: pto, periodAt: pStart})
			num++
			t += s.D
		}
		next = t
	}
	return out, errs
}

// available keeps the segments of a dynamic MPD that are available at
// now (ISO/IEC 23009-1 §5.3.9.5.3: from availabilityStartTime + end of
// the segment − availabilityTimeOffset, until timeShiftBufferDepth after
// its end), leaving out those within a second of leaving the window.
func available(segs []listed, ast, now time.Time, ato, tsbd time.Duration) []listed {
	var out []listed
	for _, s := range segs {
		end := ast.Add(s.start() + s.duration())
		if now.Before(end.Add(-ato)) {
			continue
		}
		if tsbd > 0 && now.After(end.Add(tsbd-time.Second)) {
			continue
		}
		out = append(out, s)
	}
	return out
}

// fetchSegments gets the init segment and each listed segment: each must
// be 200 and start at the time the timeline gives it ($Number$ and S@t
// agree with the tfdt), within two frames of composition offset.
func fetchSegments(ctx context.Context, base, period, id string, st *mpd.SegmentTemplateType, segs []listed, expired func(listed) bool, get Getter) Errors {
	var errs Errors
	if st.Initialization == "" {
		errs.add("ISO/IEC 23009-1 §5.3.9.4: %s/%s SegmentTemplate@initialization missing", period, id)
	} else if u, err := resolve(base, st.Initialization); err != nil {
		errs.add("%s/%s initialization %q: %v", period, id, st.Initialization, err)
	} else if code, _, err := get(ctx, u); err != nil || code != 200 {
		errs.add("ISO/IEC 23009-1 §5.3.9.4: %s/%s init segment %s: %d %v", period, id, u, code, err)
	}
	for _, s := range segs {
		if expired != nil && expired(s) {
			continue
		}
		ref := replaceNumber(st.Media, s.number, id)
		u, err := resolve(base, ref)
		if err != nil {
			errs.add("%s/%s media %q: %v", period, id, ref, err)
			continue
		}
		code, b, err := get(ctx, u)
		if err != nil || code != 200 {
			errs.add("SPECS.md § LL-DASH (every segment the MPD implies is served): %s/%s segment %d (t=%d) %s: %d %v", period, id, s.number, s.t, u, code, err)
			continue
		}
		dec, ok := tfdt(b)
		if !ok {
			errs.add("ISO/IEC 14496-12 §8.8.12: %s/%s segment %d has no tfdt", period, id, s.number)
			continue
		}
		if diff := math.Abs(float64(dec) - float64(s.t)); diff > 0.07*float64(s.ts) {
			errs.add("ISO/IEC 23009-1 §5.3.9.6: %s/%s segment %d is listed at t=%d but its tfdt is %d: $Number$ and the timeline disagree", period, id, s.number, s.t, dec)
		}
	}
	return errs
}

// replaceNumber fills a SegmentTemplate@media (ISO/IEC 23009-1 §5.3.9.4.4
// identifiers $Number$ and $RepresentationID$).
func replaceNumber(tmpl string, n uint64, id string) string {
	return strings.NewReplacer("$Number$", strconv.FormatUint(n, 10), "$RepresentationID$", id, "$$", "$").Replace(tmpl)
}
