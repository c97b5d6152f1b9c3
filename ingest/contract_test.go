package ingest_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/edgenode/edgenode/ingest"
	"github.com/edgenode/edgenode/ingest/internal/whipclient"
	"github.com/edgenode/edgenode/internal/hub"
)

// vp8Offer is a well-formed offer this node cannot serve.
const vp8Offer = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n" +
	"a=fingerprint:sha-256 0F:74:31:25:CB:A2:13:EC:28:6F:6D:2C:61:FF:5D:C2:BC:B9:DB:3D:98:14:8D:1A:BB:EA:33:0C:A4:60:A8:8E\r\n" +
	"a=setup:actpass\r\na=mid:0\r\na=sendonly\r\na=rtcp-mux\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n"

type reply struct {
	status int
	header http.Header
	err    string // the JSON "error"
	body   string
}

func do(t *testing.T, method, url, ctype, body string, hdr ...string) reply {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	r := reply{status: res.StatusCode, header: res.Header, body: string(b)}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		var j struct{ Error string }
		if err := json.Unmarshal(b, &j); err != nil {
			t.Fatalf("bad JSON error body %q: %v", b, err)
		}
		r.err = j.Error
	}
	return r
}

func want(t *testing.T, r reply, status int, errSub string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d (%s), want %d", r.status, r.body, status)
	}
	if errSub != "" && !strings.Contains(r.err, errSub) {
		t.Fatalf("error %q does not contain %q", r.err, errSub)
	}
}

