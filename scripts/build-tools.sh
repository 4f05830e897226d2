#!/usr/bin/env bash
# Builds the packaging tools the tests run (helm v3 and kustomize v5) with `go install` from their
# pinned module versions, into a cache directory keyed by those versions, and installs shellcheck
# from Debian when missing. Prints the directory that holds helm and kustomize.
# test/e2e/packaging.test.ts finds the same directory through the same versions.
set -euo pipefail

helm_version=v3.22.0      # helm.sh/helm/v3
kustomize_version=v5.8.2  # sigs.k8s.io/kustomize/kustomize/v5
dir="${XDG_CACHE_HOME:-$HOME/.cache}/datamigration-operator/tools-helm-$helm_version-kustomize-$kustomize_version"

if [[ ! -x "$dir/helm" || ! -x "$dir/kustomize" ]]; then
  # Concurrent runs wait for the first build instead of building into the same folder.
  mkdir -p "$(dirname "$dir")"
  exec 9>"$dir.lock"
  flock 9
fi
if [[ ! -x "$dir/helm" || ! -x "$dir/kustomize" ]]; then
  command -v go >/dev/null || { echo "go is required to build helm and kustomize" >&2; exit 1; }
  rm -rf "$dir.partial" && mkdir -p "$dir.partial"
  start=$SECONDS
  echo "building helm $helm_version and kustomize $kustomize_version into $dir (a few minutes the first time)" >&2
  # `go install module@version` builds with the dependency versions of that module's own go.mod.
  (
    cd "$dir.partial"
    export GOBIN="$dir.partial" GOFLAGS="-mod=mod" CGO_ENABLED=0
    # Like helm's Makefile: the default Kubernetes version of `helm template` and `helm lint`
    # follows the client-go that helm is built with (v0.37 -> 1.37), not the fallback v1.20.
    helm_gomod=$(go mod download -json "helm.sh/helm/v3@$helm_version" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
    client_go=$(awk '$1 == "k8s.io/client-go" { print $2 }' "$helm_gomod" | head -n 1)
    [[ $client_go =~ ^v0\.([0-9]+)\. ]] || { echo "cannot read the client-go version of helm $helm_version" >&2; exit 1; }
    kube_minor=${BASH_REMATCH[1]}
    ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$helm_version"
    for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
      ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$kube_minor"
    done
    go install -trimpath -ldflags="$ldflags" "helm.sh/helm/v3/cmd/helm@$helm_version"
    go install -trimpath -ldflags="-s -w" "sigs.k8s.io/kustomize/kustomize/v5@$kustomize_version"
  )
  # Publish both at once, so an interrupted build is never mistaken for a finished one.
  rm -rf "$dir" && mv "$dir.partial" "$dir"
  echo "built in $((SECONDS - start)) s" >&2
fi

if ! command -v shellcheck >/dev/null; then
  sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "need root (or sudo) to install shellcheck" >&2; exit 1; }
    sudo=(sudo)
  fi
  echo "installing Debian package: shellcheck" >&2
  "${sudo[@]}" apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends shellcheck >&2
fi

echo "$dir"
