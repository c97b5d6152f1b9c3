package node

import (
	"github.com/edgenode/edgenode/ingest"
	"github.com/edgenode/edgenode/turn"
)

// Test nodes take ephemeral media and TURN ports so that tests run beside
// each other and beside `make run`.
var (
	testIngest = ingest.Config{UDPPort: -1, TCPPort: -1}
	testTURN   = turn.Config{UDPListen: "127.0.0.1:0", TCPListen: "127.0.0.1:0", TLSListen: "127.0.0.1:0"}
)
