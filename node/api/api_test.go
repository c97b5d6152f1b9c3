package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/edgenode/edgenode/internal/store"
	"github.com/edgenode/edgenode/internal/store/storetest"
	"github.com/edgenode/edgenode/node/api"
)

const token = "test-token-0123456789"

// kicks records Kick calls (the real ingest server is another package).
type kicks struct {
	mu  sync.Mutex
	ids []uint64
}

func (k *kicks) Kick(id uint64) bool {
	k.mu.Lock()
	k.ids = append(k.ids, id)
	k.mu.Unlock()
	return true
}
func (k *kicks) got() []uint64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.ids)
}

type env struct {
	t     *testing.T
	api   *api.API
	srv   *httptest.Server
	st    *store.Store
	kicks *kicks
	reg   *prometheus.Registry
}

func newEnv(t *testing.T) *env {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) })
	st := storetest.Open(t)
	reg := prometheus.NewRegistry()
	a, err := api.New(st, api.Options{PublicURL: "https://node.example/", Token: token, MaxBodyBytes: 1024}, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	k := &kicks{}
	a.SetPublisherControl(k)
	mux := http.NewServeMux()
	a.RegisterRoutes(mux)
	srv := httptest.NewServer(mux) // 127.0.0.1:0
	t.Cleanup(func() {
		srv.Close()
		srv.Client().CloseIdleConnections()
	})
	return &env{t: t, api: a, srv: srv, st: st, kicks: k, reg: reg}
}

func (e *env) apiSetEncoders(es api.EncoderSource) { e.api.SetEncoderSource(es) }

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (e *env) do(method, path, auth, ctype, body string) resp {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	r, err := client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp{r.StatusCode, r.Header, b}
}

func (e *env) call(method, path, body string) resp {
	ctype := ""
	if body != "" {
		ctype = "application/json"
	}
	return e.do(method, path, "APIKey "+token, ctype, body)
}

func (r resp) stream(t *testing.T) api.Stream {
	t.Helper()
	var s api.Stream
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		t.Fatalf("decode stream %s: %v", r.body, err)
	}
	return s
}

// wantError checks status, a JSON {"error":…} body and that the message
// contains every fragment.
func wantError(t *testing.T, r resp, status int, fragments ...string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d (body %s)", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("error Content-Type %q", ct)
	}
	var e map[string]string
	if err := json.Unmarshal(r.body, &e); err != nil || len(e) != 1 || e["error"] == "" {
		t.Fatalf("error body %s is not {\"error\":…} (%v)", r.body, err)
	}
	for _, f := range fragments {
		if !strings.Contains(e["error"], f) {
			t.Fatalf("error %q does not mention %q", e["error"], f)
		}
	}
}

