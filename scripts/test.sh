#!/usr/bin/env bash
# Runs every test: the whole suite against SQLite, and again against PostgreSQL when
# NUGGETNET_TEST_DATABASE_URL names a server (each test gets its own fresh database there).
set -euo pipefail
cd "$(dirname "$0")/.."
NUGGETNET_SETUP_TOOLS=0 scripts/setup.sh

echo "== tests on SQLite"
env -u NUGGETNET_TEST_DATABASE_URL cargo test --all-targets "$@"

if [ -n "${NUGGETNET_TEST_DATABASE_URL:-}" ]; then
  echo "== tests on PostgreSQL ($NUGGETNET_TEST_DATABASE_URL)"
  cargo test --all-targets "$@"
else
  echo "== PostgreSQL run skipped: set NUGGETNET_TEST_DATABASE_URL=postgres://user@host/db to include it"
fi
