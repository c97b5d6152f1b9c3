package cmaf

import (
	"fmt"
	"strconv"
	"strings"
)

// File names under /cmaf/{id}/{rendition}/{kind}/. HLS playlists and DASH
// manifests reference exactly these (relative) names so that a CDN caches
// a single copy of each object.

// InitName is the file name of init segment id: "init<id>.mp4".
func InitName(id uint64) string { return fmt.Sprintf("init%d.mp4", id) }

// SegmentName is the file name of segment msn: "seg<msn>.m4s". DASH
// SegmentTemplate media="seg$Number$.m4s".
func SegmentName(msn uint64) string { return fmt.Sprintf("seg%d.m4s", msn) }

// PartName is the file name of part idx of segment msn:
// "part<msn>.<idx>.m4s".
func PartName(msn uint64, idx int) string { return fmt.Sprintf("part%d.%d.m4s", msn, idx) }

// FileKind tells which object a file name refers to.
type FileKind uint8

// File kinds.
const (
	FileUnknown FileKind = iota
	FileInit
	FileSegment
	FilePart
)

// ParseName parses a name made by InitName, SegmentName or PartName. For
// FileInit, n is the init id.
func ParseName(name string) (kind FileKind, n uint64, part int) {
	num := func(s string) (uint64, bool) {
		if s == "" || (len(s) > 1 && s[0] == '0') {
			return 0, false
		}
		v, err := strconv.ParseUint(s, 10, 64)
		return v, err == nil
	}
	switch {
	case strings.HasPrefix(name, "init") && strings.HasSuffix(name, ".mp4"):
		if v, ok := num(name[4 : len(name)-4]); ok {
			return FileInit, v, 0
		}
	case strings.HasPrefix(name, "seg") && strings.HasSuffix(name, ".m4s"):
		if v, ok := num(name[3 : len(name)-4]); ok {
			return FileSegment, v, 0
		}
	case strings.HasPrefix(name, "part") && strings.HasSuffix(name, ".m4s"):
		a, b, ok := strings.Cut(name[4:len(name)-4], ".")
		if !ok {
			break
		}
		v, ok1 := num(a)
		p, ok2 := num(b)
		if ok1 && ok2 && p < 1<<20 {
			return FilePart, v, int(p)
		}
	}
	return FileUnknown, 0, 0
}
