package ts

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	segments     prometheus.Counter
	segmentBytes prometheus.Counter
	requests     *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		segments: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "edgenode", Subsystem: "origin_ts", Name: "segments_total",
			Help: "MPEG-TS segments completed.",
		}),
		segmentBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "edgenode", Subsystem: "origin_ts", Name: "segment_bytes_total",
			Help: "Bytes of MPEG-TS segments completed.",
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "edgenode", Subsystem: "origin_ts", Name: "requests_total",
			Help: "HTTP requests for legacy HLS by resource kind and status code.",
		}, []string{"kind", "code"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.segments, m.segmentBytes, m.requests} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, err
			}
		}
	}
	return m, nil
}
