"""Is the network there? Offline machines must fail fast instead of waiting on a hub."""

from __future__ import annotations

import os
import socket

OFFLINE_ENV = ("HF_HUB_OFFLINE", "DIVWEIGHTS_OFFLINE")


def offline_requested() -> bool:
    """True when the user asked for offline mode (HF_HUB_OFFLINE or DIVWEIGHTS_OFFLINE set truthy)."""
    return any(os.environ.get(name, "").lower() in ("1", "true", "yes", "on") for name in OFFLINE_ENV)


def host_reachable(host: str, timeout: float = 3.0) -> bool:
    """False when offline mode is asked for or `host` takes longer than `timeout` s to answer on 443."""
    if offline_requested():
        return False
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False
