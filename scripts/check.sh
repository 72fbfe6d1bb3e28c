#!/usr/bin/env bash
# The whole test suite: lint, formatting, type check, then unit and end-to-end tests.
# Run through `uv run --frozen` (see README), which installs the locked environment first.
set -euo pipefail
cd "$(dirname "$0")/.."
ruff check .
ruff format --check .
mypy

# The memory page's browser test drives Debian's chromium (Playwright never downloads one here).
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "scripts/check.sh: the browser test needs /usr/bin/chromium, and installing it takes root and apt-get." >&2
    echo "  Run as root on Debian/Ubuntu, or install it first: sudo apt-get install -y chromium" >&2
    exit 1
  fi
  echo "Installing Debian's chromium for the browser test..."
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
fi

pytest "$@"
