package ingest

import (
	"errors"
	"strings"
	"testing"
)

// RFC 8840 §9 / RFC 9725 §4.3.2 example shape.
const trickleFrag = "a=ice-options:trickle ice2\r\n" +
	"a=group:BUNDLE 0 1\r\n" +
	"m=audio 9 RTP/AVP 0\r\n" +
	"a=mid:0\r\n" +
	"a=ice-ufrag:EsAw\r\n" +
	"a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 ufrag EsAw network-id 1\r\n" +
	"a=candidate:3471623853 1 udp 2122194687 198.51.100.2 61765 typ host generation 0 ufrag EsAw network-id 2\r\n" +
	"a=end-of-candidates\r\n"

func TestParseSDPFrag(t *testing.T) {
	f, err := parseSDPFrag([]byte(trickleFrag))
	if err != nil {
		t.Fatal(err)
	}
	if f.Ufrag != "EsAw" || f.Pwd != "" || f.Options != "trickle ice2" {
		t.Errorf("credentials %q/%q options %q", f.Ufrag, f.Pwd, f.Options)
	}
	mids, cands := f.candidates()
	if len(cands) != 2 || mids[0] != "0" || !strings.HasPrefix(cands[1], "3471623853 1 udp") {
		t.Errorf("candidates %q mids %q", cands, mids)
	}
	if !f.Media[0].End {
		t.Error("end-of-candidates lost")
	}
}

func TestParseSDPFragRestart(t *testing.T) {
	f, err := parseSDPFrag([]byte("a=ice-ufrag:new1\na=ice-pwd:newpasswordnewpassword12\nm=audio 9 RTP/AVP 0\na=mid:0\n"))
	if err != nil || f.Ufrag != "new1" || f.Pwd != "newpasswordnewpassword12" {
		t.Fatalf("%+v %v", f, err)
	}
}

func TestParseSDPFragErrors(t *testing.T) {
	for name, body := range map[string]string{
		"not sdp":         "hello world",
		"short candidate": "m=audio 9 RTP/AVP 0\r\na=mid:0\r\na=candidate:1 1 udp 1 1.2.3.4\r\n",
		"mid before m":    "a=mid:0\r\n",
		"pwd no ufrag":    "a=ice-pwd:abcdefabcdefabcdefabcdef\r\n",
		"two ufrags":      "a=ice-ufrag:a\r\na=ice-ufrag:b\r\n",
		"huge":            strings.Repeat("a=x\r\n", maxFragSize),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := parseSDPFrag([]byte(body)); !errors.Is(err, ErrBadSDP) {
				t.Fatalf("err = %v, want ErrBadSDP", err)
			}
		})
	}
}

func TestRestartFragRoundTrip(t *testing.T) {
	out := marshalRestartFrag("uf", "pwpwpwpwpwpwpwpwpwpwpwpw", []string{"0", "1"}, []string{"1 1 udp 2130706431 127.0.0.1 5000 typ host"})
	f, err := parseSDPFrag([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if f.Ufrag != "uf" || len(f.Media) != 2 || len(f.Media[0].Candidates) != 1 {
		t.Fatalf("round trip lost data: %+v", f)
	}
}

func FuzzParseSDPFrag(f *testing.F) {
	f.Add([]byte(trickleFrag))
	f.Add([]byte("a=ice-ufrag:x\r\na=ice-pwd:y\r\n"))
	f.Add([]byte("a=candidate:1 1 udp 1 1.2.3.4 5 typ host\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := parseSDPFrag(b)
		if err != nil {
			if !errors.Is(err, ErrBadSDP) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		if fr.Pwd != "" && fr.Ufrag == "" {
			t.Fatal("accepted ice-pwd without ice-ufrag")
		}
		mids, cands := fr.candidates()
		if len(mids) != len(cands) {
			t.Fatal("mids and candidates out of step")
		}
		for _, c := range cands {
			if len(strings.Fields(c)) < 8 {
				t.Fatalf("accepted short candidate %q", c)
			}
		}
	})
}
