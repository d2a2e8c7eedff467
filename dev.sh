#!/usr/bin/env bash
# One entry point for people and CI:  ./dev.sh demo  |  ./dev.sh test [pytest args]
# Installs what is missing first: mosquitto and espeak-ng (apt), a venv with the
# project and its test tools (pip). Safe to run again; it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")"

need_apt=()
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || need_apt+=(mosquitto)
command -v espeak-ng >/dev/null || need_apt+=(espeak-ng)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need_apt+=(postgresql)  # tests start their own server
python3 -c "import ensurepip, venv" 2>/dev/null || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "dev.sh: installing ${need_apt[*]} with apt-get" >&2
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# The Debian package starts a system mosquitto on port 1883; we never use it:
# the demo and the tests start their own on free loopback ports.
if [ ! -x .venv/bin/python ]; then
  echo "dev.sh: creating .venv" >&2
  python3 -m venv .venv
fi
stamp=.venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)
if [ ! -f "$stamp" ]; then
  echo "dev.sh: installing Python packages into .venv" >&2
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[test]'
  rm -f .venv/.installed-*; touch "$stamp"
fi

cmd=${1:-}
shift || true
case "$cmd" in
  demo) exec .venv/bin/soundbox demo "$@" ;;
  test) exec .venv/bin/python -m pytest "$@" ;;
  *) echo "usage: ./dev.sh demo | ./dev.sh test [pytest args]" >&2; exit 2 ;;
esac
