"""StatusActor: a small read-only FastAPI app over a `Board` (services/board.py).

    GET /         a page with the training-reward and held-out-accuracy curves (status_page.html)
    GET /curves   the curves' points, JSON (the page reads them)
    GET /status   the Controller's report, every worker (alive, busy, jobs, restarts) and the health
    GET /health   200 {"ok": true} or 503 with the reasons
    GET /metrics  Prometheus text, from prometheus_client with its own registry

Bound to 127.0.0.1 by default. Bound anywhere else it requires a bearer token (config or
DLLMRL_STATUS_TOKEN) and refuses to start without one; the token may also come as `?token=`, so a
browser can open the page. Only GET is served.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import threading
import time
from pathlib import Path

import ray
from pydantic import SecretStr

from services.board import Board, metric_families
from services.telemetry import Beat, CurvePoint, Progress

TOKEN_ENV = "DLLMRL_STATUS_TOKEN"
PAGE = Path(__file__).with_name("status_page.html")
UNSPECIFIED = {"0.0.0.0", "::", ""}  # bind addresses meaning "every interface"


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


def reachable_url(host: str, port: int, node_ip: str) -> str:
    """The URL to print: a server bound to every interface is reached at this node's address."""
    host = node_ip if host in UNSPECIFIED else host
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class BoardCollector:
    """A prometheus_client collector reading the board at each scrape."""

    def __init__(self, board: Board):
        self.board = board

    def collect(self):
        return metric_families(self.board.view())


def prometheus_registry(board: Board):
    """The app's own registry (never the process-global one): the board's metrics only."""
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(BoardCollector(board))
    return registry


def build_app(board: Board, token: str | None):
    """The FastAPI app serving `board`."""
    from fastapi import Depends, FastAPI, Header, HTTPException, Query
    from fastapi.responses import HTMLResponse, Response
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    def check(authorization: str | None = Header(default=None), query: str | None = Query(None, alias="token")):
        if token is None:
            return
        given = query if authorization is None else authorization.removeprefix("Bearer ")
        if given is None or not secrets.compare_digest(given.encode(), token.encode()):
            raise HTTPException(status_code=401, detail="bearer token required")

    registry = prometheus_registry(board)
    app = FastAPI(title="dllmrl status", dependencies=[Depends(check)], openapi_url=None, docs_url=None,
                  redoc_url=None)

    def as_json(model, status_code: int = 200) -> Response:
        return Response(model.model_dump_json(), status_code=status_code, media_type="application/json")

    @app.get("/health")
    def health():
        verdict = board.view().health
        return as_json(verdict, 200 if verdict.ok else 503)

    app.get("/status")(lambda: as_json(board.view()))
    app.get("/curves")(lambda: as_json(board.curve_data()))
    app.get("/metrics")(lambda: Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST))
    app.get("/", response_class=HTMLResponse)(lambda: PAGE.read_text())
    return app


@ray.remote(num_cpus=0, max_restarts=-1)
class StatusActor:
    """The server runs in a thread of this actor; the actor's methods feed its board."""

    def __init__(self, host: str, port: int, token: SecretStr | None, heartbeat_s: float):
        import uvicorn

        self.board = Board(heartbeat_s)
        token = resolve_token(host, token)
        self.server = uvicorn.Server(uvicorn.Config(build_app(self.board, token), host=host, port=port,
                                                    log_level="warning"))
        threading.Thread(target=self.server.run, daemon=True).start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError(f"status server did not start on {host}:{port}")
            time.sleep(0.05)
        bound = self.server.servers[0].sockets[0].getsockname()
        self.address = reachable_url(host, bound[1], ray.util.get_node_ip_address())

    def url(self) -> str:
        return self.address

    def report(self, progress: Progress) -> None:
        self.board.report(progress)

    def beat(self, beat: Beat) -> None:
        self.board.beat(beat)

    def point(self, point: CurvePoint) -> None:
        self.board.point(point)
