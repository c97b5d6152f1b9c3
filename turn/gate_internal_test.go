package turn

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/pion/stun/v3"
)

func channelData(ch uint16, payload []byte) []byte {
	b := make([]byte, 4, 4+len(payload)+3)
	binary.BigEndian.PutUint16(b[0:], ch)
	binary.BigEndian.PutUint16(b[2:], uint16(len(payload)))
	b = append(b, payload...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// TestGatedConnFraming feeds a stream cut at every awkward place and
// checks that pion would read back exactly the frames that were sent: a
// STUN message, a ChannelData larger than pion's 1600-byte buffer (read in
// pieces), unpadded lengths, and many frames in one write.
func TestGatedConnFraming(t *testing.T) {
	s := New(Config{}, Deps{})
	l := &gatedListener{s: s, conns: map[*gatedConn]struct{}{}}
	client, server := net.Pipe()
	defer client.Close()
	gc := &gatedConn{Conn: server, l: l}
	l.done.Add(1)
	defer gc.Close()

	bind, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	frames := [][]byte{bind.Raw, channelData(0x4001, bytes.Repeat([]byte{7}, 5000)), channelData(0x4002, []byte{1, 2, 3})}
	for i := range 50 {
		frames = append(frames, channelData(0x4003, bytes.Repeat([]byte{byte(i)}, i)))
	}
	var stream []byte
	for _, f := range frames {
		stream = append(stream, f...)
	}
	go func() {
		// Odd-sized writes: 1, 2, 3, … bytes, then the rest at once.
		rest := stream
		for n := 1; n < 40 && len(rest) > 0; n++ {
			k := min(n, len(rest))
			if _, err := client.Write(rest[:k]); err != nil {
				return
			}
			rest = rest[k:]
		}
		_, _ = client.Write(rest)
		_ = client.Close()
	}()

	var got []byte
	buf := make([]byte, 1600)
	for {
		n, err := gc.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, stream) {
		t.Fatalf("read back %d bytes, sent %d (first difference at %d)", len(got), len(stream), firstDiff(got, stream))
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestGatedConnTimeouts: a stream that never sends a frame, or goes silent
// after one, ends with a timeout.
func TestGatedConnTimeouts(t *testing.T) {
	oldFirst, oldIdle := firstFrameTimeout, streamIdle
	firstFrameTimeout, streamIdle = 50*time.Millisecond, 1500*time.Millisecond
	defer func() { firstFrameTimeout, streamIdle = oldFirst, oldIdle }()
	s := New(Config{}, Deps{})
	l := &gatedListener{s: s, conns: map[*gatedConn]struct{}{}}
	for _, sendFirst := range []bool{false, true} {
		client, server := net.Pipe()
		gc := &gatedConn{Conn: server, l: l}
		l.done.Add(1)
		if sendFirst {
			go func() { _, _ = client.Write(channelData(0x4000, []byte{1, 2, 3, 4})) }()
		}
		buf := make([]byte, 1600)
		start := time.Now()
		var err error
		for err == nil {
			_, err = gc.Read(buf)
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("sendFirst=%v: %v, want a timeout", sendFirst, err)
		}
		if sendFirst && (!gc.framed || gc.deadline.Before(start.Add(streamIdle))) {
			t.Errorf("a stream that sent a frame was held to the first-frame timeout (deadline %v after start)", gc.deadline.Sub(start))
		}
		_ = gc.Close()
		_ = client.Close()
	}
}