// publish starts a pion publisher on stream 42 and waits until it is
// connected.
func publish(t *testing.T, e *env, o whipclient.Options) *whipclient.Publisher {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if o.URL == "" {
		o.URL = e.base + "/whip/42_secret"
	}
	p, err := whipclient.Publish(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	for !e.hub.Live(key42) {
		select {
		case <-ctx.Done():
			t.Fatal("publisher never went live")
		case <-time.After(20 * time.Millisecond):
		}
	}
	return p
}

func TestErrorContract(t *testing.T) {
	e := newEnv(t, testConfig())
	whip := e.base + "/whip/42_secret"
	t.Run("415 wrong content type", func(t *testing.T) {
		want(t, do(t, "POST", whip, "text/plain", vp8Offer), 415, "Content-Type must be application/sdp")
	})
	t.Run("400 unparsable SDP", func(t *testing.T) {
		want(t, do(t, "POST", whip, "application/sdp", "this is not SDP"), 400, "malformed SDP")
	})
	t.Run("422 VP8 only", func(t *testing.T) {
		want(t, do(t, "POST", whip, "application/sdp", vp8Offer), 422,
			"offer has video VP8 only; this node ingests H.264 (packetization-mode=1) and Opus")
	})
	t.Run("403 unknown stream", func(t *testing.T) {
		want(t, do(t, "POST", e.base+"/whip/99_secret", "application/sdp", vp8Offer), 403, "unknown stream or wrong key")
	})
	t.Run("403 wrong key", func(t *testing.T) {
		want(t, do(t, "POST", e.base+"/whip/42_guess", "application/sdp", vp8Offer), 403, "unknown stream or wrong key")
	})
	t.Run("403 wrong bearer", func(t *testing.T) {
		want(t, do(t, "POST", e.base+"/whip/42", "application/sdp", vp8Offer, "Authorization", "Bearer guess"), 403, "wrong key")
	})
	t.Run("403 no key", func(t *testing.T) {
		want(t, do(t, "POST", e.base+"/whip/42", "application/sdp", vp8Offer), 403, "no stream key")
	})
	t.Run("403 deactivated", func(t *testing.T) {
		want(t, do(t, "POST", e.base+"/whip/7_seven", "application/sdp", vp8Offer), 403, "stream 7 is deactivated")
	})
	t.Run("503 store not answering", func(t *testing.T) {
		e.streams.mu.Lock()
		e.streams.fail = errors.New("bbolt: timeout")
		e.streams.mu.Unlock()
		defer func() {
			e.streams.mu.Lock()
			e.streams.fail = nil
			e.streams.mu.Unlock()
		}()
		r := do(t, "POST", whip, "application/sdp", vp8Offer)
		want(t, r, 503, "stream lookup unavailable: stream 42: bbolt: timeout")
		if r.header.Get("Retry-After") == "" {
			t.Error("503 without Retry-After")
		}
	})
	t.Run("403 not a stream path", func(t *testing.T) {
		want(t, do(t, "POST", e.base+"/whip/abc_secret", "application/sdp", vp8Offer), 403, "not a stream path")
	})
	t.Run("404 unknown session", func(t *testing.T) {
		want(t, do(t, "DELETE", e.base+"/whip/42/0123456789abcdef", "", ""), 404, "no such session")
		want(t, do(t, "PATCH", e.base+"/whip/42/0123456789abcdef", "application/trickle-ice-sdpfrag", "a=ice-ufrag:x\r\n", "If-Match", `"x"`), 404, "no such session")
	})
	t.Run("GET endpoint 204", func(t *testing.T) {
		r := do(t, "GET", whip, "", "")
		want(t, r, 204, "")
		if r.body != "" {
			t.Errorf("GET body %q", r.body)
		}
	})
	t.Run("OPTIONS preflight", func(t *testing.T) {
		r := do(t, "OPTIONS", whip, "", "", "Origin", "https://example.test", "Access-Control-Request-Method", "POST")
		want(t, r, 204, "")
		if r.header.Get("Accept-Post") != "application/sdp" {
			t.Errorf("Accept-Post %q", r.header.Get("Accept-Post"))
		}
		for _, h := range []string{"Location", "ETag", "Link"} {
			if !strings.Contains(r.header.Get("Access-Control-Expose-Headers"), h) {
				t.Errorf("Access-Control-Expose-Headers %q lacks %s", r.header.Get("Access-Control-Expose-Headers"), h)
			}
		}
		if !strings.Contains(r.header.Get("Access-Control-Allow-Methods"), "PATCH") {
			t.Errorf("Allow-Methods %q", r.header.Get("Access-Control-Allow-Methods"))
		}
	})

	p := publish(t, e, whipclient.Options{})
	t.Run("201 headers", func(t *testing.T) {
		if !strings.HasPrefix(p.Location, e.base+"/whip/42/") || strings.Contains(p.Location, "secret") {
			t.Errorf("Location %q", p.Location)
		}
		if tag := p.ETag(); len(tag) < 10 || tag[0] != '"' || strings.HasPrefix(tag, "W/") {
			t.Errorf("ETag %q is not a strong entity tag", tag)
		}
		want(t, do(t, "GET", p.Location, "", ""), 204, "")
	})
	t.Run("400 second publisher", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := whipclient.Publish(ctx, whipclient.Options{URL: whip})
		var st *whipclient.ErrStatus
		if !errors.As(err, &st) || st.Code != 400 || !strings.Contains(st.Body, `{"error":"someone is already publishing to the path '42_secret'"}`) {
			t.Fatalf("second publisher: %v", err)
		}
	})
	t.Run("415 PATCH content type", func(t *testing.T) {
		want(t, do(t, "PATCH", p.Location, "application/sdp", "a=ice-ufrag:x\r\n", "If-Match", p.ETag()), 415, "application/trickle-ice-sdpfrag")
	})
	t.Run("428 PATCH without If-Match", func(t *testing.T) {
		want(t, do(t, "PATCH", p.Location, "application/trickle-ice-sdpfrag", "a=ice-ufrag:x\r\n"), 428, "If-Match")
	})
	t.Run("412 PATCH stale If-Match", func(t *testing.T) {
		want(t, do(t, "PATCH", p.Location, "application/trickle-ice-sdpfrag", "a=ice-ufrag:x\r\n", "If-Match", `"stale"`), 412, "ETag")
	})
	t.Run("400 PATCH malformed sdpfrag", func(t *testing.T) {
		want(t, do(t, "PATCH", p.Location, "application/trickle-ice-sdpfrag", "garbage", "If-Match", p.ETag()), 400, "sdpfrag")
	})
	t.Run("204 trickle", func(t *testing.T) {
		r := do(t, "PATCH", p.Location, "application/trickle-ice-sdpfrag",
			"m=audio 9 RTP/AVP 0\r\na=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\n", "If-Match", p.ETag())
		want(t, r, 204, "")
		if r.header.Get("ETag") != "" {
			t.Errorf("trickle 204 carries an ETag (RFC 9725 §4.3.2 says no)")
		}
	})
}

