// Package e2e_test publishes from headless Chromium through the node's own
// TURN server to its own WHIP ingest (issue 5, acceptance 1). It lives apart
// from package turn's tests because it needs ingest and Chromium.
package e2e_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.uber.org/goleak"

	"github.com/edgenode/edgenode/ingest"
	"github.com/edgenode/edgenode/internal/browsertest"
	"github.com/edgenode/edgenode/internal/hub"
	"github.com/edgenode/edgenode/internal/media"
	"github.com/edgenode/edgenode/turn"
	"github.com/edgenode/edgenode/turn/turntest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
	)
}

type streams struct{}

func (streams) LookupStream(id uint64) (string, bool, bool, error) {
	return "secret", id == 42, id == 42, nil
}

// page publishes camera + microphone over WHIP with only the given ICE
// servers and iceTransportPolicy "relay", then reports the selected pair.
const page = `<!doctype html><meta charset="utf-8"><title>turn e2e</title><script>
window.publish = async (whip, iceServers) => {
  const pc = new RTCPeerConnection({iceServers, iceTransportPolicy: "relay"});
  window.pc = pc;
  const stream = await navigator.mediaDevices.getUserMedia({video: true, audio: true});
  for (const track of stream.getTracks()) {
    const tr = pc.addTransceiver(track, {direction: "sendonly", streams: [stream]});
    if (track.kind === "video") {
      tr.setCodecPreferences(RTCRtpSender.getCapabilities("video").codecs.filter(c => c.mimeType === "video/H264"));
    }
  }
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise(resolve => {
    if (pc.iceGatheringState === "complete") return resolve();
    pc.addEventListener("icegatheringstatechange", () => pc.iceGatheringState === "complete" && resolve());
    setTimeout(resolve, 10000);
  });
  const res = await fetch(whip, {method: "POST", headers: {"Content-Type": "application/sdp"}, body: pc.localDescription.sdp});
  if (res.status !== 201) throw new Error("WHIP " + res.status + ": " + await res.text());
  window.links = res.headers.get("Link");
  await pc.setRemoteDescription({type: "answer", sdp: await res.text()});
  return pc.localDescription.sdp.split("\r\n").filter(l => l.includes("typ relay")).length;
};
window.selected = async () => {
  const stats = await window.pc.getStats();
  let out = {state: window.pc.connectionState};
  stats.forEach(s => {
    if (s.type === "transport" && s.selectedCandidatePairId) {
      const pair = stats.get(s.selectedCandidatePairId);
      const local = stats.get(pair.localCandidateId);
      const remote = stats.get(pair.remoteCandidateId);
      out.localType = local.candidateType; out.relayProtocol = local.relayProtocol || "";
      out.url = local.url || ""; out.remote = remote.address + ":" + remote.port;
      out.bytesSent = pair.bytesSent;
    }
  });
  return JSON.stringify(out);
};
</script>`

type selected struct {
	State, LocalType, RelayProtocol, URL, Remote string
	BytesSent                                    int64
}

func TestChromiumPublishesThroughTURN(t *testing.T) {
	if browsertest.ExecPath() == "" {
		t.Skip("Chromium not installed (scripts/deps.sh test installs it)")
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	h := hub.New(0)
	var (
		mu  sync.Mutex
		ing *ingest.Server
	)
	mediaAddrs := func() []netip.AddrPort {
		mu.Lock()
		defer mu.Unlock()
		if ing == nil {
			return nil
		}
		return turn.AddrPorts(ing.UDPAddrs())
	}
	tsrv := turntest.StartFunc(t, turntest.Config(), mediaAddrs)

	srv, err := ingest.New(ingest.Config{UDPPort: -1, TCPPort: -1, PostRate: 1000, PostBurst: 1000},
		ingest.Deps{Logger: log, Hub: h, Streams: streams{}, ICEServers: tsrv.ICEServers})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	ing = srv
	mu.Unlock()
	mux := http.NewServeMux()
	srv.RegisterRoutes(mux)
	mux.HandleFunc("GET /e2e", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(page))
	})
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		hs.CloseClientConnections()
		hs.Close()
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
	})

	// Chromium trusts the node's self-signed TURN certificate by its key.
	spki := sha256.Sum256(tsrv.Certificate().RawSubjectPublicKeyInfo)
	b := browsertest.Start(t, browsertest.Options{Console: testing.Verbose(), Flags: map[string]any{
		"ignore-certificate-errors-spki-list": base64.StdEncoding.EncodeToString(spki[:]),
	}})

	a := tsrv.Addrs()
	for _, tc := range []struct{ name, url, proto string }{
		{"tcp", fmt.Sprintf("turn:%s?transport=tcp", a.TCP), "tcp"},
		{"udp", fmt.Sprintf("turn:%s?transport=udp", a.UDP), "udp"},
		{"tls", fmt.Sprintf("turns:%s?transport=tcp", a.TLS), "tls"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			publishThrough(t, b, hs.URL, h, tsrv, tc.url, tc.proto)
		})
	}
}

