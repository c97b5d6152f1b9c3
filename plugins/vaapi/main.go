// Command vaapi is the edgenode encoder plugin using ffmpeg's h264_vaapi.
// The node starts it through hashicorp/go-plugin (see plugins/shared); it is
// not meant to be run by hand. Build: go build -o bin/plugins/vaapi ./plugins/vaapi
package main

import (
	"os"

	"github.com/hashicorp/go-hclog"

	"github.com/edgenode/edgenode/plugins/ffenc"
	"github.com/edgenode/edgenode/plugins/shared"
)

func main() {
	logger := hclog.New(&hclog.LoggerOptions{Name: "vaapi", Output: os.Stderr, JSONFormat: true, Level: hclog.Info})
	p := &ffenc.Plugin{Profile: ffenc.VAAPI(), Logger: logger}
	ffenc.ApplyFaults(p)
	shared.Serve(p, logger)
}
