package node_test

import (
	"github.com/edgenode/edgenode/ingest"
	"github.com/edgenode/edgenode/internal/store"
	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/origin"
	"github.com/edgenode/edgenode/origin/ts"
	"github.com/edgenode/edgenode/turn"
)

// The integration contracts: the node authorizes publishes and ingest drops
// them on request; the store keeps the origin's numbering and TURN's secret.
var (
	_ ingest.Streams        = (*node.Node)(nil)
	_ node.PublisherControl = (*ingest.Server)(nil)
	_ origin.State          = (*store.Store)(nil)
	_ ts.State              = (*store.Store)(nil)
	_ turn.Secrets          = (*store.Store)(nil)
)
