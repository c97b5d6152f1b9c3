package turn

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	allocs      *prometheus.GaugeVec   // transport
	allocsTotal *prometheus.CounterVec // transport
	bytes       *prometheus.CounterVec // direction
	packets     *prometheus.CounterVec // direction
	dropped     *prometheus.CounterVec // reason
	authFail    *prometheus.CounterVec // reason
	denied      prometheus.Counter
	rejected    *prometheus.CounterVec // reason

	// Curried children used per packet.
	toPeerBytes, fromPeerBytes     prometheus.Counter
	toPeerPackets, fromPeerPackets prometheus.Counter
	dropBandwidth, dropPolicy      prometheus.Counter
}

func newMetrics() *metrics {
	const ns, sub = "edgenode", "turn"
	m := &metrics{
		allocs: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "allocations", Help: "Current TURN allocations by client transport (udp, tcp, tls)."}, []string{"transport"}),
		allocsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "allocations_total", Help: "TURN allocations created, by client transport."}, []string{"transport"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "relayed_bytes_total", Help: "Payload bytes relayed, by direction (to_peer, from_peer)."}, []string{"direction"}),
		packets: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "relayed_packets_total", Help: "Datagrams relayed, by direction (to_peer, from_peer)."}, []string{"direction"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "dropped_packets_total", Help: "Relay datagrams dropped, by reason (bandwidth, policy)."}, []string{"reason"}),
		authFail: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "auth_failures_total", Help: "Requests refused with 401, by reason (credential, integrity)."}, []string{"reason"}),
		denied: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "denied_peers_total", Help: "CreatePermission/ChannelBind requests refused with 403 by the relay policy."}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "allocations_rejected_total", Help: "Allocate requests refused, by reason (user_quota, capacity, rate)."}, []string{"reason"}),
	}
	m.toPeerBytes, m.fromPeerBytes = m.bytes.WithLabelValues("to_peer"), m.bytes.WithLabelValues("from_peer")
	m.toPeerPackets, m.fromPeerPackets = m.packets.WithLabelValues("to_peer"), m.packets.WithLabelValues("from_peer")
	m.dropBandwidth, m.dropPolicy = m.dropped.WithLabelValues("bandwidth"), m.dropped.WithLabelValues("policy")
	for _, t := range []string{"udp", "tcp", "tls"} {
		m.allocs.WithLabelValues(t)
		m.allocsTotal.WithLabelValues(t)
	}
	return m
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.allocs, m.allocsTotal, m.bytes, m.packets, m.dropped, m.authFail, m.denied, m.rejected}
}

func (m *metrics) register(r prometheus.Registerer) error {
	if r == nil {
		return nil
	}
	var errs []error
	for _, c := range m.collectors() {
		if err := r.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (m *metrics) unregister(r prometheus.Registerer) {
	if r == nil {
		return
	}
	for _, c := range m.collectors() {
		r.Unregister(c)
	}
}
