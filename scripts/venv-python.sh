# The interpreter the virtualenv is made from; sourced by scripts/install.sh.
#
# PYTHON when set; else the distribution's python3 (DISTRIBUTION_PYTHON, by default
# /usr/bin/python3, which install.sh installs) when it is 3.11 or newer; else python3 on PATH.
# Debian builds its interpreter with profile-guided and link-time optimisation and links the
# interpreter's library into the executable; a source build without --enable-optimizations (a
# version manager's default) spent about a tenth more CPU on the same web request
# (docs/benchmarks-analysis.md), and every service of the local stack runs on the interpreter
# picked here.

is_python311() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; }

venv_python() {
  local distribution="${DISTRIBUTION_PYTHON:-/usr/bin/python3}"
  if [[ -n ${PYTHON:-} ]]; then
    printf '%s\n' "$PYTHON"
  elif is_python311 "$distribution"; then
    printf '%s\n' "$distribution"
  else
    printf '%s\n' python3
  fi
}

# The real path of the interpreter that `$1` (an interpreter or a virtualenv's) was made from.
base_interpreter() { "$1" -c 'import os, sys; print(os.path.realpath(sys._base_executable))'; }
