#!/usr/bin/env bash
# The whole test suite: lint, formatting, type check, then unit and end-to-end tests.
# Run through `uv run --frozen` (see README), which installs the locked environment first.
set -euo pipefail
cd "$(dirname "$0")/.."
ruff check .
ruff format --check .
mypy
pytest "$@"
