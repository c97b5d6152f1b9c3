package ingest

import "testing"

// BenchmarkCheckOffer: validating and filtering a Chromium offer, the part
// of a WHIP POST before any PeerConnection exists.
func BenchmarkCheckOffer(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(chromeOffer)))
	for b.Loop() {
		if _, _, err := checkOffer([]byte(chromeOffer)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseSDPFrag: parsing a trickle PATCH body.
func BenchmarkParseSDPFrag(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(trickleFrag)))
	for b.Loop() {
		if _, err := parseSDPFrag([]byte(trickleFrag)); err != nil {
			b.Fatal(err)
		}
	}
}
