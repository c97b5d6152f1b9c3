package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/edgenode/edgenode/internal/store"
)

// CreateRequest is the body of POST /streaming/streams.
type CreateRequest struct {
	// Name is required and unique among the node's streams.
	Name string `json:"name"`
	// Active defaults to true.
	Active *bool `json:"active,omitempty"`
}

// PatchRequest is the body of PATCH /streaming/streams/{id}; absent fields
// are left as they are.
type PatchRequest struct {
	Name   *string `json:"name,omitempty"`
	Active *bool   `json:"active,omitempty"`
	// RotateKey gives the stream a new secret key; a live publisher using
	// the old one is dropped.
	RotateKey bool `json:"rotate_key,omitempty"`
}

// Paging limits of GET /streaming/streams.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// field decodes one JSON member.
type field func(raw json.RawMessage) error

// decodeObject decodes body as one JSON object whose members must all be in
// fields; every problem is an ErrBadRequest naming what is wrong.
func decodeObject(body []byte, fields map[string]field) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return newError(ErrBadRequest, "request body is empty; expected a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var members map[string]json.RawMessage
	if err := dec.Decode(&members); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return newError(ErrBadRequest, fmt.Sprintf("invalid JSON at byte %d: %v", se.Offset, se))
		case errors.As(err, &te):
			return newError(ErrBadRequest, "request body must be a JSON object, not "+te.Value)
		case errors.Is(err, io.ErrUnexpectedEOF):
			return newError(ErrBadRequest, "invalid JSON: unexpected end of body")
		}
		return newError(ErrBadRequest, "invalid JSON: "+err.Error())
	}
	if members == nil {
		return newError(ErrBadRequest, "request body must be a JSON object, not null")
	}
	if _, err := dec.Token(); err != io.EOF {
		return newError(ErrBadRequest, "invalid JSON: unexpected data after the object")
	}
	keys := make([]string, 0, len(members))
	for k := range members {
		keys = append(keys, k)
	}
	slices.Sort(keys) // report the same field first every time
	for _, k := range keys {
		f, ok := fields[k]
		if !ok {
			return newError(ErrBadRequest, fmt.Sprintf("unknown field '%s'", k))
		}
		if err := f(members[k]); err != nil {
			return err
		}
	}
	return nil
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

func stringField(name string, dst **string) field {
	return func(raw json.RawMessage) error {
		var s string
		if isNull(raw) || json.Unmarshal(raw, &s) != nil {
			return newError(ErrBadRequest, fmt.Sprintf("'%s' must be a string", name))
		}
		*dst = &s
		return nil
	}
}

func boolField(name string, dst **bool) field {
	return func(raw json.RawMessage) error {
		var b bool
		if isNull(raw) || json.Unmarshal(raw, &b) != nil {
			return newError(ErrBadRequest, fmt.Sprintf("'%s' must be true or false", name))
		}
		*dst = &b
		return nil
	}
}

func checkName(name string) error {
	if p := store.NameProblem(name); p != "" {
		return newError(ErrBadRequest, "'name' "+p)
	}
	return nil
}

// DecodeCreate decodes and checks a create request body.
func DecodeCreate(body []byte) (CreateRequest, error) {
	var name *string
	var req CreateRequest
	err := decodeObject(body, map[string]field{
		"name":   stringField("name", &name),
		"active": boolField("active", &req.Active),
	})
	if err != nil {
		return CreateRequest{}, err
	}
	if name == nil {
		return CreateRequest{}, newError(ErrBadRequest, "'name' is required")
	}
	if err := checkName(*name); err != nil {
		return CreateRequest{}, err
	}
	req.Name = *name
	return req, nil
}

// DecodePatch decodes and checks a patch request body; it must change
// something.
func DecodePatch(body []byte) (PatchRequest, error) {
	var req PatchRequest
	var rotate *bool
	err := decodeObject(body, map[string]field{
		"name":       stringField("name", &req.Name),
		"active":     boolField("active", &req.Active),
		"rotate_key": boolField("rotate_key", &rotate),
	})
	if err != nil {
		return PatchRequest{}, err
	}
	if rotate != nil {
		req.RotateKey = *rotate
	}
	if req.Name == nil && req.Active == nil && rotate == nil {
		return PatchRequest{}, newError(ErrBadRequest, "request body must set at least one of 'name', 'active', 'rotate_key'")
	}
	if req.Name != nil {
		if err := checkName(*req.Name); err != nil {
			return PatchRequest{}, err
		}
	}
	return req, nil
}

// ParseListQuery reads `after` (a stream id, default 0 = from the start)
// and `limit` (1..MaxLimit, default DefaultLimit). Unknown parameters are
// refused so that a misspelt one does not silently list everything.
func ParseListQuery(q url.Values) (after uint64, limit int, err error) {
	for k := range q {
		if k != "after" && k != "limit" {
			return 0, 0, newError(ErrBadRequest, fmt.Sprintf("unknown query parameter '%s' (use 'after' and 'limit')", k))
		}
	}
	limit = DefaultLimit
	if v := q["limit"]; len(v) > 0 {
		n, err := strconv.Atoi(strings.TrimSpace(v[len(v)-1]))
		if err != nil || n < 1 || n > MaxLimit {
			return 0, 0, newError(ErrBadRequest, fmt.Sprintf("'limit' must be an integer 1..%d", MaxLimit))
		}
		limit = n
	}
	if v := q["after"]; len(v) > 0 {
		n, err := strconv.ParseUint(strings.TrimSpace(v[len(v)-1]), 10, 64)
		if err != nil {
			return 0, 0, newError(ErrBadRequest, "'after' must be a stream id (a non-negative integer)")
		}
		after = n
	}
	return after, limit, nil
}

// ParseID reads the {id} path segment.
func ParseID(s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil || id == 0 {
		return 0, newError(ErrBadRequest, "stream id must be a positive integer")
	}
	return id, nil
}