func TestCRUD(t *testing.T) {
	e := newEnv(t)
	r := e.call("POST", "/streaming/streams", `{"name":"demo"}`)
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	s := r.stream(t)
	stored, err := e.st.Stream(s.ID)
	if err != nil {
		t.Fatal(err)
	}
	key := stored.Key
	want := api.Stream{
		ID: 1, Name: "demo", Active: true, CreatedAt: stored.CreatedAt, UpdatedAt: stored.UpdatedAt,
		PushURLWHIP:  "https://node.example/whip/1_" + key,
		HLSCMAFURL:   "https://node.example/cmaf/1/master.m3u8",
		DASHURL:      "https://node.example/cmaf/1/index.mpd",
		HLSMPEGTSURL: "https://node.example/hls/1/master.m3u8",
		PlayerURL:    "https://node.example/player/1",
		GoLiveURL:    "https://node.example/live/1_" + key,
	}
	if !s.CreatedAt.Equal(want.CreatedAt) {
		t.Fatalf("created_at %v, stored %v", s.CreatedAt, want.CreatedAt)
	}
	s.CreatedAt, s.UpdatedAt = want.CreatedAt, want.UpdatedAt
	if s != want {
		t.Fatalf("create returned\n%+v\nwant\n%+v", s, want)
	}
	if loc := r.header.Get("Location"); loc != "/streaming/streams/1" {
		t.Fatalf("Location %q", loc)
	}
	// The raw JSON has exactly the documented field names.
	var raw map[string]any
	json.Unmarshal(r.body, &raw)
	for _, k := range []string{"id", "name", "active", "created_at", "updated_at", "push_url_whip", "hls_cmaf_url", "dash_url", "hls_mpegts_url", "player_url", "golive_url"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("response lacks %q: %s", k, r.body)
		}
	}

	r = e.call("GET", "/streaming/streams/1", "")
	if r.status != 200 || r.stream(t).PushURLWHIP != want.PushURLWHIP {
		t.Fatalf("get: %d %s", r.status, r.body)
	}
	// Bearer works as well as APIKey; the scheme is case-insensitive.
	if r := e.do("GET", "/streaming/streams/1", "bearer "+token, "", ""); r.status != 200 {
		t.Fatalf("bearer: %d %s", r.status, r.body)
	}

	r = e.call("PATCH", "/streaming/streams/1", `{"active":false}`)
	if r.status != 200 || r.stream(t).Active {
		t.Fatalf("deactivate: %d %s", r.status, r.body)
	}
	if got := e.kicks.got(); !slices.Equal(got, []uint64{1}) {
		t.Fatalf("kicks after deactivate %v", got)
	}
	r = e.call("PATCH", "/streaming/streams/1", `{"name":"renamed","active":true}`)
	if s := r.stream(t); r.status != 200 || s.Name != "renamed" || !s.Active {
		t.Fatalf("rename: %d %s", r.status, r.body)
	}
	if got := e.kicks.got(); len(got) != 1 {
		t.Fatalf("rename/activate kicked: %v", got)
	}
	r = e.call("PATCH", "/streaming/streams/1", `{"rotate_key":true}`)
	s = r.stream(t)
	if r.status != 200 || s.PushURLWHIP == want.PushURLWHIP || !strings.HasPrefix(s.PushURLWHIP, "https://node.example/whip/1_") {
		t.Fatalf("rotate: %d %s", r.status, r.body)
	}
	if got := e.kicks.got(); !slices.Equal(got, []uint64{1, 1}) {
		t.Fatalf("kicks after rotate %v", got)
	}

	r = e.call("DELETE", "/streaming/streams/1", "")
	if r.status != http.StatusNoContent || len(r.body) != 0 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	if got := e.kicks.got(); !slices.Equal(got, []uint64{1, 1, 1}) {
		t.Fatalf("kicks after delete %v", got)
	}
	wantError(t, e.call("GET", "/streaming/streams/1", ""), 404, "not found")
	wantError(t, e.call("DELETE", "/streaming/streams/1", ""), 404)
	wantError(t, e.call("PATCH", "/streaming/streams/1", `{"active":true}`), 404)

	// Metrics count requests by code.
	if n := requestCount(t, e.reg); n < 10 {
		t.Fatal("no requests counted")
	}
}

