package hls

import (
	"context"
	"time"

	"github.com/edgenode/edgenode/internal/hub"
	"github.com/edgenode/edgenode/origin/cmaf"
)

// MaxAudioLag bounds how far a video playlist is held back for its audio
// group. The transcoder's AAC rendition is the audio of every variant, the
// source's included, and its parts come the encoder's delay after the
// source video's (80–200 ms, up to 0.45 s on a loaded 2-core box; while a
// restarted plugin catches up, hwenc's silence runs 500 ms behind the
// source). An AAC edge further behind than this is an encoder that is
// gone, and the video is not held for it.
const MaxAudioLag = time.Second

// MaxRungLag: the source's video playlist is also held to the rungs' (see
// rungs), but only to a rung within this of it; one further behind is an
// encoder that is gone or shedding, and holding the source for it paused
// the source's edge (a stall on the source level at a kill -9 of the
// plugin).
const MaxRungLag = 500 * time.Millisecond

// RFC 8216bis App. B.1: the renditions of a stream are updated in sync.
// A player sets its live edge by the video playlist and plays video only
// with its audio: a source video advertised ahead of its audio group let
// hls.js (and Shaka) sit within the encoder's delay of the audio's edge
// and run the audio buffer dry (node/transcode_e2e_test.go: a stall on a
// switch to the source level, audio buffer 0.5 s against video 1.5 s).
// So a video playlist lists only the parts its audio group already
// covers, and a blocking reload of it waits for both.

// audioGroup returns the track of the stream's AAC rendition that the
// video playlist of rendition self must keep in step with, or nil. Only
// the source's video comes from another producer than its audio group
// (the publisher, not the encoder); the rungs come out of the same encoder
// as the AAC.
func (s *Server) audioGroup(st *cmaf.Stream, self string, kind cmaf.Kind) *cmaf.Track {
	if kind != cmaf.Video || s.audioRendition == "" || self != hub.Source {
		return nil
	}
	rd, ok := st.Rendition(s.audioRendition)
	if !ok {
		return nil
	}
	return rd.Track(cmaf.Audio)
}

// RFC 8216bis App. B.1 between variants: a player switching from the
// source to a rung (hls.js's smooth nextLevel switch) flushes what it has
// of the source from the next fragment on and loads the rung's; the rungs
// come out of the ladder's encoder its delay after the source, so with
// the source listed ahead of them the rung's fragment at the flush point
// was not there yet and hls.js skipped it (a one-segment video hole and
// a stall, node/transcode_e2e_test.go). So the source lists only what the
// rungs that keep up have too.

// rungs returns the video tracks of the stream's rungs that the source's
// video playlist keeps in step with (nil for any other playlist); rungUntil
// and waitRungs pass over those ended, without a part or too far behind.
func (s *Server) rungs(st *cmaf.Stream, self string, kind cmaf.Kind) []*cmaf.Track {
	if kind != cmaf.Video || self != hub.Source {
		return nil
	}
	var out []*cmaf.Track
	for _, rd := range st.Renditions() {
		if rd.Name == hub.Source || rd.Name == s.audioRendition {
			continue
		}
		if t := rd.Track(cmaf.Video); t != nil {
			out = append(out, t)
		}
	}
	return out
}

// rungSnapshots returns the current snapshot of each rung.
func rungSnapshots(rungs []*cmaf.Track) []cmaf.Snapshot {
	out := make([]cmaf.Snapshot, len(rungs))
	for i, t := range rungs {
		out[i] = t.Snapshot()
	}
	return out
}

// rungUntil lowers until to the edge of the slowest rung within
// MaxRungLag of vEdge.
func rungUntil(until, vEdge time.Time, rungs []cmaf.Snapshot) time.Time {
	for i := range rungs {
		if rungs[i].Ended {
			continue
		}
		if e, ok := edge(&rungs[i]); ok && e.Before(until) && !e.Before(vEdge.Add(-MaxRungLag)) {
			until = e
		}
	}
	return until
}

