#!/usr/bin/env bash
# Runs the benchmark with other FastCGI implementations beside fcgi-server:
# the same hello/echo applications (benches/compare/), built here from
# Debian's packages, PyPI and crates.io, started the same way (socket on
# fd 0) and driven through the same scenarios in the same run.
#
#   bash benches/compare.sh            (as root, or with sudo for apt-get)
set -euo pipefail
cd "$(dirname "$0")/.."
out="$PWD/target/compare"
mkdir -p "$out"
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

export DEBIAN_FRONTEND=noninteractive
as_root apt-get update -qq
as_root apt-get install -y -qq --no-install-recommends libfcgi-dev golang-go >/dev/null
python3 -m pip install --quiet flup

echo "== building the other implementations' apps in $out"
cc -O2 -o "$out/libfcgi" benches/compare/libfcgi.c -lfcgi -lpthread
(cd benches/compare/go && GOFLAGS=-mod=mod go build -o "$out/go-fcgi" .)
cargo build --quiet --release --manifest-path benches/compare/rust-fastcgi/Cargo.toml \
    --target-dir "$out/rust-fastcgi"
rust="$out/rust-fastcgi/release/rust-fastcgi-bench"
# The project's own apps linked statically (glibc's static libc): what a
# user can do for start-up time, measured beside the default build.
triple="$(rustc -vV | sed -n 's/^host: //p')"
RUSTFLAGS="-C target-feature=+crt-static" cargo build --quiet --release \
    --example hello --example echo --target "$triple" --target-dir "$out/static"
static="$out/static/$triple/release/examples"
flup="python3 $PWD/benches/compare/flup_app.py"

cargo bench --bench fcgi -- \
    --other "libfcgi=$out/libfcgi hello 1|$out/libfcgi echo 1" \
    --other "libfcgi threaded (8)=$out/libfcgi hello 8|$out/libfcgi echo 8" \
    --other "go net/http/fcgi=$out/go-fcgi hello|$out/go-fcgi echo" \
    --other "python flup=$flup hello|$flup echo" \
    --other "rust fastcgi crate=$rust hello|$rust echo" \
    --other "fcgi-server, static=$static/hello|$static/echo" \
    "$@"
