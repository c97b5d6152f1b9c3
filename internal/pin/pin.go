//go:build tools

// Package pin keeps the modules the node is built from in go.mod while the
// packages that use them are being written, so that `go mod tidy` does not
// drop them. Remove an import once a real package uses it.
package pin

import (
	_ "github.com/Eyevinn/dash-mpd/mpd"
	_ "github.com/bluenviron/gohlslib/v2"
	_ "github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	_ "github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	_ "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	_ "github.com/chromedp/chromedp"
	_ "github.com/coreos/go-systemd/v22/daemon"
	_ "github.com/hashicorp/go-plugin"
	_ "github.com/pion/interceptor"
	_ "github.com/pion/rtcp"
	_ "github.com/pion/rtp"
	_ "github.com/pion/sdp/v3"
	_ "github.com/pion/stun/v3"
	_ "github.com/pion/turn/v4"
	_ "github.com/pion/webrtc/v4"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/collectors"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "go.etcd.io/bbolt"
	_ "go.uber.org/goleak"
	_ "google.golang.org/grpc"
	_ "google.golang.org/protobuf/proto"
	_ "gopkg.in/yaml.v3"
)
