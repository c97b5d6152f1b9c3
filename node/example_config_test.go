package node_test

import (
	"testing"

	"github.com/edgenode/edgenode/node"
)

// The shipped example must stay valid as keys change.
func TestExampleConfigValidates(t *testing.T) {
	c, err := node.Load(node.LoadOptions{File: "../docs/edgenode.example.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	if c.PublicURL != "https://ingest1.example.com" || c.API.Listen != "10.0.0.10:9090" {
		t.Fatalf("example decoded as %+v", c)
	}
}
