#!/usr/bin/env bash
# Install Pacebot into ./.venv and start it with the embedded default:
# SQLite storage, the web console, and a demo organisation.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e .
.venv/bin/pacebot db upgrade
.venv/bin/pacebot demo --if-empty
exec .venv/bin/pacebot serve
