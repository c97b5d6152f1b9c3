package browsertest_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/edgenode/edgenode/internal/browsertest"
)

// TestFakeCamera: the browser starts, loads a page from loopback and gets
// a 1280×720 fake camera without a permission prompt.
func TestFakeCamera(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(`<!doctype html><title>cam</title><script>
window.cam = navigator.mediaDevices.getUserMedia({video: {width: 1280, height: 720}, audio: true}).then((s) => {
  const v = s.getVideoTracks()[0].getSettings();
  return {w: v.width, h: v.height, audio: s.getAudioTracks().length};
});
</script>`))
	}))
	defer srv.Close()
	b := browsertest.Start(t, browsertest.Options{})
	tab := b.Tab(t)
	ctx, cancel := context.WithTimeout(tab, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL)); err != nil {
		t.Fatal(err)
	}
	type cam struct{ W, H, Audio int }
	got, err := chromedp.Run(ctx, chromedp.Evaluate[cam](`window.cam`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if got.W != 1280 || got.H != 720 || got.Audio != 1 {
		t.Fatalf("fake devices: %+v, want 1280x720 video and one audio track", got)
	}
}
