package api_test

import (
	"encoding/json"
	"errors"
	"net/url"
	"testing"

	"github.com/edgenode/edgenode/internal/store"
	"github.com/edgenode/edgenode/node/api"
)

// Request decoding must never panic, must refuse with ErrBadRequest (a 400,
// never a 500), and what it accepts must be valid and survive a round trip.
// Seeds: testdata/fuzz/<Target>/ plus the f.Add calls.

func FuzzDecodeCreate(f *testing.F) {
	for _, s := range []string{`{"name":"demo"}`, `{"name":"a","active":false}`, `{"name":5}`, `[]`, `{"name":"\u0000"}`, `{"name":"x"} x`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := api.DecodeCreate(body)
		if err != nil {
			if !errors.Is(err, api.ErrBadRequest) {
				t.Fatalf("error %v is not ErrBadRequest", err)
			}
			return
		}
		if err := store.ValidateName(req.Name); err != nil {
			t.Fatalf("accepted invalid name %q: %v", req.Name, err)
		}
		again, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		req2, err := api.DecodeCreate(again)
		if err != nil || req2.Name != req.Name || (req2.Active == nil) != (req.Active == nil) || (req.Active != nil && *req.Active != *req2.Active) {
			t.Fatalf("round trip %s → %+v, %v; want %+v", again, req2, err, req)
		}
	})
}

func FuzzDecodePatch(f *testing.F) {
	for _, s := range []string{`{"active":false}`, `{"name":"n"}`, `{"rotate_key":true}`, `{}`, `{"active":null}`, `{"a":1,"b":2}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := api.DecodePatch(body)
		if err != nil {
			if !errors.Is(err, api.ErrBadRequest) {
				t.Fatalf("error %v is not ErrBadRequest", err)
			}
			return
		}
		if req.Name != nil {
			if err := store.ValidateName(*req.Name); err != nil {
				t.Fatalf("accepted invalid name %q", *req.Name)
			}
		}
		again, _ := json.Marshal(req)
		if _, err := api.DecodePatch(again); err != nil && !(req.Name == nil && req.Active == nil && !req.RotateKey) {
			t.Fatalf("round trip of %+v (%s): %v", req, again, err)
		}
	})
}

func FuzzParseListQuery(f *testing.F) {
	for _, s := range []string{"", "limit=10", "after=5&limit=1000", "limit=0", "after=-1", "page=2", "limit=1e3", "after=18446744073709551615"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		_, limit, err := api.ParseListQuery(q)
		if err != nil {
			if !errors.Is(err, api.ErrBadRequest) {
				t.Fatalf("error %v is not ErrBadRequest", err)
			}
			return
		}
		if limit < 1 || limit > api.MaxLimit {
			t.Fatalf("limit %d out of range for %q", limit, raw)
		}
	})
}
