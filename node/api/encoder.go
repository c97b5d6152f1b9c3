package api

import "github.com/edgenode/edgenode/internal/media"

// EncoderSource reports the transcoder's view of a stream for the
// "encoder" object of GET /streaming/streams/{id}. The node implements it
// over the hwenc Manager; the API does not import hwenc (data flows one
// way: the node passes the concrete type in).
type EncoderSource interface {
	// StreamEncoder returns the encoder state for stream id. It is always
	// available once the encoders have probed (the choice and every
	// rejection reason apply to streams that are not live too); ok is
	// false only when no encoder information exists at all.
	StreamEncoder(id uint64) (enc Encoder, ok bool)
}

// Encoder is the "encoder" object of a stream: which plugin transcodes it,
// why that one, why the others cannot, and the ladder in use.
type Encoder struct {
	// Mode is the configured encoders.mode (auto, x264, vaapi, nvenc, off).
	Mode string `json:"mode"`
	// Chosen is the plugin the node chose ("" when none: source only,
	// Opus audio).
	Chosen string `json:"chosen"`
	// Why explains the choice.
	Why string `json:"why"`
	// Plugin currently encoding this stream ("" when it is not live or
	// no plugin runs right now); it differs from Chosen after a mid-stream
	// fallback (see FellBackFrom).
	Plugin       string `json:"plugin"`
	FellBackFrom string `json:"fell_back_from,omitempty"`
	// PID of the plugin process encoding this stream (0 when none).
	PID       int    `json:"pid,omitempty"`
	Restarts  int    `json:"restarts"`
	LastError string `json:"last_error,omitempty"`
	// State is the running session's own: "running", or "shedding"
	// while the encoder is behind real time and leaves out whole GOPs
	// (the rungs then have gap segments); Speed is media time encoded per
	// wall time over the last second.
	State string  `json:"state,omitempty"`
	Speed float64 `json:"speed,omitempty"`
	// Live is true while the stream is being transcoded.
	Live bool `json:"live"`
	// Ladder is the ladder the stream uses (its override or the node
	// default); Renditions the rungs being produced now (rungs taller than
	// the publisher's picture are left out).
	Ladder     []media.Rendition `json:"ladder"`
	Renditions []media.Rendition `json:"renditions"`
	// Plugins lists every plugin probed and why it is unavailable.
	Plugins []EncoderPlugin `json:"plugins"`
}

// EncoderPlugin is one plugin's probe result.
type EncoderPlugin struct {
	Name      string `json:"name"`
	Available bool   `json:"available"`
	Hardware  bool   `json:"hardware"`
	Reason    string `json:"reason,omitempty"`
}

// SetEncoderSource sets (or, with nil, clears) where the "encoder" object
// of a stream comes from. Safe to call while serving.
func (a *API) SetEncoderSource(es EncoderSource) {
	a.mu.Lock()
	a.es = es
	a.mu.Unlock()
}

// encoder returns the encoder object of stream id, or nil.
func (a *API) encoder(id uint64) *Encoder {
	a.mu.RLock()
	es := a.es
	a.mu.RUnlock()
	if es == nil {
		return nil
	}
	e, ok := es.StreamEncoder(id)
	if !ok {
		return nil
	}
	return &e
}
