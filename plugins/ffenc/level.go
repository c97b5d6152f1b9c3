package ffenc

import (
	"fmt"
	"math"
)

// levelLimits is one row of ITU-T H.264 Table A-1 (level limits).
type levelLimits struct {
	idc     int // level_idc: 10 × the level number
	maxMBPS int // max macroblock processing rate, MB/s
	maxFS   int // max frame size, MBs
	maxBR   int // max video bit rate, kbit/s (Baseline/Main: cpbBrVclFactor 1000, §A.3.1)
}

// h264Levels is ITU-T H.264 (08/2021) Table A-1, level 1b left out.
var h264Levels = []levelLimits{
	{10, 1485, 99, 64},
	{11, 3000, 396, 192},
	{12, 6000, 396, 384},
	{13, 11880, 396, 768},
	{20, 11880, 396, 2000},
	{21, 19800, 792, 4000},
	{22, 20250, 1620, 4000},
	{30, 40500, 1620, 10000},
	{31, 108000, 3600, 14000},
	{32, 216000, 5120, 20000},
	{40, 245760, 8192, 20000},
	{41, 245760, 8192, 50000},
	{42, 522240, 8704, 50000},
	{50, 589824, 22080, 135000},
	{51, 983040, 36864, 240000},
	{52, 2073600, 36864, 240000},
	{60, 4177920, 139264, 240000},
	{61, 8355840, 139264, 480000},
	{62, 16711680, 139264, 800000},
}

// RungFrameRate is the frame rate the rungs' level is chosen for. WebRTC
// does not signal a frame rate; WHIP publishers (Chromium, OBS' default)
// send at most 30 fps.
const RungFrameRate = 30

// Level returns the lowest H.264 level_idc whose Table A-1 limits admit a
// w×h picture at fps frames/s and bitrate bit/s: frame size (MaxFS), each
// side at most √(8·MaxFS) macroblocks (§A.3.1 f, g), macroblock rate
// (MaxMBPS) and bit rate (MaxBR). The encoders' own choice when left to
// them is the highest level (x264 wrote 6.2 into every SPS), which tells
// a player nothing about what it takes to decode.
func Level(w, h int, fps float64, bitrate int) int {
	wmb, hmb := (w+15)/16, (h+15)/16
	fs := wmb * hmb
	for _, l := range h264Levels {
		side := math.Sqrt(8 * float64(l.maxFS))
		if fs <= l.maxFS && float64(wmb) <= side && float64(hmb) <= side &&
			float64(fs)*fps <= float64(l.maxMBPS) && bitrate <= l.maxBR*1000 {
			return l.idc
		}
	}
	return h264Levels[len(h264Levels)-1].idc
}

// LevelArg is level_idc as ffmpeg's -level takes it for libx264,
// h264_vaapi and h264_nvenc alike: "3", "3.1".
func LevelArg(idc int) string {
	if idc%10 == 0 {
		return fmt.Sprint(idc / 10)
	}
	return fmt.Sprintf("%d.%d", idc/10, idc%10)
}