func publishThrough(t *testing.T, b *browsertest.Browser, base string, h *hub.Hub, tsrv *turntest.Server, url, proto string) {
	tab := b.Tab(t)
	ctx, cancel := context.WithTimeout(tab, 90*time.Second)
	defer cancel()
	sub := h.Subscribe(hub.Key{Stream: 42, Rendition: hub.Source}, "e2e")
	defer sub.Close()

	user, pass, err := tsrv.Credentials(42)
	if err != nil {
		t.Fatal(err)
	}
	ice, _ := json.Marshal([]map[string]string{{"urls": url, "username": user, "credential": pass}})
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/e2e")); err != nil {
		t.Fatal(err)
	}
	relays, err := chromedp.Run(ctx, chromedp.Evaluate[int](
		fmt.Sprintf(`publish(%q, %s)`, base+"/whip/42_secret", ice), chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("publish via %s: %v", url, err)
	}
	if relays == 0 {
		t.Fatalf("no relay candidate gathered from %s", url)
	}
	// The WHIP 201 announces the node's STUN/TURN servers (RFC 9725 §4.6).
	links, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.links || ""`))
	if err != nil {
		t.Fatal(err)
	}
	a := tsrv.Addrs()
	for _, want := range []string{
		"<stun:" + a.UDP.String() + ">",
		"<turn:" + a.UDP.String() + "?transport=udp>",
		"<turn:" + a.TCP.String() + "?transport=tcp>",
		"<turns:" + a.TLS.String() + "?transport=tcp>",
		`credential-type="password"`, `:42"`,
	} {
		if !strings.Contains(links, want) {
			t.Errorf("201 Link header lacks %s: %s", want, links)
		}
	}

	// The stream flows: the hub gets H.264 with a keyframe and Opus.
	var session *hub.Session
	video, audio, keys := 0, 0, 0
	for video < 40 || audio < 20 || keys == 0 {
		ev, err := sub.Next(ctx)
		if err != nil {
			sel, _ := chromedp.Run(tab, chromedp.Evaluate[string](`selected()`, chromedp.EvalAwaitPromise))
			t.Fatalf("hub after %d video/%d audio AUs: %v (browser: %s)", video, audio, err, sel)
		}
		switch ev.Kind {
		case hub.SessionStart:
			session = ev.Session
		case hub.AccessUnit:
			if session == nil {
				continue
			}
			if session.Tracks[ev.Track].Codec == media.CodecH264 {
				video++
				if ev.AU.Key {
					keys++
				}
			} else {
				audio++
			}
		}
	}

	raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](`selected()`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	var sel selected
	if err := json.Unmarshal([]byte(raw), &sel); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d video (%d key) / %d audio AUs; selected pair %+v", url, video, keys, audio, sel)
	if sel.LocalType != "relay" || sel.RelayProtocol != proto {
		t.Fatalf("selected local candidate %+v, want relay over %s", sel, proto)
	}
	if v := metric(t, tsrv, "edgenode_turn_allocations_total", proto); v < 1 {
		t.Fatalf("allocations_total{transport=%s} = %v", proto, v)
	}
	if v := metric(t, tsrv, "edgenode_turn_relayed_packets_total", "to_peer"); v < 60 {
		t.Fatalf("relayed_packets_total{to_peer} = %v", v)
	}
	// End the session so the next subtest can publish stream 42 again.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.pc.close(), true`)); err != nil {
		t.Fatal(err)
	}
	for {
		ev, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for session end: %v", err)
		}
		if ev.Kind == hub.SessionEnd {
			return
		}
	}
}

func metric(t *testing.T, s *turntest.Server, name, labelValue string) float64 {
	t.Helper()
	mfs, err := s.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetValue() == labelValue {
					if m.GetCounter() != nil {
						return m.GetCounter().GetValue()
					}
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return 0
}
