package rtpau

import (
	"bytes"
	"encoding/base64"
	"errors"
	"testing"
)

func TestSpropParameterSets(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString
	for _, tc := range []struct {
		fmtp     string
		sps, pps []byte
		err      bool
	}{
		{"profile-level-id=42e01f;packetization-mode=1;sprop-parameter-sets=" + b64(sps320) + "," + b64(ppsX), sps320, ppsX, false},
		{"packetization-mode=1; Sprop-Parameter-Sets = " + b64(ppsX) + "," + b64(sps640) + " ;x=y", sps640, ppsX, false},
		{"packetization-mode=1;sprop-parameter-sets=" + base64.RawStdEncoding.EncodeToString(sps320), sps320, nil, false},
		{"packetization-mode=1;profile-level-id=42e01f", nil, nil, false},
		{"sprop-parameter-sets=!!!", nil, nil, true},
		{"", nil, nil, false},
	} {
		sps, pps, err := SpropParameterSets(tc.fmtp)
		if (err != nil) != tc.err || (err != nil && !errors.Is(err, ErrMalformed)) {
			t.Fatalf("%q: err %v", tc.fmtp, err)
		}
		if !bytes.Equal(sps, tc.sps) || !bytes.Equal(pps, tc.pps) {
			t.Fatalf("%q: sps %x pps %x", tc.fmtp, sps, pps)
		}
	}
}

// TestH264OutOfBandParameterSets: a sender that signals SPS/PPS only in the
// SDP still gets decodable IDRs.
func TestH264OutOfBandParameterSets(t *testing.T) {
	sps, pps, err := SpropParameterSets("packetization-mode=1;sprop-parameter-sets=" +
		base64.StdEncoding.EncodeToString(sps320) + "," + base64.StdEncoding.EncodeToString(ppsX))
	if err != nil {
		t.Fatal(err)
	}
	f := newFeeder(t)
	f.h.SetParameterSets(sps, pps)
	f.push(0, true, idr1)
	f.push(3000, true, pfr)
	f.want("pts=0 key=true [7 8 5]", "pts=3000 key=false [1]")
	if s := f.h.Stats(); s.Width != 320 || s.Height != 240 {
		t.Fatalf("stats %+v", s)
	}
	if tr := f.h.Track(); !bytes.Equal(tr.SPS, sps320) || !bytes.Equal(tr.PPS, ppsX) {
		t.Fatalf("track %+v", tr)
	}
}

func FuzzSpropParameterSets(f *testing.F) {
	f.Add("profile-level-id=42e01f;packetization-mode=1;sprop-parameter-sets=Z0LAHtkA,aMuDyyA=")
	f.Add("sprop-parameter-sets=,,=;;")
	f.Fuzz(func(t *testing.T, fmtp string) {
		sps, pps, err := SpropParameterSets(fmtp)
		if err != nil {
			return
		}
		if (sps != nil && sps[0]&0x1f != nalSPS) || (pps != nil && pps[0]&0x1f != nalPPS) {
			t.Fatalf("wrong NAL types: %x %x", sps, pps)
		}
		NewH264(nil).SetParameterSets(sps, pps)
	})
}
