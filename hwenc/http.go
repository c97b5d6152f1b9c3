package hwenc

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/edgenode/edgenode/internal/media"
)

// RegisterRoutes adds the transcoder's API:
//
//	GET    /api/encoders                 Status (choice, probes, streams)
//	GET    /api/streams/{id}/ladder      the ladder stream id uses
//	PUT    /api/streams/{id}/ladder      override it (JSON list of renditions)
//	DELETE /api/streams/{id}/ladder      back to the node default
//
// Authentication, if any, is the caller's middleware.
func (m *Manager) RegisterRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/encoders", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, m.Status())
	})
	mux.HandleFunc("GET /api/streams/{id}/ladder", func(w http.ResponseWriter, r *http.Request) {
		id, ok := streamID(w, r)
		if ok {
			writeJSON(w, http.StatusOK, m.Ladder(id))
		}
	})
	mux.HandleFunc("PUT /api/streams/{id}/ladder", func(w http.ResponseWriter, r *http.Request) {
		id, ok := streamID(w, r)
		if !ok {
			return
		}
		var l []media.Rendition
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			http.Error(w, "ladder: "+err.Error(), http.StatusBadRequest)
			return
		}
		if l == nil {
			l = []media.Rendition{}
		}
		if err := m.SetLadder(id, l); err != nil {
			code := http.StatusInternalServerError
			if errors.Is(err, ErrBadLadder) {
				code = http.StatusBadRequest
			}
			http.Error(w, err.Error(), code)
			return
		}
		writeJSON(w, http.StatusOK, m.Ladder(id))
	})
	mux.HandleFunc("DELETE /api/streams/{id}/ladder", func(w http.ResponseWriter, r *http.Request) {
		id, ok := streamID(w, r)
		if !ok {
			return
		}
		_ = m.SetLadder(id, nil)
		w.WriteHeader(http.StatusNoContent)
	})
}

func streamID(w http.ResponseWriter, r *http.Request) (uint64, bool) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		http.Error(w, "stream id must be an unsigned integer", http.StatusBadRequest)
		return 0, false
	}
	return id, true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
