// Package proto holds the generated gRPC/protobuf code of the encoder plugin
// contract (encoder.proto). Regenerate with `go generate ./plugins/proto`
// (needs protoc, protoc-gen-go v1.36.12 and protoc-gen-go-grpc v1.6.2).
package proto

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative encoder.proto
