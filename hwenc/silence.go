package hwenc

import (
	"time"

	"github.com/edgenode/edgenode/internal/media"
)

// silentAAC is one raw AAC-LC frame (no ADTS header) of digital silence
// for 2 channels (channel_configuration 2: one CPE), 1024 samples; at
// 48 kHz it lasts 21.33 ms. The plugins always encode 2 channels
// (plugins/ffenc Args: -ac 2), which is also what the AAC tracks declare.
//
// Derived with Debian's ffmpeg 5.1.9 native encoder:
//
//	ffmpeg -f lavfi -i anullsrc=r=48000:cl=stereo -t 1 -c:a aac -b:a 128k -f adts sil.aac
//
// and taking the payload of any frame after the first (the first carries
// the encoder's fill element): every steady-state frame is these 6 bytes.
// Decoding is stateless for an all-zero spectrum, so the frame can follow
// any other frame. TestSilentAACDecodesToZeros decodes it with ffmpeg.
var silentAAC = []byte{0x21, 0x10, 0x04, 0x60, 0x8c, 0x1c}

// aacFrame is the duration of one AAC-LC frame in 48 kHz ticks.
const aacFrame = 1024

// silenceAfter: the AAC timeline is filled with silence once the encoder
// has been unable to deliver audio (failed, waiting for its retry, started
// without output yet) for this long since the last real frame. The grace
// lets a session that is being replaced drain its last frames first.
const silenceAfter = 250 * time.Millisecond

// A (re)started encoder first works off the backlog since its start
// (ffmpeg takes over a second to start on a loaded box): its frames are
// behind the silence already written and dropped until they pass it.
// For at most catchUpMax after its first frame, silence goes on meanwhile,
// catchUpSlack behind the source, so that the AAC rendition's edge keeps
// moving (a player ~2 s behind the live edge would run out of audio
// otherwise) while the encoder, at its normal lag (< catchUpSlack), can
// overtake it and take over.
const (
	catchUpMax   = 5 * time.Second
	catchUpSlack = 48000 / 2 // 500 ms in 48 kHz ticks
)

// silenceTarget says up to where (48 kHz ticks) silence should stand in
// for the encoder now that the source's audio reached srcEnd. w.mu is
// held.
func (w *worker) silenceTarget(srcEnd int64) (int64, bool) {
	if !w.audioSet {
		return 0, false
	}
	ts := w.ts
	if ts == nil || ts.ended || ts.firstAAC.IsZero() {
		// Down, waiting for its retry, or started without output yet.
		return srcEnd, time.Since(w.lastReal) > silenceAfter
	}
	if ts.aacEnd <= w.lastAudio+aacFrame/2 && time.Since(ts.firstAAC) < catchUpMax {
		return srcEnd - catchUpSlack, true // catching up
	}
	return 0, false
}

// maxFill bounds the silence written into one hole: a longer hole in the
// source itself is not papered over.
const maxFill = 10 * 48000

// writeAudioLocked hands one AAC frame to every rung's audio track and to
// the AAC-only rendition, and advances the timeline. w.mu is held.
func (w *worker) writeAudioLocked(au *media.AccessUnit) {
	w.lastAudio, w.audioSet = au.PTS, true
	if !w.anchor.t.IsZero() {
		au.Time = w.anchor.t.Add(time.Duration(au.PTS-w.anchor.pts) * time.Second / 48000)
	}
	for _, ro := range w.outs {
		ro.pub.WriteAU(1, au)
	}
	if w.audioOut != nil {
		w.audioOut.WriteAU(0, au)
	}
}

// fillSilenceLocked writes silent frames after the last AAC frame while
// a whole frame fits before end (48 kHz ticks), at most maxFill. It
// returns how many it wrote. w.mu is held.
func (w *worker) fillSilenceLocked(end int64) int {
	if !w.audioSet || w.session == nil {
		return 0
	}
	n := 0
	for next := w.lastAudio + aacFrame; next+aacFrame <= end && n*aacFrame < maxFill; next += aacFrame {
		w.writeAudioLocked(&media.AccessUnit{Codec: media.CodecAAC, PTS: next, DTS: next, Key: true, Payload: [][]byte{silentAAC}})
		n++
	}
	w.silent += n
	return n
}
