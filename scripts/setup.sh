#!/usr/bin/env bash
# Installs what building and testing NuggetNet BBS needs beyond a Rust toolchain: a C compiler
# (the embedded SQLite is compiled from source) and, for trying the BBS by hand, telnet and
# socat. Safe to run again: it installs only what is missing.
set -euo pipefail

need=()
command -v cc >/dev/null 2>&1 || need+=(build-essential)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
if [ "${NUGGETNET_SETUP_TOOLS:-1}" = 1 ]; then
  command -v socat >/dev/null 2>&1 || need+=(socat)
  command -v telnet >/dev/null 2>&1 || need+=(telnet)
fi

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup: please install ${need[*]} with your system's package manager" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
echo "setup: installing ${need[*]}" >&2
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
