#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh Debian/Ubuntu machine, then run all of it:
# system packages (OpenSSH server+client, GNU screen, tmux, rsvg-convert), the venv with the test extras, then
# the fast tier (`pytest -m fast`: the tests that start nothing, about a minute; a failure there stops here),
# the import contracts, ruff, mypy (for Linux, macOS and Windows) and the rest of pytest (`-m "not fast"`) on
# parallel workers (pytest-xdist, CADES_TEST_WORKERS of them, 4 unless set: most of these tests wait on sshd,
# Jupyter or the sandbox rather than compute), listing its 25 slowest tests at the end. Extra arguments go to both pytest runs (`-n 0`: no workers).
# Tests run in a random order (pytest-randomly; the seed is printed in pytest's header): every test must pass alone
# and after any other. Reproduce an order with `-p randomly --randomly-seed=N`; `-p no:randomly` runs in file order.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
[ -x /usr/sbin/sshd ] || need_apt+=(openssh-server)
command -v ssh >/dev/null || need_apt+=(openssh-client)
command -v screen >/dev/null || need_apt+=(screen)
command -v tmux >/dev/null || need_apt+=(tmux)
command -v rsync >/dev/null || need_apt+=(rsync)  # the transfers benchmark and tests compare with rsync
command -v rsvg-convert >/dev/null || need_apt+=(librsvg2-bin)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
# tests/realcloud: one of the real services' dependencies (ovs) compiles its C speedups when a compiler is there.
command -v cc >/dev/null || need_apt+=(gcc libc6-dev)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "==> installing system packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
# sshd refuses to start as root without its privilege-separation directory.
if [ "$(id -u)" -eq 0 ]; then mkdir -p /run/sshd && chmod 755 /run/sshd; fi

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  python3 -m venv .venv
fi
echo "==> installing cades-tui with its test extras, at the versions of the lock (config/requirements.lock)"
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -c config/requirements.lock -e '.[test]'

# pytest's exit code 5 is "no tests collected": fine for one tier (arguments may pick tests of one kind only).
echo "==> pytest, fast tier: the tests that start nothing (no sandbox, no SSH host, no subprocess)"
set +e
.venv/bin/python -m pytest -m fast "$@"
fast_rc=$?
set -e
if [ $fast_rc -ne 0 ] && [ $fast_rc -ne 5 ]; then
  echo "the fast tier failed: stopping before the slow checks" >&2
  exit $fast_rc
fi

# The real OpenStack services of tests/realcloud, in their own venv (.venv-realcloud), kept while they match
# tests/realcloud/requirements.txt. Under CI a failed install fails the run; elsewhere the tier's tests say why they skip.
echo "==> real OpenStack services for tests/realcloud"
if ! .venv/bin/python -m tests.realcloud.services install; then
  if [ "${CI:-}" = "true" ]; then echo "installing the real OpenStack services failed" >&2; exit 1; fi
  echo "warning: the real OpenStack services could not be installed; tests/realcloud will skip" >&2
fi

echo "==> import contracts"
.venv/bin/lint-imports
echo "==> ruff"
.venv/bin/ruff check tui tests
echo "==> mypy (linux, darwin, win32: the laptops cades-tui runs on)"
for platform in linux darwin win32; do
  .venv/bin/mypy --platform "$platform" tui
done
workers="${CADES_TEST_WORKERS:-4}"
echo "==> pytest, the rest: sandbox, SSH hosts, Jupyter, the app's processes ($workers workers)"
set +e
.venv/bin/python -m pytest -m "not fast" -n "$workers" --dist loadscope --durations=25 "$@"
rc=$?
set -e
if [ $rc -eq 5 ] && [ $fast_rc -eq 5 ]; then
  echo "pytest collected no tests: that is a failure here" >&2
  exit 1
fi
[ $rc -eq 5 ] && rc=0
exit $rc
