package cmaf

import (
	"encoding/binary"
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
)

// box returns an ISO BMFF box of type typ around payload.
func box(typ string, payload ...[]byte) []byte {
	n := 8
	for _, p := range payload {
		n += len(p)
	}
	b := make([]byte, 8, n)
	binary.BigEndian.PutUint32(b, uint32(n))
	copy(b[4:], typ)
	for _, p := range payload {
		b = append(b, p...)
	}
	return b
}

// brands builds the payload of a ftyp/styp box.
func brands(major string, minor uint32, compat ...string) []byte {
	b := make([]byte, 8, 8+4*len(compat))
	copy(b, major)
	binary.BigEndian.PutUint32(b[4:], minor)
	for _, c := range compat {
		b = append(b, c...)
	}
	return b
}

// CMAF §7.2: header brand cmfc (structural brand), cmf2 for the stricter
// constraints; iso6 for tfdt v1 etc.; hlsf not needed.
var ftypBox = box("ftyp", brands("cmf2", 0, "cmf2", "cmfc", "iso6", "isom", "mp41", "dash"))

// CMAF §7.3.3: segments carry styp; cmfs (segment), cmfl (chunk) brands.
var stypBox = box("styp", brands("msdh", 0, "msdh", "msix", "cmfs", "cmfc", "cmf2"))

// marshalInit builds ftyp+moov for one track, using mediacommon's writer
// for moov and replacing its ftyp by the CMAF one.
func marshalInit(timescale uint32, codec codecs.Codec) ([]byte, error) {
	init := fmp4.Init{Tracks: []*fmp4.InitTrack{{ID: 1, TimeScale: timescale, Codec: codec}}}
	var buf seekablebuffer.Buffer
	if err := init.Marshal(&buf); err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	b := buf.Bytes()
	if len(b) < 8 || string(b[4:8]) != "ftyp" {
		return nil, fmt.Errorf("init: unexpected first box")
	}
	n := binary.BigEndian.Uint32(b)
	out := make([]byte, 0, len(ftypBox)+len(b)-int(n))
	out = append(out, ftypBox...)
	return append(out, b[n:]...), nil
}

// marshalPart builds one CMAF chunk (moof+mdat) of track 1.
func marshalPart(seq uint32, baseTime uint64, samples []*fmp4.Sample) ([]byte, error) {
	p := fmp4.Part{SequenceNumber: seq, Tracks: []*fmp4.PartTrack{{ID: 1, BaseTime: baseTime, Samples: samples}}}
	var buf seekablebuffer.Buffer
	if err := p.Marshal(&buf); err != nil {
		return nil, fmt.Errorf("part: %w", err)
	}
	return buf.Bytes(), nil
}
