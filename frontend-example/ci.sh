#!/usr/bin/env bash
# Everything CI needs for the frontend example, from a fresh machine: Debian's Chromium, the npm
# packages from package-lock.json, the codegen and type checks, the build, and the end-to-end
# test against the real server (target/debug/plugboard, built by the test when missing).
set -euo pipefail
cd "$(dirname "$0")"

if [ ! -x /usr/bin/chromium ]; then
  echo "== installing chromium"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

echo "== npm ci"
npm ci --no-audit --no-fund

echo "== src/gql is up to date with ../schema.graphql"
npm run --silent codegen:check

echo "== type check"
npm run --silent typecheck

echo "== build and end-to-end test (screenshots in frontend-example/test-results/)"
npm run --silent test:e2e
