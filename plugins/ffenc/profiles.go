package ffenc

import (
	"os"
	"path/filepath"
	"strconv"

	pb "github.com/edgenode/edgenode/plugins/proto"
)

// X264 is the software profile: libx264 veryfast/zerolatency, main
// profile, no B-frames, no scene-cut keyframes.
func X264() Profile {
	return Profile{Name: "x264", Encoder: "libx264", Scale: SoftwareScale, VideoArgs: X264Args}
}

// VAAPIDevice returns the first DRM render node, or "".
func VAAPIDevice() string {
	if d := os.Getenv("EDGENODE_VAAPI_DEVICE"); d != "" {
		return d
	}
	m, _ := filepath.Glob("/dev/dri/renderD*")
	if len(m) == 0 {
		return ""
	}
	return m[0]
}

// VAAPI is the Intel/AMD GPU profile (h264_vaapi). Scaling stays in
// software (cheap next to decoding) and frames are uploaded for encoding.
func VAAPI() Profile {
	dev := VAAPIDevice()
	return Profile{
		Name: "vaapi", Hardware: true, Encoder: "h264_vaapi",
		Check: func() string {
			if dev == "" {
				return "no VAAPI render node: /dev/dri/renderD* not found (no Intel/AMD GPU or its driver on this machine)"
			}
			if f, err := os.OpenFile(dev, os.O_RDWR, 0); err != nil {
				return "cannot open VAAPI render node " + dev + ": " + err.Error()
			} else {
				f.Close()
			}
			return ""
		},
		InputArgs: []string{"-vaapi_device", dev},
		Scale: func(w, h int) string {
			return SoftwareScale(w, h) + ",format=nv12,hwupload"
		},
		VideoArgs: func(r *pb.Rendition) []string {
			b := strconv.Itoa(int(r.GetBitrate()))
			return []string{"-c:v", "h264_vaapi", "-profile:v", "main", "-level", rungLevel(r), "-bf", "0", "-g", "1000000",
				"-rc_mode", "CBR", "-b:v", b, "-maxrate", b}
		},
	}
}

// NVENC is the NVIDIA profile (h264_nvenc, low-latency preset).
func NVENC() Profile {
	return Profile{
		Name: "nvenc", Hardware: true, Encoder: "h264_nvenc",
		Check: func() string {
			if _, err := os.Stat("/dev/nvidiactl"); err != nil {
				return "no NVIDIA device: /dev/nvidiactl not found (no NVIDIA GPU or driver on this machine)"
			}
			if _, err := os.Stat("/proc/driver/nvidia/version"); err != nil {
				return "NVIDIA kernel driver not loaded: /proc/driver/nvidia/version missing"
			}
			return ""
		},
		Scale: SoftwareScale,
		VideoArgs: func(r *pb.Rendition) []string {
			b := strconv.Itoa(int(r.GetBitrate()))
			return []string{"-c:v", "h264_nvenc", "-preset", "p1", "-tune", "ll", "-zerolatency", "1",
				"-rc", "cbr", "-profile:v", "main", "-level", rungLevel(r), "-bf", "0", "-forced-idr", "1", "-g", "1000000",
				"-b:v", b, "-maxrate", b, "-bufsize", b}
		},
	}
}
