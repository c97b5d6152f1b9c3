package ingest

import (
	"errors"
	"strings"
	"testing"
)

// chromeOffer is the shape of a Chromium offer after setCodecPreferences
// was not called: VP8 first, H.264 in several profiles, RTX, RED/ULPFEC.
const chromeOffer = "v=0\r\n" +
	"o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n" +
	"s=-\r\n" +
	"t=0 0\r\n" +
	"a=group:BUNDLE 0 1\r\n" +
	"a=extmap-allow-mixed\r\n" +
	"a=msid-semantic: WMS\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\n" +
	"c=IN IP4 0.0.0.0\r\n" +
	"a=rtcp:9 IN IP4 0.0.0.0\r\n" +
	"a=ice-ufrag:abcd\r\n" +
	"a=ice-pwd:abcdefghijklmnopqrstuvwx\r\n" +
	"a=ice-options:trickle\r\n" +
	"a=fingerprint:sha-256 0F:74:31:25:CB:A2:13:EC:28:6F:6D:2C:61:FF:5D:C2:BC:B9:DB:3D:98:14:8D:1A:BB:EA:33:0C:A4:60:A8:8E\r\n" +
	"a=setup:actpass\r\n" +
	"a=mid:0\r\n" +
	"a=sendonly\r\n" +
	"a=rtcp-mux\r\n" +
	"a=rtpmap:111 opus/48000/2\r\n" +
	"a=rtcp-fb:111 transport-cc\r\n" +
	"a=fmtp:111 minptime=10;useinbandfec=1\r\n" +
	"a=rtpmap:63 red/48000/2\r\n" +
	"a=fmtp:63 111/111\r\n" +
	"a=rtpmap:9 G722/8000\r\n" +
	"a=rtpmap:0 PCMU/8000\r\n" +
	"a=rtpmap:8 PCMA/8000\r\n" +
	"a=rtpmap:13 CN/8000\r\n" +
	"a=rtpmap:110 telephone-event/48000\r\n" +
	"a=rtpmap:126 telephone-event/8000\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 106 107 127 125\r\n" +
	"c=IN IP4 0.0.0.0\r\n" +
	"a=rtcp:9 IN IP4 0.0.0.0\r\n" +
	"a=ice-ufrag:abcd\r\n" +
	"a=ice-pwd:abcdefghijklmnopqrstuvwx\r\n" +
	"a=ice-options:trickle\r\n" +
	"a=fingerprint:sha-256 0F:74:31:25:CB:A2:13:EC:28:6F:6D:2C:61:FF:5D:C2:BC:B9:DB:3D:98:14:8D:1A:BB:EA:33:0C:A4:60:A8:8E\r\n" +
	"a=setup:actpass\r\n" +
	"a=mid:1\r\n" +
	"a=sendonly\r\n" +
	"a=rtcp-mux\r\n" +
	"a=rtcp-rsize\r\n" +
	"a=rtpmap:96 VP8/90000\r\n" +
	"a=rtcp-fb:96 nack\r\n" +
	"a=rtpmap:97 rtx/90000\r\n" +
	"a=fmtp:97 apt=96\r\n" +
	"a=rtpmap:102 H264/90000\r\n" +
	"a=rtcp-fb:102 nack\r\n" +
	"a=rtcp-fb:102 nack pli\r\n" +
	"a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n" +
	"a=rtpmap:103 rtx/90000\r\n" +
	"a=fmtp:103 apt=102\r\n" +
	"a=rtpmap:106 H264/90000\r\n" +
	"a=fmtp:106 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f\r\n" +
	"a=rtpmap:107 rtx/90000\r\n" +
	"a=fmtp:107 apt=106\r\n" +
	"a=rtpmap:127 h264/90000\r\n" +
	"a=fmtp:127 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f\r\n" +
	"a=rtpmap:125 ulpfec/90000\r\n"

func TestCheckOfferKeepsOnlyWhatWeIngest(t *testing.T) {
	out, sum, err := checkOffer([]byte(chromeOffer))
	if err != nil {
		t.Fatal(err)
	}
	if !sum.Video || !sum.Audio {
		t.Fatalf("summary %+v: want video and audio", sum)
	}
	if got := strings.Join(sum.VideoProfiles, ","); got != "42001f,4d001f" {
		t.Errorf("kept profiles %q, want 42001f,4d001f", got)
	}
	for _, want := range []string{
		"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n", "m=video 9 UDP/TLS/RTP/SAVPF 102 103 127\r\n",
		"a=rtpmap:127 H264/90000", "a=fmtp:103 apt=102", "a=rtcp-fb:102 nack pli",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("filtered offer lacks %q:\n%s", want, out)
		}
	}
	for _, gone := range []string{"VP8", "a=fmtp:106", "a=rtpmap:107", "ulpfec", "PCMU", "red/48000", "a=fmtp:97"} {
		if strings.Contains(out, gone) {
			t.Errorf("filtered offer still has %q", gone)
		}
	}
}

