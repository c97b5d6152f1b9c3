package ingest_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edgenode/edgenode/ingest/internal/whipclient"
)

// BenchmarkWHIPPost: one WHIP POST → 201 (offer check, PeerConnection,
// answer with all candidates) and the DELETE that ends it, sequentially on
// loopback. Compare with BenchmarkCheckOffer (the offer check alone).
func BenchmarkWHIPPost(b *testing.B) {
	e := newEnvB(b)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := whipclient.Publish(ctx, whipclient.Options{URL: e.base + "/whip/42_secret"})
	if err != nil {
		b.Fatal(err)
	}
	offer := p.PC.LocalDescription().SDP
	if _, err := p.Delete(ctx); err != nil {
		b.Fatal(err)
	}
	_ = p.Close()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		res, err := http.Post(e.base+"/whip/42_secret", "application/sdp", strings.NewReader(offer))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
		if res.StatusCode != 201 {
			b.Fatalf("POST: %d", res.StatusCode)
		}
		req, _ := http.NewRequest(http.MethodDelete, e.base+res.Header.Get("Location"), nil)
		del, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_ = del.Body.Close()
	}
}
