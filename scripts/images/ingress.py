"""The node's ingress controller: Traefik, built from its Go module, in an image of its own.

    scripts/images/ingress.py [build]      (make images-ingress)
    scripts/images/ingress.py ref          print the image reference

``localhost/realtimeorder-ingress/traefik:VERSION``: the static ``traefik`` binary (CGO off) on an
empty filesystem, run as uid 65532. Traefik serves Kubernetes Ingresses (and Gateway API routes)
by itself: no separate proxy process, WebSockets and cookie affinity on the Service
(``traefik.ingress.kubernetes.io/service.sticky.cookie``, which the chart sets when
``ingress.className`` names traefik). The module's source is taken from the Go module proxy
(``go mod download``) and built in a copy, since its go.mod has replace directives that ``go
install module@version`` refuses. The copy gets the patches in scripts/images/traefik/ (each says
what it mends); the image's tag carries their count. The binary is cached under the images cache
by version and patches; the first build takes several minutes on 2 cores (log printed).

The manifests that run it on the node are in k8s/node/traefik.yaml.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent


def _load_build() -> ModuleType:
    """build.py, under the name every loader of it here uses (scripts/images is no package)."""
    spec = importlib.util.spec_from_file_location("rto_images_build", HERE / "build.py")
    if spec is None or spec.loader is None:
        raise RuntimeError("cannot load scripts/images/build.py")
    module = sys.modules.get(spec.name)
    if module is None:
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return module


images = _load_build()

MODULE = "github.com/traefik/traefik/v3"
VERSION = "v3.6.12"
PATCHES = sorted((HERE / "traefik").glob("*.patch"))
REF = f"localhost/realtimeorder-ingress/traefik:{VERSION.removeprefix('v')}-p{len(PATCHES)}"
UID = 65532


def binary() -> Path:
    """The traefik binary, built once per version and set of patches."""
    patches = hashlib.sha256(b"".join(p.read_bytes() for p in PATCHES)).hexdigest()[:12]
    out_dir = images.cache_dir() / "traefik" / f"{VERSION}-{patches}"
    target = Path(out_dir / "traefik")
    if target.is_file():
        return target
    if shutil.which("go") is None:
        raise images.ImageError("building Traefik needs Go on PATH")
    out_dir.mkdir(parents=True, exist_ok=True)
    logfile = out_dir / "build.log"
    env = {**os.environ, "CGO_ENABLED": "0", "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod"}
    info = json.loads(
        images.run(["go", "mod", "download", "-json", f"{MODULE}@{VERSION}"], capture=True, env=env)
    )
    work = Path(tempfile.mkdtemp(prefix="traefik-", dir=out_dir))
    start = time.monotonic()
    images.log(f"building Traefik {VERSION} from its module (once; log: {logfile})")
    try:
        src = work / "src"
        shutil.copytree(info["Dir"], src)
        for path in (src, *src.rglob("*")):
            path.chmod(path.stat().st_mode | 0o200)
        for patch in PATCHES:
            images.run(["patch", "-p1", "--forward", "--quiet", "-i", str(patch)], cwd=src)
        ldflags = f"-s -w -X {MODULE}/pkg/version.Version={VERSION}"
        with logfile.open("w") as log:
            result = subprocess.run(
                ["go", "build", "-trimpath", "-ldflags", ldflags, "-o", f"{target}.part",
                 "./cmd/traefik"],
                cwd=src, env=env, stdout=log, stderr=subprocess.STDOUT, check=False,
            )  # fmt: skip
        if result.returncode != 0:
            raise images.ImageError(f"go build of Traefik failed; log: {logfile}")
        os.replace(f"{target}.part", target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    images.log(f"Traefik {VERSION} built in {time.monotonic() - start:.0f}s")
    return target


def build() -> str:
    engine = images.engine()
    if not isinstance(engine, images.Buildah):
        raise images.ImageError("the ingress image is built with buildah (RTO_IMAGE_ENGINE)")
    exe: Path = binary()
    key = f"traefik-{VERSION}-{hashlib.sha256(exe.read_bytes()).hexdigest()[:12]}"
    if engine.has_image(REF, label=key):
        return REF
    ctr = engine.buildah("from", "scratch", capture=True).strip()
    try:
        mnt = Path(engine.buildah("mount", ctr, capture=True).strip())
        images.copy_into(exe, mnt / "usr/local/bin/traefik")
        (mnt / "tmp").mkdir(mode=0o1777)
        engine.buildah("umount", ctr)
        engine.buildah(
            "config", "--user", f"{UID}:{UID}", "--entrypoint", '["/usr/local/bin/traefik"]',
            "--port", "8000", "--label", f"io.realtimeorder.base.key={key}", ctr,
        )  # fmt: skip
        engine.buildah("commit", "--quiet", "--rm", ctr, REF, capture=True)
    except BaseException:
        subprocess.run(engine._cmd("rm", ctr), capture_output=True, check=False, env=engine.env())
        raise
    images.log(f"built {REF}, {engine.size(REF)}")
    return REF


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", default="build", choices=["build", "ref"])
    opts = parser.parse_args(argv)
    if opts.command == "ref":
        print(REF)
        return 0
    try:
        with images.host_paths_restored():
            build()
    except images.ImageError as exc:
        images.log(f"FAILED: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
