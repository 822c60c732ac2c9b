"""StatusActor: a small read-only FastAPI app — GET /health, /status, /metrics (Prometheus).

Bound to 127.0.0.1 by default. Bound anywhere else it requires a bearer token (config or
DLLMRL_STATUS_TOKEN) and refuses to start without one. Only GET is served.
"""

from __future__ import annotations

import ipaddress
import os
import threading
import time

import ray
from pydantic import SecretStr

from dllmrl_core.contract.jsontext import finite

TOKEN_ENV = "DLLMRL_STATUS_TOKEN"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_token(host: str, token: SecretStr | str | None) -> str | None:
    """The token to require, or None on loopback without one; raises if a wider bind has none.
    `status.token` arrives as a SecretStr (so no config dump or log shows it) and is unwrapped here only."""
    if isinstance(token, SecretStr):
        token = token.get_secret_value()
    token = token or os.environ.get(TOKEN_ENV) or None
    if token is None and not is_loopback(host):
        raise ValueError(f"status.host: binding to {host} needs a token (status.token or {TOKEN_ENV})")
    return token


def prometheus(snapshot: dict) -> str:
    """Numeric fields as gauges `dllmrl_<name>`; workers as `dllmrl_worker_busy{role,index}`."""
    lines = []
    for key, value in snapshot.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            lines += [f"# TYPE dllmrl_{key} gauge", f"dllmrl_{key} {float(value)}"]
    for w in snapshot.get("workers", []):
        lines.append(f'dllmrl_worker_busy{{role="{w["role"]}",index="{w["index"]}"}} {1.0 if w["busy"] else 0.0}')
    return "\n".join(lines) + "\n"


def build_app(read, token: str | None):
    """FastAPI app over `read()` -> the latest status snapshot (a dict)."""
    from fastapi import Depends, FastAPI, Header, HTTPException
    from fastapi.responses import PlainTextResponse

    def check(authorization: str | None = Header(default=None)) -> None:
        if token is not None and authorization != f"Bearer {token}":
            raise HTTPException(status_code=401, detail="bearer token required")

    app = FastAPI(title="dllmrl status", dependencies=[Depends(check)], openapi_url=None, docs_url=None,
                  redoc_url=None)
    app.get("/health")(lambda: {"ok": True})
    app.get("/status")(lambda: read())
    app.get("/metrics", response_class=PlainTextResponse)(lambda: prometheus(read()))
    return app


@ray.remote(num_cpus=0, max_restarts=-1)
class StatusActor:
    def __init__(self, host: str, port: int, token: SecretStr | None):
        import uvicorn

        self.snapshot: dict = {"step": 0, "state": "starting"}
        token = resolve_token(host, token)
        self.server = uvicorn.Server(uvicorn.Config(build_app(lambda: self.snapshot, token), host=host, port=port,
                                                    log_level="warning"))
        threading.Thread(target=self.server.run, daemon=True).start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError(f"status server did not start on {host}:{port}")
            time.sleep(0.05)
        bound = self.server.servers[0].sockets[0].getsockname()
        self.address = f"http://{host}:{bound[1]}"

    def url(self) -> str:
        return self.address

    def update(self, snapshot: dict) -> None:
        self.snapshot = finite(snapshot)  # /status is strict JSON: a NaN would fail the response
