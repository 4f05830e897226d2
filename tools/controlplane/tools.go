//go:build tools

// Package controlplane pins the Kubernetes commands that test/support builds:
// `go build` of these import paths from this module gives kube-apiserver,
// kube-controller-manager and kubectl of one release.
package controlplane

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
