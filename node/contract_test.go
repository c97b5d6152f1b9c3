package node_test

import (
	"github.com/edgenode/edgenode/ingest"
	"github.com/edgenode/edgenode/node"
)

// The integration contract with ingest: the node authorizes publishes and
// ingest drops them on request.
var (
	_ ingest.Streams        = (*node.Node)(nil)
	_ node.PublisherControl = (*ingest.Server)(nil)
)
