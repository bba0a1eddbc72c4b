# Shared by scripts/run.sh and scripts/test.sh: a virtual environment and the system packages
# the product needs, installed from the distribution's package registry when missing.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

apt_install() {
  # Installs Debian packages when we are root (or have sudo); otherwise says what to install.
  local missing=("$@")
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
      echo "Please install these packages first: ${missing[*]}" >&2; return 1; fi
  fi
  say "Installing ${missing[*]}"
  $sudo apt-get update -qq >/dev/null || true
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

ensure_python() {
  if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    apt_install python3 python3-venv
  fi
}

ensure_venv() {
  # ensure_venv REQUIREMENTS_FILE: .venv with exactly those pins (reinstalls when the file changes).
  local requirements="$1" stamp=".venv/.installed-$(basename "$1")"
  ensure_python
  if [ ! -x .venv/bin/python ]; then
    say "Creating the virtual environment in .venv"
    python3 -m venv .venv
  fi
  if [ ! -f "$stamp" ] || [ "$requirements" -nt "$stamp" ] || [ requirements.txt -nt "$stamp" ]; then
    say "Installing Python packages from $requirements"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$requirements"
    touch "$stamp"
  fi
  export PATH="$ROOT/.venv/bin:$PATH"
}
