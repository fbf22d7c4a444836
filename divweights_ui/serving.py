"""How the studio is served: loopback by default, auth required elsewhere, narrow file serving."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

from divweights.workbench import GENERATED_DIR
from divweights_ui.common import MAX_UPLOAD_MB

# a checkout's assets/ beside divweights_ui/; installed, the wheel carries them inside the package
ASSETS = next((p for p in (Path(__file__).resolve().parents[1] / "assets", Path(__file__).resolve().parent / "assets")
               if (p / "studio.css").is_file()), Path(__file__).resolve().parents[1] / "assets")
LOOPBACK_NAMES = {"localhost"}


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, share: bool, auth: str | None) -> tuple[str, str] | None:
    """-> (user, password) or None. Refuses (ValueError) to listen beyond this machine without auth."""
    credentials = None
    if auth:
        user, sep, password = auth.partition(":")
        if not sep or not user or not password:
            raise ValueError("--auth must look like user:password")
        credentials = (user, password)
    if (share or not is_loopback(host)) and credentials is None:
        where = "a public share link" if share else f"host {host!r}"
        raise ValueError(f"refusing to serve on {where} without a password: anyone who can reach it could use "
                         "this machine's CPU/GPU and read your exports. Add --auth user:password, or keep the "
                         "default --host 127.0.0.1 (only this computer).")
    return credentials


def port_in_use(host: str, port: int) -> bool:
    """True when something already listens on host:port (checked before the slow start-up)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


class HostGuard:
    """ASGI middleware against DNS rebinding and cross-site requests, before gradio reads anything:

    - a request whose Host header is not one of `allowed` (a page on evil.example resolving to
      127.0.0.1 sends its own name) is refused with 403 (`allowed` None: any host, e.g. 0.0.0.0);
    - a request of any method (GET of results, files and event streams included) or a websocket that
      carries an Origin other than the studio's own (the host and port it was addressed at) or one of
      `origins` (--allow-origin) is refused with 403, so nothing a foreign page uploads is stored and
      nothing it asks for is computed or read;
    - `origins` get the CORS answer a browser needs (preflight, Access-Control-Allow-Origin); no
      other origin is ever echoed. `guard_first(demo)` puts this middleware outside gradio's own CORS
      layer, which echoes any localhost Origin (even on a refusal or a preflight)."""

    def __init__(self, app, allowed: frozenset[str] | None, origins: frozenset[str] = frozenset()):
        self.app, self.allowed, self.origins = app, allowed, origins

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host, origin = headers.get("host", ""), headers.get("origin")
        named = origin is not None and normalise_origin(origin) in self.origins
        if ((self.allowed is not None and _host_of(host) not in self.allowed)
                or (origin is not None and not named and not same_origin(origin, host))):
            await _refuse(scope, send)
            return
        if not named or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cors = [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin"),
                (b"access-control-allow-credentials", b"true")]
        if scope.get("method") == "OPTIONS" and "access-control-request-method" in headers:  # a preflight
            requested = headers.get("access-control-request-headers", "")
            await send({"type": "http.response.start", "status": 204, "headers": cors + [
                (b"access-control-allow-methods", b"GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS"),
                (b"access-control-allow-headers", requested.encode("latin-1")), (b"access-control-max-age", b"600")]})
            await send({"type": "http.response.body", "body": b""})
            return

        async def with_cors(message):
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if not k.lower().startswith(b"access-control-")]
                message = {**message, "headers": kept + cors}
            await send(message)

        await self.app(scope, receive, with_cors)


DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def _origin_parts(url: str) -> tuple[str, str, int | None] | None:
    """'http://LocalHost:7860' -> ('http', 'localhost', 7860); None when it is not scheme://host[:port]."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") or parts.query:
        return None
    return parts.scheme, parts.hostname.lower(), port if port is not None else DEFAULT_PORTS[parts.scheme]


def normalise_origin(url: str) -> str | None:
    """An origin as the browser sends it, with its port always written: 'http://localhost' -> 'http://localhost:80'."""
    parts = _origin_parts(url)
    return None if parts is None else f"{parts[0]}://{parts[1]}:{parts[2]}"


def same_origin(origin: str, host_header: str) -> bool:
    """True when Origin names the host and port the request was addressed to (its Host header): the
    studio's own page. (One port serves one scheme, so host and port decide the origin.)"""
    parts = _origin_parts(origin)
    if parts is None:  # 'null' (a sandboxed or file:// page) or garbage
        return False
    host_name = _host_of(host_header)
    tail = host_header.strip().rsplit("]", 1)[-1]
    port_text = tail.rsplit(":", 1)[1] if ":" in tail else ""
    port = int(port_text) if port_text.isdigit() else DEFAULT_PORTS[parts[0]]
    return (parts[1].strip("[]"), parts[2]) == (host_name, port)


def check_origins(urls) -> frozenset[str]:
    """--allow-origin values -> normalised origins, or ValueError with a sentence."""
    origins = set()
    for url in urls or ():
        normal = normalise_origin(url)
        if normal is None:
            raise ValueError(f"--allow-origin {url!r} must be an origin like http://localhost:3000 "
                             "(http or https, a host, an optional port, no path)")
        origins.add(normal)
    return frozenset(origins)


def guard_first(demo) -> None:
    """After demo.launch(): run HostGuard before gradio's own middleware (gradio adds its CORS layer,
    which echoes any localhost Origin, outside the middleware given to launch)."""
    app = demo.app
    ours = [m for m in app.user_middleware if m.cls is HostGuard]
    if ours and app.user_middleware[0].cls is not HostGuard:
        app.user_middleware[:] = ours + [m for m in app.user_middleware if m.cls is not HostGuard]
        app.middleware_stack = None  # rebuilt, in the new order, at the next request


def _host_of(netloc: str) -> str:
    """'127.0.0.1:7860' -> '127.0.0.1'; '[::1]:7860' -> '::1'; names lower-cased."""
    netloc = netloc.strip().lower().split("/", 1)[0]
    if netloc.startswith("["):
        return netloc[1:].split("]", 1)[0]
    return netloc.rsplit(":", 1)[0] if netloc.count(":") == 1 else netloc


async def _refuse(scope, send) -> None:
    body = b"Refused: this studio answers only requests addressed to the host it serves (see --host)."
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    await send({"type": "http.response.start", "status": 403,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def allowed_hosts(host: str, share: bool) -> frozenset[str] | None:
    """Host names a request may address: this computer's loopback names plus --host. None (any host)
    when serving every interface or a share link: there a password protects the studio."""
    if share or host in ("0.0.0.0", "::", ""):
        return None
    return frozenset({"localhost", "127.0.0.1", "::1", host.strip("[]").lower()})


def launch_kwargs(data_root: Path, host: str = "127.0.0.1", share: bool = False,
                  origins: frozenset[str] = frozenset()) -> dict:
    """Arguments for demo.launch(): serve only generated files, cap uploads, add CSS and page script,
    refuse requests addressed to other hosts (DNS rebinding) or sent by pages of other origins than
    the studio's own and `origins` (see HostGuard; call guard_first(demo) after launch), no /monitoring
    endpoint. A share link has no guard: its password protects it."""
    from starlette.middleware import Middleware

    data_root = Path(data_root).resolve()
    generated = data_root / GENERATED_DIR
    generated.mkdir(parents=True, exist_ok=True)
    blocked = [str(data_root / name) for name in ("cache", "uploads", "runs", "datasets")]
    script = (ASSETS / "studio.js").read_text()
    hosts = allowed_hosts(host, share)
    return dict(
        allowed_paths=[str(generated)],  # thumbnails and exports; never the data or caches
        blocked_paths=blocked,
        max_file_size=f"{MAX_UPLOAD_MB}mb",
        css_paths=[ASSETS / "studio.css"],
        head=f"<script>{script}</script>",
        favicon_path=ASSETS / "logo.svg",
        enable_monitoring=False,
        **({} if share else {"app_kwargs": {"middleware": [Middleware(HostGuard, allowed=hosts, origins=origins)]}}),
    )
