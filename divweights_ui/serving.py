"""How the studio is served: loopback by default, auth required elsewhere, narrow file serving."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

from core.workbench import GENERATED_DIR
from divweights_ui.common import MAX_UPLOAD_MB

ASSETS = Path(__file__).resolve().parents[1] / "assets"
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


def launch_kwargs(data_root: Path) -> dict:
    """Arguments for demo.launch(): serve only generated files, cap uploads, add CSS and page script."""
    data_root = Path(data_root).resolve()
    generated = data_root / GENERATED_DIR
    generated.mkdir(parents=True, exist_ok=True)
    blocked = [str(data_root / name) for name in ("cache", "uploads", "runs", "datasets")]
    script = (ASSETS / "studio.js").read_text()
    return dict(
        allowed_paths=[str(generated)],  # thumbnails and exports; never the data or caches
        blocked_paths=blocked,
        max_file_size=f"{MAX_UPLOAD_MB}mb",
        css_paths=[ASSETS / "studio.css"],
        head=f"<script>{script}</script>",
        favicon_path=ASSETS / "logo.svg",
    )
