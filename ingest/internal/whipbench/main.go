// Command whipbench measures the WHIP ingest under load on loopback: the
// time from POST to 201 for N publishers that publish at once, and the
// ingest's CPU per publisher while N pion publishers each send about
// -bitrate bit/s of H.264 (padded with filler data) plus Opus.
//
// The ingest runs in this process; the publishers run in a child process
// (this binary with -child) so that their CPU is not counted as the
// server's. Baselines measured in the same run: a POST refused with 422
// (HTTP + SDP parsing only) for the POST time, and the publishers' own CPU
// for the per-publisher CPU.
//
//	go run ./ingest/internal/whipbench -publishers 50 -bitrate 1000000 -duration 15s
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/edgenode/edgenode/ingest"
	"github.com/edgenode/edgenode/ingest/internal/whipclient"
	"github.com/edgenode/edgenode/internal/hub"
)

func main() {
	n := flag.Int("publishers", 50, "concurrent publishers")
	bitrate := flag.Int("bitrate", 1_000_000, "video bit/s per publisher")
	dur := flag.Duration("duration", 15*time.Second, "measurement window once all are live")
	child := flag.Bool("child", false, "internal: run the publishers")
	url := flag.String("url", "", "internal: ingest base URL")
	flag.Parse()
	var err error
	if *child {
		err = runChild(*url, *n, *bitrate)
	} else {
		err = runParent(*n, *bitrate, *dur)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "whipbench:", err)
		os.Exit(1)
	}
}

type streams struct{}

func (streams) LookupStream(id uint64) (string, bool, bool, error) {
	return "k" + strconv.FormatUint(id, 10), true, id >= 1 && id <= 10000, nil
}

type childReport struct {
	PostMS []float64 `json:"post_ms"`
}

func runParent(n, bitrate int, dur time.Duration) error {
	h := hub.New(0)
	var aus atomic.Uint64
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); wg.Wait() }()
	// One draining consumer per stream, as the origin would be.
	h.AddConsumer("bench", nil, func(_ hub.Key, sub *hub.Subscription) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer sub.Close()
			for {
				ev, err := sub.Next(ctx)
				if err != nil {
					return
				}
				if ev.Kind == hub.AccessUnit && ev.AU.Codec.IsVideo() {
					aus.Add(1)
				}
			}
		}()
	})
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := ingest.New(ingest.Config{UDPPort: -1, DisableTCP: true, MaxSessions: n + 10,
		PostRate: 1e6, PostBurst: 1e6, StaleTimeout: 10 * time.Second}, ingest.Deps{Logger: log, Hub: h, Streams: streams{}})
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		return err
	}
	defer srv.Close()
	mux := http.NewServeMux()
	srv.RegisterRoutes(mux)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: mux}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()
	base := "http://" + ln.Addr().String()

	// Baseline: POST of an offer refused with 422 (no PeerConnection).
	var base422 []float64
	for range 50 {
		t0 := time.Now()
		res, err := http.Post(base+"/whip/1_k1", "application/sdp", strings.NewReader(vp8Offer))
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
		if res.StatusCode != 422 {
			return fmt.Errorf("baseline POST: %d", res.StatusCode)
		}
		base422 = append(base422, ms(time.Since(t0)))
	}

	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, "-child", "-url", base, "-publishers", strconv.Itoa(n), "-bitrate", strconv.Itoa(bitrate))
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = stdin.Close(); _ = cmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		return fmt.Errorf("child: %w", err)
	}
	var rep childReport
	if err := json.Unmarshal([]byte(line), &rep); err != nil {
		return fmt.Errorf("child said %q: %w", line, err)
	}
	// Let the publishers settle (keyframes requested, ramp-up), then measure.
	time.Sleep(2 * time.Second)
	self0, child0, aus0, t0 := selfCPU(), procCPU(cmd.Process.Pid), aus.Load(), time.Now()
	time.Sleep(dur)
	self1, child1, aus1, t1 := selfCPU(), procCPU(cmd.Process.Pid), aus.Load(), time.Now()
	wall := t1.Sub(t0).Seconds()
	srvCPU := (self1 - self0) / wall / float64(n) * 100
	pubCPU := (child1 - child0) / wall / float64(n) * 100
	fps := float64(aus1-aus0) / wall / float64(n)

	med, p99 := pct(rep.PostMS, 50), pct(rep.PostMS, 99)
	bmed := pct(base422, 50)
	fmt.Printf("whip_post_201_ms publishers=%d median=%.1f p99=%.1f  baseline_post_422_median=%.2f  ratio=%.1fx\n",
		n, med, p99, bmed, med/bmed)
	fmt.Printf("ingest_cpu_per_publisher bitrate=%d server=%.2f%%core  publisher_side=%.2f%%core  ratio=%.2f\n",
		bitrate, srvCPU, pubCPU, srvCPU/pubCPU)
	fmt.Printf("ingest_video_fps_per_stream %.1f (sent 30)\n", fps)
	fmt.Printf("ingest_sessions %d\n", srv.Sessions())
	return nil
}

func runChild(base string, n, bitrate int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pubs := make([]*whipclient.Publisher, n)
	times := make([]float64, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	video, err := whipclient.SplitAnnexB(whipclient.Slices4)
	if err != nil {
		return err
	}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := strconv.Itoa(i + 1)
			<-start
			p, err := whipclient.Publish(ctx, whipclient.Options{URL: base + "/whip/" + id + "_k" + id, Video: video, Bitrate: bitrate})
			if err != nil {
				errs <- err
				return
			}
			times[i] = ms(p.PostTime)
			pubs[i] = p
		}()
	}
	close(start)
	wg.Wait()
	defer func() {
		for _, p := range pubs {
			if p != nil {
				_ = p.Close()
			}
		}
	}()
	select {
	case err := <-errs:
		return err
	default:
	}
	// Wait until every publisher is connected.
	for _, p := range pubs {
		for p.PC.ConnectionState() != webrtc.PeerConnectionStateConnected {
			if ctx.Err() != nil {
				return fmt.Errorf("publisher not connected: %s", p.PC.ConnectionState())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	b, _ := json.Marshal(childReport{PostMS: times})
	fmt.Println(string(b))
	// Publish until the parent closes stdin.
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func pct(xs []float64, p int) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	i := (len(s)*p + 99) / 100
	if i > 0 {
		i--
	}
	return s[i]
}

func selfCPU() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return tv(ru.Utime) + tv(ru.Stime)
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

// procCPU reads utime+stime of pid from /proc (Linux; clock ticks at 100 Hz).
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100
}

const vp8Offer = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n" +
	"a=fingerprint:sha-256 0F:74:31:25:CB:A2:13:EC:28:6F:6D:2C:61:FF:5D:C2:BC:B9:DB:3D:98:14:8D:1A:BB:EA:33:0C:A4:60:A8:8E\r\n" +
	"a=setup:actpass\r\na=mid:0\r\na=sendonly\r\na=rtcp-mux\r\na=rtpmap:96 VP8/90000\r\n"
