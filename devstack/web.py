"""The web apps for `make up` and the browser tests: their production builds as static files.

Each app (frontend/user-app, frontend/admin-dashboard) is built once by Vite into its `dist/`
(`ensure_built`: again only when a source or the lockfile changed), then served by a small
static server on the seed's ports (USER_APP_PORT 5173, ADMIN_DASHBOARD_PORT 5174), the way the
chart's nginx image serves it:

- `/config.json` is written at serve time and names the gateway (`apiUrl`, `socketUrl`,
  `socketPath`), so the same build runs against any gateway, as in Kubernetes;
- Vite's fingerprinted `/assets/*` are cacheable for a year (`immutable`); everything else,
  index.html and config.json included, is revalidated on every load;
- any other path answers index.html (the apps route on the URL's hash, so this is only a
  courtesy to a hand-typed link).

    python -m devstack.web serve --app user-app --port 5173 --api-url http://localhost:3000
    python -m devstack.web build
"""

from __future__ import annotations

import argparse
import hashlib
import json
import mimetypes
import os
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from devstack.ports import HOST
from devstack.servers import ServerSpec

REPO_ROOT = Path(__file__).resolve().parent.parent
FRONTEND = REPO_ROOT / "frontend"
SOURCES = ("shared", "user-app", "admin-dashboard")
SOURCE_FILES = ("package.json", "package-lock.json", "tsconfig.base.json", "tsconfig.json")
STAMP = FRONTEND / "node_modules" / ".cache" / "realtimeorder-web-build"
IMMUTABLE = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class WebApp:
    name: str
    """Its folder under frontend/ and its program name under `make up`."""
    port_variable: str
    default_port: int

    @property
    def dist(self) -> Path:
        return FRONTEND / self.name / "dist"

    def port(self, environ: Mapping[str, str] = os.environ) -> int:
        return int(environ.get(self.port_variable, self.default_port))


APPS: tuple[WebApp, ...] = (
    WebApp("user-app", "USER_APP_PORT", 5173),
    WebApp("admin-dashboard", "ADMIN_DASHBOARD_PORT", 5174),
)


def app(name: str) -> WebApp:
    for candidate in APPS:
        if candidate.name == name:
            return candidate
    raise KeyError(f"{name!r} is not a web app ({', '.join(a.name for a in APPS)})")


def runtime_config(api_url: str) -> dict[str, str]:
    """The apps' config.json: the gateway serves the API and Socket.IO on one origin."""
    api = api_url.rstrip("/")
    return {"apiUrl": api, "socketUrl": api, "socketPath": "/socket.io/"}


# --- building -------------------------------------------------------------------------------------


def source_digest() -> str:
    """A digest of everything a build reads: the apps' sources, configs and the lockfile."""
    digest = hashlib.sha256()
    files = [FRONTEND / name for name in SOURCE_FILES]
    for folder in SOURCES:
        for path in sorted((FRONTEND / folder).rglob("*")):
            relative = path.relative_to(FRONTEND / folder).parts
            if path.is_file() and not {"dist", "node_modules"} & set(relative):
                files.append(path)
    for path in files:
        if path.is_file():
            digest.update(str(path.relative_to(FRONTEND)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def ensure_built() -> None:
    """Build both apps (type check, Vite, bundle budget) unless this source is built already."""
    digest = source_digest()
    built = all((a.dist / "index.html").is_file() for a in APPS)
    if built and STAMP.is_file() and STAMP.read_text() == digest:
        return
    if not (FRONTEND / "node_modules").is_dir():
        raise SystemExit("frontend/node_modules is missing: run `make install` (it runs npm ci)")
    print("building the web apps (npm run build in frontend/)", flush=True)
    result = subprocess.run(
        ["npm", "run", "build"], cwd=FRONTEND, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"building the web apps failed:\n{result.stdout[-4000:]}{result.stderr}")
    STAMP.parent.mkdir(parents=True, exist_ok=True)
    STAMP.write_text(digest)


# --- serving --------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    server: _Site
    server_version = "realtimeorder-web"
    sys_version = ""

    def do_GET(self) -> None:
        self._answer(body=True)

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def _answer(self, *, body: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        if path == "/config.json":
            self._send(self.server.config_body, "application/json", "no-cache", body=body)
            return
        if path == "/healthz":
            self._send(b"ok\n", "text/plain", "no-store", body=body)
            return
        root = self.server.root
        file = (root / path.lstrip("/")).resolve()
        if not file.is_relative_to(root) or not file.is_file():
            if path.startswith("/assets/"):
                self._send(b"not found\n", "text/plain", "no-store", body=body, status=404)
                return
            file = root / "index.html"
        immutable = file.is_relative_to(root / "assets")
        content_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        cache = IMMUTABLE if immutable else "no-cache"
        self._send(file.read_bytes(), content_type, cache, body=body)

    def _send(
        self, content: bytes, content_type: str, cache: str, *, body: bool, status: int = 200
    ) -> None:
        self.send_response(HTTPStatus(status))
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(content)))
        self.send_header("Cache-Control", cache)
        self.send_header("X-Content-Type-Options", "nosniff")
        if content_type == "text/html":
            self.send_header("X-Frame-Options", "DENY")
            self.send_header("Referrer-Policy", "strict-origin-when-cross-origin")
        self.end_headers()
        if body:
            self.wfile.write(content)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)


