#!/usr/bin/env bash
# Builds the control-plane binaries the tests run (kube-apiserver, kube-controller-manager,
# kubectl, etcd) with `go build` from the pinned Go modules in tools/, into a cache directory
# keyed by their versions. Prints that directory. With KUBEBUILDER_ASSETS set (the envtest
# convention), uses the binaries there instead and builds nothing.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
binaries=(etcd kube-apiserver kube-controller-manager kubectl)

if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
  for binary in "${binaries[@]}"; do
    [[ -x "$KUBEBUILDER_ASSETS/$binary" ]] || { echo "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS has no $binary" >&2; exit 1; }
  done
  echo "$KUBEBUILDER_ASSETS"
  exit 0
fi

module_version() { awk -v m="$1" '$1 == "require" && $2 == m { print $3 } $1 == m { print $2 }' "$2" | head -n 1; }
kubernetes=$(module_version k8s.io/kubernetes "$root/tools/controlplane/go.mod")
etcd=$(module_version go.etcd.io/etcd/server/v3 "$root/tools/etcd/go.mod")
dir="${XDG_CACHE_HOME:-$HOME/.cache}/datamigration-operator/controlplane-kubernetes-$kubernetes-etcd-$etcd"

missing=()
for binary in "${binaries[@]}"; do
  [[ -x "$dir/$binary" ]] || missing+=("$binary")
done
if (( ${#missing[@]} > 0 )); then
  # Two test runs started at once must not build into the same folder: the second waits for the
  # first and then finds the binaries.
  mkdir -p "$(dirname "$dir")"
  exec 9>"$dir.lock"
  flock 9
  missing=()
  for binary in "${binaries[@]}"; do
    [[ -x "$dir/$binary" ]] || missing+=("$binary")
  done
fi
if (( ${#missing[@]} > 0 )); then
  rm -rf "$dir.partial"
  command -v go >/dev/null || { echo "go is required to build the control plane (or set KUBEBUILDER_ASSETS)" >&2; exit 1; }
  mkdir -p "$dir.partial"
  start=$SECONDS
  echo "building Kubernetes $kubernetes and etcd $etcd into $dir (a few minutes the first time)" >&2
  flags=(-trimpath -ldflags='-s -w')
  (cd "$root/tools/controlplane" && go build "${flags[@]}" -o "$dir.partial/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kubectl)
  (cd "$root/tools/etcd" && go build "${flags[@]}" -o "$dir.partial/etcd" go.etcd.io/etcd/server/v3)
  # Publish all four at once, so an interrupted build is never mistaken for a finished one.
  rm -rf "$dir" && mv "$dir.partial" "$dir"
  echo "built in $((SECONDS - start)) s" >&2
fi
echo "$dir"