func replaceOffer(old, new string) []byte {
	return []byte(strings.Replace(chromeOffer, old, new, 1))
}

func TestCheckOfferRejects(t *testing.T) {
	vp8Only := strings.Replace(chromeOffer, "m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 106 107 127 125", "m=video 9 UDP/TLS/RTP/SAVPF 96 97", 1)
	for _, tc := range []struct {
		name  string
		offer []byte
		want  error
		body  string
	}{
		{"empty", nil, ErrBadSDP, "empty body"},
		{"garbage", []byte("hello"), ErrBadSDP, "malformed SDP"},
		{"vp8 only", []byte(vp8Only), ErrUnservable, "offer has video VP8 only; this node ingests H.264 (packetization-mode=1) and Opus"},
		{"mode 0 only", replaceOffer("m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 106 107 127 125", "m=video 9 UDP/TLS/RTP/SAVPF 106"), ErrUnservable, "video H264 (packetization-mode=0) only"},
		{"high 4:4:4", offerBytes(replaceOffer("m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 106 107 127 125", "m=video 9 UDP/TLS/RTP/SAVPF 102")).
			// profile_idc 0xf4 (High 4:4:4 Predictive)
			replace("profile-level-id=42001f", "profile-level-id=f4001f"), ErrUnservable, "H264 (profile-level-id=f4001f)"},
		{"no opus", replaceOffer("m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126", "m=audio 9 UDP/TLS/RTP/SAVPF 0 8"), ErrUnservable, "audio PCMU, PCMA only"},
		{"recvonly", replaceOffer("a=mid:1\r\na=sendonly", "a=mid:1\r\na=recvonly"), ErrUnservable, "recvonly"},
		{"setup active", replaceOffer("a=setup:actpass", "a=setup:active"), ErrUnservable, "setup:active"},
		{"two video", []byte(chromeOffer + chromeOffer[strings.Index(chromeOffer, "m=video"):]), ErrUnservable, "more than one video"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := checkOffer(tc.offer)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.body) {
				t.Errorf("error %q does not say %q", err, tc.body)
			}
		})
	}
}

type offerBytes []byte

func (b offerBytes) replace(old, new string) []byte {
	return []byte(strings.Replace(string(b), old, new, 1))
}

func TestCheckOfferCaseInsensitiveMime(t *testing.T) {
	// GStreamer writes OPUS; FACTS: compare mime types case-insensitively.
	out, sum, err := checkOffer(replaceOffer("a=rtpmap:111 opus/48000/2", "a=rtpmap:111 OPUS/48000/2"))
	if err != nil || !sum.Audio {
		t.Fatalf("OPUS rejected: %v %+v", err, sum)
	}
	if !strings.Contains(out, "a=rtpmap:111 opus/48000/2") {
		t.Errorf("rtpmap not normalised:\n%s", out)
	}
}

func TestStartBitrateAnswer(t *testing.T) {
	ans := "v=0\r\na=rtpmap:102 H264/90000\r\na=fmtp:102 packetization-mode=1\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10\r\n"
	got := startBitrateAnswer(ans, 2500)
	if !strings.Contains(got, "a=fmtp:102 packetization-mode=1;x-google-start-bitrate=2500\r\n") {
		t.Errorf("no start bitrate on H.264:\n%s", got)
	}
	if strings.Contains(got, "minptime=10;x-google") {
		t.Errorf("start bitrate on Opus:\n%s", got)
	}
}

func FuzzCheckOffer(f *testing.F) {
	f.Add([]byte(chromeOffer))
	f.Add(replaceOffer("a=rtpmap:111 opus/48000/2", "a=rtpmap:111 OPUS/48000"))
	f.Add([]byte("v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 1\r\na=rtpmap:1 H264\r\na=fmtp:1\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		out, sum, err := checkOffer(b)
		if err != nil {
			if !errors.Is(err, ErrBadSDP) && !errors.Is(err, ErrUnservable) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		if !sum.Video && !sum.Audio {
			t.Fatalf("accepted an offer with nothing to ingest")
		}
		// What we pass on must itself be an acceptable offer.
		if _, _, err := checkOffer([]byte(out)); err != nil {
			t.Fatalf("filtered offer rejected: %v\n%q", err, out)
		}
	})
}