class _Site(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path, port: int, config: Mapping[str, str], verbose: bool) -> None:
        self.root = root.resolve()
        self.config_body = (json.dumps(dict(config), indent=2) + "\n").encode()
        self.verbose = verbose
        super().__init__((HOST, port), _Handler)


@dataclass
class RunningSite:
    """A site served from a background thread (the browser tests' way)."""

    site: _Site
    thread: threading.Thread

    @property
    def url(self) -> str:
        host, port = self.site.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        self.site.shutdown()
        self.site.server_close()
        self.thread.join(timeout=5)


def serve_in_background(root: Path, port: int, config: Mapping[str, str]) -> RunningSite:
    site = _Site(root, port, config, verbose=False)
    thread = threading.Thread(target=site.serve_forever, name=f"web-{port}", daemon=True)
    thread.start()
    return RunningSite(site, thread)


# --- make up --------------------------------------------------------------------------------------


def _http_ready(url: str) -> Any:
    def probe() -> None:
        import urllib.request

        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own URL
            response.read()

    return probe


def specs(api_url: str, environ: Mapping[str, str] = os.environ) -> list[ServerSpec]:
    """The programs that serve both builds against the gateway at `api_url`, built first."""
    return [
        ServerSpec(
            name=web.name,
            argv=(
                sys.executable,
                "-m",
                "devstack.web",
                "serve",
                "--app",
                web.name,
                "--port",
                str(web.port(environ)),
                "--api-url",
                api_url,
            ),
            cwd=REPO_ROOT,
            ports={"http": web.port(environ)},
            ready=_http_ready(f"http://{HOST}:{web.port(environ)}/healthz"),
            env={"PYTHONUNBUFFERED": "1"},
            prepare=ensure_built,
            start_timeout=30.0,
            stop_timeout=5.0,
        )
        for web in APPS
    ]


def urls(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Each app's local URL, for `make up` to print."""
    return {web.name: f"http://localhost:{web.port(environ)}" for web in APPS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.web", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve one app's build")
    serve.add_argument("--app", required=True, choices=[a.name for a in APPS])
    serve.add_argument("--port", type=int)
    serve.add_argument("--api-url", default="http://localhost:3000")
    commands.add_parser("build", help="build both apps unless already built from this source")
    args = parser.parse_args(argv)
    if args.command == "build":
        ensure_built()
        return 0
    web = app(args.app)
    if not (web.dist / "index.html").is_file():
        raise SystemExit(f"{web.dist} holds no build: run `python -m devstack.web build`")
    site = _Site(web.dist, args.port or web.port(), runtime_config(args.api_url), verbose=True)
    print(f"serving {web.dist} on http://{HOST}:{site.server_address[1]}", flush=True)
    try:
        site.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        site.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
