"""How the studio is served: loopback by default, auth required elsewhere, narrow file serving."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

from core.workbench import GENERATED_DIR
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
    """ASGI middleware against DNS rebinding and cross-site requests: a request whose Host header is
    not one of `allowed` (a page on evil.example resolving to 127.0.0.1 sends its own name), or a
    POST whose Origin names another host, is refused with 403 before gradio reads it, so nothing a
    foreign page uploads is ever stored."""

    def __init__(self, app, allowed: frozenset[str]):
        self.app, self.allowed = app, allowed

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
            origin = headers.get("origin")
            foreign_origin = (origin is not None and scope.get("method") in ("POST", "PUT", "DELETE", "PATCH")
                              and _host_of(origin.split("://", 1)[-1]) not in self.allowed)
            if _host_of(headers.get("host", "")) not in self.allowed or foreign_origin:
                await _refuse(scope, send)
                return
        await self.app(scope, receive, send)


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
    """Host names a request may address: this computer's loopback names plus --host. None (no
    check) when serving every interface or a share link: there a password protects the studio."""
    if share or host in ("0.0.0.0", "::", ""):
        return None
    return frozenset({"localhost", "127.0.0.1", "::1", host.strip("[]").lower()})


def launch_kwargs(data_root: Path, host: str = "127.0.0.1", share: bool = False) -> dict:
    """Arguments for demo.launch(): serve only generated files, cap uploads, add CSS and page script,
    refuse requests addressed to other hosts (DNS rebinding), no /monitoring endpoint."""
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
        **({} if hosts is None else {"app_kwargs": {"middleware": [Middleware(HostGuard, allowed=hosts)]}}),
    )
