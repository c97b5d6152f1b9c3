package rtpau_test

import (
	"errors"
	"fmt"

	"github.com/pion/rtp"

	"github.com/edgenode/edgenode/ingest/rtpau"
)

// A WHIP session's receive path for one H.264 track: reorder, depacketize,
// hand access units on, ask for a keyframe on loss.
func Example() {
	reorder := rtpau.NewReorder(64)
	dep := rtpau.NewH264(rtpau.NewClock(90000, nil))

	sps := []byte{0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x42, 0xa4, 0x80}
	pps := []byte{0x68, 0xcb, 0x83, 0xcb, 0x20}
	stapA := []byte{0x78, 0, byte(len(sps))}
	stapA = append(append(stapA, sps...), 0, byte(len(pps)))
	stapA = append(stapA, pps...)

	received := []*rtp.Packet{
		{Header: rtp.Header{SequenceNumber: 65535, Timestamp: 1000}, Payload: stapA},
		{Header: rtp.Header{SequenceNumber: 1, Timestamp: 4000, Marker: true}, Payload: []byte{0x41, 0x9a}}, // overtook 0
		{Header: rtp.Header{SequenceNumber: 0, Timestamp: 1000, Marker: true}, Payload: []byte{0x65, 0x88}},
		{Header: rtp.Header{SequenceNumber: 3, Timestamp: 10000, Marker: true}, Payload: []byte{0x41, 0x9b}}, // 2 lost
	}
	for _, pkt := range received {
		for _, p := range reorder.Push(pkt) {
			aus, err := dep.Push(p)
			if errors.Is(err, rtpau.ErrNeedKeyframe) {
				fmt.Println("send PLI")
			}
			for _, au := range aus {
				fmt.Printf("PTS %d key %v NAL units %d\n", au.PTS, au.Key, len(au.Payload))
			}
		}
	}
	for _, p := range reorder.Flush() {
		if _, err := dep.Push(p); errors.Is(err, rtpau.ErrNeedKeyframe) {
			fmt.Println("send PLI")
		}
	}
	st := dep.Stats()
	fmt.Printf("%dx%d frames %d lost %d waiting for keyframe %v\n", st.Width, st.Height, st.Frames, st.Lost, dep.NeedKeyframe())
	// Output:
	// PTS 0 key true NAL units 3
	// PTS 3000 key false NAL units 1
	// send PLI
	// 320x240 frames 2 lost 1 waiting for keyframe true
}
