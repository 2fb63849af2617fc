#!/usr/bin/env bash
# Install the test dependencies into ./.venv and run the whole test suite with pytest.
# Browser tests need Chromium: installed from Debian's packages when missing and we are root,
# otherwise they are skipped with a reason. PostgreSQL tests run when PACEBOT_TEST_POSTGRES_URL is set.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing chromium for the browser tests"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
exec .venv/bin/pytest -q "$@"
