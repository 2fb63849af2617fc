#!/usr/bin/env bash
# Install the test dependencies into ./.venv, then check the import floors (lint-imports) and the
# types (mypy) and run the whole test suite with pytest, in parallel (pytest-xdist: one worker per
# CPU plus two, because the tests marked xdist_group("processes") and ("processes-jobs") run real
# Pacebot processes and mostly wait — one worker takes each group, one test after another, and the
# others keep the CPUs busy; PACEBOT_TEST_WORKERS=0 runs the suite in one process). Arguments go to
# pytest.
# Browser tests need Chromium: installed from Debian's packages when missing and we are root,
# otherwise they are skipped with a reason. PostgreSQL tests run when PACEBOT_TEST_POSTGRES_URL is set.
# Every step runs; the script fails if any of them failed (pytest collecting no tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
# Bytecode caches are written even where the environment turns them off: without them every xdist
# worker and every Pacebot process a test starts compiles the project again, and pytest rewrites
# the asserts of every test module again (about half of each worker's start-up).
unset PYTHONDONTWRITEBYTECODE
python3 -m venv .venv
# Installing is skipped while pyproject.toml is what the venv was last installed from (the package
# itself is installed editable: code changes need no reinstall).
stamp=.venv/.pacebot-test-install
wanted="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e '.[test]'
  echo "$wanted" > "$stamp"
fi
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing chromium for the browser tests"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

failed=()
echo "== lint-imports (the floors in pyproject.toml)"
.venv/bin/lint-imports || failed+=("lint-imports")
echo "== mypy"
.venv/bin/mypy || failed+=("mypy")
echo "== pytest"
status=0
workers="${PACEBOT_TEST_WORKERS:-$(( $(nproc 2>/dev/null || echo 1) + 2 ))}"
.venv/bin/pytest -q -n "$workers" --dist loadgroup "$@" || status=$?
if [ "$status" = 5 ]; then
  echo "pytest collected no tests" >&2
fi
[ "$status" = 0 ] || failed+=("pytest (exit $status)")
if [ "${#failed[@]}" -gt 0 ]; then
  echo "FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "all checks passed"