func TestOverloadAndRateLimit(t *testing.T) {
	t.Run("503 above max_sessions", func(t *testing.T) {
		cfg := testConfig()
		cfg.MaxSessions = 1
		e := newEnv(t, cfg)
		e.streams.set(43, "other", true)
		first := publish(t, e, whipclient.Options{})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := whipclient.Publish(ctx, whipclient.Options{URL: e.base + "/whip/43_other"})
		var st *whipclient.ErrStatus
		if !errors.As(err, &st) || st.Code != 503 || !strings.Contains(st.Body, "max_sessions") {
			t.Fatalf("second session: %v", err)
		}
		r := do(t, "POST", e.base+"/whip/43_other", "application/sdp", first.PC.LocalDescription().SDP)
		want(t, r, 503, "too many sessions")
		if r.header.Get("Retry-After") == "" {
			t.Error("503 without Retry-After (RFC 9725 §4.5)")
		}
		// Unservable offers are refused before the session limit counts.
		want(t, do(t, "POST", e.base+"/whip/43_other", "application/sdp", vp8Offer), 422, "")
	})
	t.Run("429 when hammering POST", func(t *testing.T) {
		cfg := testConfig()
		cfg.PostRate, cfg.PostBurst = 0.001, 3
		e := newEnv(t, cfg)
		for i := range 3 {
			want(t, do(t, "POST", e.base+"/whip/42_secret", "application/sdp", vp8Offer), 422, "")
			_ = i
		}
		r := do(t, "POST", e.base+"/whip/42_secret", "application/sdp", vp8Offer)
		want(t, r, 429, "too many requests")
		if r.header.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
	})
}

var _ = ingest.ErrBusy

// TestICEServerLinks: the 201 and a plain OPTIONS carry one
// `Link: rel="ice-server"` per URL with the TURN credentials the provider
// made for the stream (RFC 9725 §4.6); a CORS preflight carries none.
func TestICEServerLinks(t *testing.T) {
	h := hub.New(0)
	streams := &streamStore{m: map[uint64]streamRec{42: {"secret", true}}}
	var asked []uint64
	srv, err := ingest.New(testConfig(), ingest.Deps{Hub: h, Streams: streams,
		ICEServers: func(id uint64) []webrtc.ICEServer {
			asked = append(asked, id)
			return []webrtc.ICEServer{
				{URLs: []string{"stun:node.example:3478"}},
				{URLs: []string{"turn:node.example:3478?transport=udp", "turns:node.example:5349?transport=tcp"},
					Username: "1700000000:42", Credential: `p"w`},
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	mux := http.NewServeMux()
	srv.RegisterRoutes(mux)
	hs := httptest.NewServer(mux)
	defer hs.Close()
	defer hs.CloseClientConnections()

	wantLinks := []string{
		`<stun:node.example:3478>; rel="ice-server"`,
		`<turn:node.example:3478?transport=udp>; rel="ice-server"; username="1700000000:42"; credential="p\"w"; credential-type="password"`,
		`<turns:node.example:5349?transport=tcp>; rel="ice-server"; username="1700000000:42"; credential="p\"w"; credential-type="password"`,
	}
	r := do(t, "OPTIONS", hs.URL+"/whip/42_secret", "", "")
	want(t, r, 204, "")
	if got := r.header.Values("Link"); strings.Join(got, "\n") != strings.Join(wantLinks, "\n") {
		t.Errorf("OPTIONS Link headers:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantLinks, "\n"))
	}
	pre := do(t, "OPTIONS", hs.URL+"/whip/42_secret", "", "", "Origin", "https://x.test", "Access-Control-Request-Method", "POST")
	if len(pre.header.Values("Link")) != 0 {
		t.Errorf("CORS preflight carries ICE servers: %q", pre.header.Values("Link"))
	}
	bad := do(t, "OPTIONS", hs.URL+"/whip/42_wrong", "", "")
	if len(bad.header.Values("Link")) != 0 {
		t.Errorf("OPTIONS with a wrong key got TURN credentials: %q", bad.header.Values("Link"))
	}
	p := publish(t, &env{hub: h, base: hs.URL}, whipclient.Options{URL: hs.URL + "/whip/42_secret"})
	_ = p
	if len(asked) != 2 || asked[0] != 42 || asked[1] != 42 {
		t.Errorf("ICEServers asked for streams %v", asked)
	}
}
