package store_test

import (
	"fmt"
	"os"

	"github.com/edgenode/edgenode/internal/store"
)

func Example() {
	dir, _ := os.MkdirTemp("", "edgenode-example")
	defer os.RemoveAll(dir)
	s, err := store.Open(dir, store.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	st, _ := s.CreateStream("demo", true)
	st, _ = s.UpdateStream(st.ID, func(st *store.Stream) error { st.Active = false; return nil })
	fmt.Println(st.ID, st.Name, st.Active)
	// Output: 1 demo false
}