func requestCount(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() == "edgenode_api_requests_total" {
			for _, m := range mf.Metric {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func TestCreateInactive(t *testing.T) {
	e := newEnv(t)
	r := e.call("POST", "/streaming/streams", `{"name":"later","active":false}`)
	if r.status != 201 || r.stream(t).Active {
		t.Fatalf("%d %s", r.status, r.body)
	}
}

func TestListPagination(t *testing.T) {
	e := newEnv(t)
	for i := range 5 {
		if r := e.call("POST", "/streaming/streams", `{"name":"s`+string(rune('a'+i))+`"}`); r.status != 201 {
			t.Fatal(r.status, string(r.body))
		}
	}
	var ids []uint64
	path := "/streaming/streams?limit=2"
	for pages := 0; path != ""; pages++ {
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		r := e.call("GET", path, "")
		if r.status != 200 || r.header.Get("X-Total-Count") != "5" {
			t.Fatalf("list: %d %v %s", r.status, r.header, r.body)
		}
		var page []api.Stream
		if err := json.Unmarshal(r.body, &page); err != nil {
			t.Fatal(err)
		}
		for _, s := range page {
			ids = append(ids, s.ID)
		}
		path = ""
		if l := r.header.Get("Link"); l != "" {
			path = l[strings.Index(l, "<")+1 : strings.Index(l, ">")]
		}
	}
	if !slices.Equal(ids, []uint64{1, 2, 3, 4, 5}) {
		t.Fatalf("listed %v", ids)
	}
	// An empty node lists [] (not null), and after the last id too.
	r := e.call("GET", "/streaming/streams?after=5", "")
	if r.status != 200 || strings.TrimSpace(string(r.body)) != "[]" || r.header.Get("Link") != "" {
		t.Fatalf("past the end: %d %s %v", r.status, r.body, r.header)
	}
	wantError(t, e.call("GET", "/streaming/streams?limit=0", ""), 400, "'limit'")
	wantError(t, e.call("GET", "/streaming/streams?limit=1001", ""), 400, "'limit'")
	wantError(t, e.call("GET", "/streaming/streams?after=-1", ""), 400, "'after'")
	wantError(t, e.call("GET", "/streaming/streams?page=2", ""), 400, "'page'")
}

func TestErrors(t *testing.T) {
	e := newEnv(t)
	e.call("POST", "/streaming/streams", `{"name":"demo"}`)
	big := `{"name":"` + strings.Repeat("x", 2000) + `"}`
	cases := []struct {
		name                      string
		method, path, auth, ctype string
		body                      string
		status                    int
		fragments                 []string
	}{
		{"no token", "GET", "/streaming/streams", "", "", "", 401, []string{"Authorization"}},
		{"bad token", "GET", "/streaming/streams", "APIKey nope", "", "", 401, []string{"invalid API token"}},
		{"bad scheme", "GET", "/streaming/streams", "Basic " + token, "", "", 401, []string{"APIKey"}},
		{"token prefix", "GET", "/streaming/streams", "APIKey " + token[:5], "", "", 401, nil},
		{"no token on unknown route", "GET", "/streaming/nothing", "", "", "", 401, nil},
		{"bad json", "POST", "/streaming/streams", "", "application/json", `{"name":`, 400, []string{"invalid JSON"}},
		{"syntax", "POST", "/streaming/streams", "", "application/json", `{"name" "x"}`, 400, []string{"invalid JSON at byte"}},
		{"empty body", "POST", "/streaming/streams", "", "application/json", ``, 400, []string{"empty"}},
		{"array", "POST", "/streaming/streams", "", "application/json", `[1]`, 400, []string{"JSON object"}},
		{"null", "POST", "/streaming/streams", "", "application/json", `null`, 400, []string{"JSON object"}},
		{"trailing", "POST", "/streaming/streams", "", "application/json", `{"name":"a"} {}`, 400, []string{"after the object"}},
		{"unknown field", "POST", "/streaming/streams", "", "application/json", `{"name":"a","nmae":"b"}`, 400, []string{"unknown field 'nmae'"}},
		{"name type", "POST", "/streaming/streams", "", "application/json", `{"name":5}`, 400, []string{"'name' must be a string"}},
		{"name missing", "POST", "/streaming/streams", "", "application/json", `{}`, 400, []string{"'name' is required"}},
		{"name empty", "POST", "/streaming/streams", "", "application/json", `{"name":" "}`, 400, []string{"'name' must not be empty"}},
		{"name control", "POST", "/streaming/streams", "", "application/json", `{"name":"a\nb"}`, 400, []string{"'name'", "control"}},
		{"active type", "POST", "/streaming/streams", "", "application/json", `{"name":"x","active":"no"}`, 400, []string{"'active' must be true or false"}},
		{"duplicate name", "POST", "/streaming/streams", "", "application/json", `{"name":"demo"}`, 409, []string{"already exists"}},
		{"no content type", "POST", "/streaming/streams", "", "", `{"name":"x"}`, 415, []string{"application/json"}},
		{"form", "POST", "/streaming/streams", "", "application/x-www-form-urlencoded", `name=x`, 415, nil},
		{"json with charset", "POST", "/streaming/streams", "", "application/json; charset=utf-8", `{"name":5}`, 400, nil},
		{"too large", "POST", "/streaming/streams", "", "application/json", big, 413, []string{"larger than 1024 bytes"}},
		{"patch too large", "PATCH", "/streaming/streams/1", "", "application/json", big, 413, nil},
		{"patch 415", "PATCH", "/streaming/streams/1", "", "text/plain", `{"active":false}`, 415, nil},
		{"patch nothing", "PATCH", "/streaming/streams/1", "", "application/json", `{}`, 400, []string{"at least one"}},
		{"patch null", "PATCH", "/streaming/streams/1", "", "application/json", `{"active":null}`, 400, []string{"'active'"}},
		{"patch unknown", "PATCH", "/streaming/streams/1", "", "application/json", `{"key":"x"}`, 400, []string{"unknown field 'key'"}},
		{"patch rotate type", "PATCH", "/streaming/streams/1", "", "application/json", `{"rotate_key":1}`, 400, []string{"'rotate_key'"}},
		{"bad id", "GET", "/streaming/streams/abc", "", "", "", 400, []string{"stream id"}},
		{"zero id", "GET", "/streaming/streams/0", "", "", "", 400, []string{"stream id"}},
		{"unknown stream", "GET", "/streaming/streams/999", "", "", "", 404, []string{"stream not found"}},
		{"unknown route", "GET", "/streaming/nothing", "", "", "", 404, []string{"no such"}},
		{"put collection", "PUT", "/streaming/streams", "", "", "", 405, []string{"PUT"}},
		{"post item", "POST", "/streaming/streams/1", "", "application/json", `{}`, 405, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			auth := c.auth
			if auth == "" && !strings.HasPrefix(c.name, "no token") {
				auth = "APIKey " + token
			}
			r := e.do(c.method, c.path, auth, c.ctype, c.body)
			wantError(t, r, c.status, c.fragments...)
			if c.status == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without WWW-Authenticate: %v", r.header)
			}
		})
	}
	r := e.call("PUT", "/streaming/streams", "")
	if r.header.Get("Allow") != "GET, HEAD, POST" {
		t.Errorf("405 Allow %q", r.header.Get("Allow"))
	}
	r = e.call("POST", "/streaming/streams/1", "")
	if r.header.Get("Allow") != "GET, HEAD, PATCH, DELETE" {
		t.Errorf("405 Allow %q", r.header.Get("Allow"))
	}
	// Nothing above changed the stream.
	if st, err := e.st.Stream(1); err != nil || st.Name != "demo" || !st.Active {
		t.Fatalf("stream changed by refused requests: %+v %v", st, err)
	}
	if n, _ := e.st.CountStreams(); n != 1 {
		t.Fatalf("refused requests created streams: %d", n)
	}
}

func TestRenameConflict(t *testing.T) {
	e := newEnv(t)
	e.call("POST", "/streaming/streams", `{"name":"a"}`)
	e.call("POST", "/streaming/streams", `{"name":"b"}`)
	wantError(t, e.call("PATCH", "/streaming/streams/2", `{"name":"a"}`), 409)
}

func TestNewRefusesBadOptions(t *testing.T) {
	st := storetest.Open(t)
	if _, err := api.New(st, api.Options{PublicURL: "http://x", Token: ""}, nil, nil); err == nil {
		t.Error("empty token accepted")
	}
	if _, err := api.New(st, api.Options{PublicURL: "node.example", Token: "t"}, nil, nil); err == nil {
		t.Error("relative public URL accepted")
	}
}