// edge returns the wall-clock end of a snapshot's last part.
func edge(snap *cmaf.Snapshot) (time.Time, bool) {
	for i := len(snap.Segments) - 1; i >= 0; i-- {
		sg := &snap.Segments[i]
		if len(sg.Parts) == 0 {
			continue
		}
		end := sg.Wall
		for _, p := range sg.Parts {
			end = end.Add(p.Duration)
		}
		return end, true
	}
	return time.Time{}, false
}

// partEnd returns the wall-clock end of part (msn, part) of snap; part
// past a segment's last part is part 0 of the next (§6.2.5.2), part < 0
// the whole segment.
func partEnd(snap *cmaf.Snapshot, msn uint64, part int) (time.Time, bool) {
	for i := range snap.Segments {
		sg := &snap.Segments[i]
		if sg.MSN != msn {
			continue
		}
		if part < 0 {
			part = len(sg.Parts) - 1
		}
		if part >= len(sg.Parts) {
			if i+1 < len(snap.Segments) && len(snap.Segments[i+1].Parts) > 0 {
				return snap.Segments[i+1].Wall.Add(snap.Segments[i+1].Parts[0].Duration), true
			}
			return time.Time{}, false
		}
		end := sg.Wall
		for _, p := range sg.Parts[:part+1] {
			end = end.Add(p.Duration)
		}
		return end, true
	}
	return time.Time{}, false
}

// listUntil returns the wall-clock time up to which a video playlist
// whose media ends at vEdge lists parts: where its audio group ends, but
// never more than MaxAudioLag behind vEdge (an encoder that is gone holds
// the video back by that much, not for ever), and all of it once the
// audio has ended. Both edges only move forward, so the bound does too:
// a part once listed stays listed.
func listUntil(vEdge time.Time, audio *cmaf.Snapshot) time.Time {
	if audio.Ended {
		return vEdge
	}
	until := vEdge.Add(-MaxAudioLag)
	if e, ok := edge(audio); ok && e.After(until) {
		until = e
	}
	return until
}

// waitAudio blocks until the audio group covers until, for at most
// MaxAudioLag, or until ctx ends.
func waitAudio(ctx context.Context, a *cmaf.Track, until time.Time) {
	ctx, cancel := context.WithTimeout(ctx, MaxAudioLag)
	defer cancel()
	for {
		ch := a.Changed()
		as := a.Snapshot()
		if e, ok := edge(&as); as.Ended || ok && !e.Before(until) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-ch:
		}
	}
}

// waitRungs blocks until every rung within MaxRungLag of until covers
// it, for at most MaxRungLag, or until ctx ends.
func waitRungs(ctx context.Context, rungs []*cmaf.Track, until time.Time) {
	ctx, cancel := context.WithTimeout(ctx, MaxRungLag)
	defer cancel()
	for _, t := range rungs {
		for {
			ch := t.Changed()
			snap := t.Snapshot()
			if e, ok := edge(&snap); snap.Ended || !ok || !e.Before(until) || e.Before(until.Add(-MaxRungLag)) {
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-ch:
			}
		}
	}
}

// syncSnapshot trims a video snapshot to the parts its audio group (and,
// for the source, the rungs that keep up: rungUntil) covers: a part is
// listed once they reach its end. The first part not listed becomes the
// preload hint.
func syncSnapshot(snap, audio cmaf.Snapshot, rungs ...cmaf.Snapshot) cmaf.Snapshot {
	vEdge, ok := edge(&snap)
	if !ok || snap.Ended {
		return snap
	}
	aEdge := rungUntil(listUntil(vEdge, &audio), vEdge, rungs)
	if !aEdge.Before(vEdge) {
		return snap
	}
	for i := range snap.Segments {
		sg := snap.Segments[i]
		end := sg.Wall
		for j, p := range sg.Parts {
			end = end.Add(p.Duration)
			if !end.After(aEdge) {
				continue
			}
			// Part j of segment i is not covered yet: list up to j-1.
			return trimSnapshot(snap, i, j)
		}
	}
	return snap
}
