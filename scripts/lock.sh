#!/usr/bin/env bash
# Re-resolve the two lockfiles from pyproject.toml with pip-compile (from the dev extra):
#   - requirements.lock: what the images install (the runtime dependencies, see scripts/images);
#   - requirements-dev.lock: what `make install` puts in .venv (the same runtime pins plus the
#     dev extra: test runners, linters, type stubs), so a new upstream release changes neither the
#     tests nor the lint until someone locks it here.
# Both keep every pin that still satisfies pyproject.toml; UPGRADE=1 takes the newest of everything.
# Markers are evaluated by the Python that runs this: run it with the Python 3.11 the images use.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

COMPILE=(.venv/bin/pip-compile --quiet --allow-unsafe --generate-hashes --no-emit-find-links
  --no-emit-index-url --strip-extras)
[[ ${UPGRADE:-} == 1 ]] && COMPILE+=(--upgrade)
INPUTS=(pyproject.toml scripts/images/debian-python.in)

"${COMPILE[@]}" --output-file=requirements.lock "${INPUTS[@]}"
# Seeded with the runtime lock, so the virtualenv runs the versions the images ship.
[[ -e requirements-dev.lock ]] || cp requirements.lock requirements-dev.lock
"${COMPILE[@]}" --extra=dev --output-file=requirements-dev.lock "${INPUTS[@]}"
