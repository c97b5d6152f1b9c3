package ingest

import (
	_ "embed"
	"errors"
	"net/http"
)

//go:embed golive.html
var goLivePage []byte

// handleLive serves the Go Live page (/live/<id>_<key>): camera and
// microphone pickers, preview, Go Live / Stop, status and live stats. The
// page publishes to /whip/<id>_<key> with RTCPeerConnection + fetch and
// forces H.264 with setCodecPreferences.
func (s *Server) handleLive(w http.ResponseWriter, r *http.Request) {
	if _, err := s.authorize(r.PathValue("path"), r); err != nil {
		status := statusOf(err)
		if !errors.Is(err, ErrForbidden) {
			s.log.Error("Go Live page", "err", err)
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(err.Error() + "\n"))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(goLivePage)
}
