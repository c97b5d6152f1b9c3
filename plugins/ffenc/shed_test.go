package ffenc

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/media"
	"github.com/edgenode/edgenode/internal/mediatest"
	pb "github.com/edgenode/edgenode/plugins/proto"
	"github.com/edgenode/edgenode/plugins/shared"
)

// shedStream is a paceStream (its Recv) that records the outputs' PTS and
// the Health states.
type shedStream struct {
	paceStream
	video  map[int32][]int64 // rendition → output PTS
	aac    int
	states []string
}

func (s *shedStream) Send(m *pb.TranscodeOut) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h := m.GetHealth(); h != nil {
		s.states = append(s.states, h.GetState())
	}
	if o := m.GetOutput(); o != nil {
		if o.GetRendition() < 0 {
			s.aac++
		} else {
			s.video[o.GetRendition()] = append(s.video[o.GetRendition()], o.GetAu().GetPts())
		}
	}
	return nil
}

// TestLadderBehindRealTimeShedsWholeGOPs: a ladder held to half of real
// time (ffmpeg's realtime filter on each rung, as an overloaded box holds
// x264), fed in real time, leaves out whole GOPs instead of falling
// further behind: every rung has fewer frames than the source, but each
// GOP it has is the source's whole GOP (it starts at a source keyframe
// and has every frame up to the next), it takes GOPs again after leaving
// some out (it does not shed for good), the plugin reports "shedding",
// and the AAC has all its audio.
func TestLadderBehindRealTimeShedsWholeGOPs(t *testing.T) {
	needFFmpeg(t)
	const secs = 12
	gen := mediatest.Generate(t, mediatest.Options{Pieces: []mediatest.Piece{{Width: 640, Height: 360, Duration: secs * time.Second}}})
	var src []*media.AccessUnit
	var opus int
	for _, smp := range gen.Samples {
		src = append(src, smp.AU)
		if smp.AU.Codec == media.CodecOpus {
			opus++
		}
	}
	// gop maps each source frame's PTS to the PTS of its GOP's keyframe;
	// size counts the frames of each GOP.
	gop, size := map[int64]int64{}, map[int64]int{}
	var key int64
	for _, au := range gen.Video() {
		if au.Key {
			key = au.PTS
		}
		gop[au.PTS] = key
		size[key]++
	}

	slow := X264()
	slow.Scale = func(w, h int) string { return SoftwareScale(w, h) + ",realtime=speed=0.5" }
	p := &Plugin{Profile: slow}
	cfg := &pb.Config{
		Renditions: []*pb.Rendition{{Name: "180p", Width: 320, Height: 180, Bitrate: 200000}},
		Audio:      true, AudioSampleRate: 48000, AudioChannels: 2,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := &shedStream{paceStream: paceStream{in: make(chan *pb.AccessUnit, 4096)}, video: map[int32][]int64{}}
	go func() {
		defer close(s.in)
		start := time.Now()
		for _, au := range src {
			a := shared.FromMedia(au)
			at := start.Add(time.Duration(a.GetDts()) * time.Second / time.Duration(au.Codec.ClockRate()))
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Until(at)):
			}
			s.in <- a
		}
	}()
	if err := p.Transcode(ctx, cfg, s); err != nil {
		t.Fatal(err)
	}

	out := s.video[0]
	got := map[int64]int{}
	for _, pts := range out {
		k, ok := gop[pts]
		if !ok {
			t.Fatalf("output PTS %d is no source frame's", pts)
		}
		got[k]++
	}
	keys := slices.Sorted(func(yield func(int64) bool) {
		for k := range got {
			if !yield(k) {
				return
			}
		}
	})
	t.Logf("source: %d GOPs, %d frames; 180p: %d frames in GOPs %v; states %v", len(size), len(gen.Video()), len(out), keys, s.states)
	if len(out) >= len(gen.Video()) {
		t.Errorf("the rung has all %d frames: nothing was shed at half of real time", len(out))
	}
	// Recovery: some GOP after the first one left out is encoded.
	var all []int64
	for k := range size {
		all = append(all, k)
	}
	slices.Sort(all)
	firstShed := -1
	for i, k := range all {
		if got[k] == 0 {
			firstShed = i
			break
		}
	}
	if firstShed >= 0 && !slices.ContainsFunc(all[firstShed:], func(k int64) bool { return got[k] > 0 }) {
		t.Errorf("no GOP encoded after the first one left out (GOP %d of %d): the ladder shed for good", firstShed, len(all))
	}
	for _, k := range keys {
		if got[k] != size[k] {
			t.Errorf("GOP at %d: %d of its %d frames, want the whole GOP or none", k, got[k], size[k])
		}
	}
	if !slices.Contains(s.states, shared.StateShedding) {
		t.Errorf("health states %v, want %q while behind", s.states, shared.StateShedding)
	}
	// Opus 20 ms frames against AAC's 21.33 ms: all of it, but for the
	// encoder's priming and its partial last frame.
	if want := opus * 960 / 1024; s.aac < want-3 {
		t.Errorf("AAC: %d frames, want ~%d (the source's %d Opus frames)", s.aac, want, opus)
	}
}
