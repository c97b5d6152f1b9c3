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
