//go:build tools

// Package etcd pins the etcd server that test/support builds with `go build`.
package etcd

import _ "go.etcd.io/etcd/server/v3"
