"""The status server without Ray: token rules, health verdicts, busy flags, windowed rates,
Prometheus text, NaN, the printed URL."""

import json
import math
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.board import DEAD_AFTER_BEATS, Board
from services.launch import main as launch_main
from services.status import build_app, reachable_url, resolve_token
from services.telemetry import Beat, Beacon, CurvePoint, Progress, StatusLink, Throughput, Totals

ROSTER = {"rollout": 1, "reward": 1, "learner": 1}


def serve(app) -> str:
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    return f"http://127.0.0.1:{port}"


def fetch(url, token=None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class Remote:
    """`actor.method.remote(x)` calling the board directly, in the caller's thread."""

    def __init__(self, fn):
        self.remote = fn


class DirectActor:
    def __init__(self, board: Board):
        self.beat, self.report, self.point = Remote(board.beat), Remote(board.report), Remote(board.point)


def beacons(board: Board, roles=ROSTER) -> dict[str, Beacon]:
    link = StatusLink(DirectActor(board), heartbeat_s=3600)  # no heartbeat thread beats during a test
    return {role: Beacon(link, role, 0) for role in ["controller", *roles]}


def test_token_is_required_when_configured():
    url = serve(build_app(Board(2.0), token="s3cret"))
    assert fetch(url + "/status")[0] == 401 and fetch(url + "/status", "wrong")[0] == 401
    assert fetch(url + "/status", "s3cret")[0] == 200 and fetch(url + "/metrics", "s3cret")[0] == 200
    assert fetch(url + "/?token=s3cret")[0] == 200 and fetch(url + "/?token=wrong")[0] == 401  # the page


def test_non_loopback_bind_without_token_refuses_to_start(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("DLLMRL_STATUS_TOKEN", raising=False)
    with pytest.raises(ValueError, match="status.host"):
        resolve_token("0.0.0.0", None)
    assert resolve_token("127.0.0.1", None) is None and resolve_token("::1", None) is None
    monkeypatch.setenv("DLLMRL_STATUS_TOKEN", "t")
    assert resolve_token("0.0.0.0", None) == "t"
    monkeypatch.delenv("DLLMRL_STATUS_TOKEN")
    code = launch_main(["configs/tiny_countdown.yaml", "status.host=0.0.0.0", f"checkpoint.dir={tmp_path}"])
    assert code == 2 and "needs a token" in capsys.readouterr().err


def test_health_follows_the_controller_and_the_workers():
    clock = Clock()
    board = Board(heartbeat_s=2.0, clock=clock)
    assert not board.view().health.ok  # nothing reported yet
    sent = beacons(board)
    board.report(Progress(state="training", roster=ROSTER))
    assert board.view().health.ok
    clock.now += DEAD_AFTER_BEATS * 2.0  # every beat is now too old
    for role in ("controller", "rollout", "learner"):
        sent[role].send()
    health = board.view().health
    assert not health.ok and health.reasons == ["no reward worker alive (of 1)"]
    sent["reward"].send()
    assert board.view().health.ok
    board.report(Progress(state="failed", roster=ROSTER, last_failure="RuntimeError: learner group failed 3 times"))
    assert board.view().health.reasons == ["the controller failed: RuntimeError: learner group failed 3 times"]
    board.report(Progress(state="training", roster=ROSTER))
    clock.now += DEAD_AFTER_BEATS * 2.0 - 1
    sent["rollout"].send(), sent["reward"].send(), sent["learner"].send()
    assert board.view().health.reasons == []
    clock.now += 1
    assert board.view().health.reasons == ["the controller sends no heartbeat"]


def test_health_is_served_as_503_with_its_reasons():
    board = Board(2.0)
    url = serve(build_app(board, token=None))
    code, body = fetch(url + "/health")
    assert code == 503 and json.loads(body) == {"ok": False, "reasons": ["the controller has not reported yet"]}
    beacons(board)
    board.report(Progress(state="training", roster=ROSTER))
    assert fetch(url + "/health") == (200, '{"ok":true,"reasons":[]}')


def test_busy_is_set_while_a_job_runs_and_a_restart_is_counted():
    board = Board(2.0)
    sent = beacons(board)
    worker = lambda: next(w for w in board.view().workers if w.role == "reward")  # noqa: E731
    assert not worker().busy and worker().jobs == 0
    with sent["reward"].working("verify"):
        assert worker().busy and worker().doing == "verify"
    assert not worker().busy and worker().jobs == 1 and worker().busy_s >= 0
    late = Beat(role="reward", index=0, incarnation=sent["reward"].incarnation, seq=1, busy=True, doing="verify")
    board.beat(late)  # the job's start, arriving after its end: ignored
    assert not worker().busy and worker().jobs == 1
    Beacon(StatusLink(DirectActor(board), 3600), "reward", 0)  # the actor restarted
    assert worker().restarts == 1 and worker().jobs == 0


def test_status_serves_nan_and_inf_as_null_not_500():
    board = Board(2.0)
    board.report(Progress(state="training", reward_mean=math.nan, staleness=math.inf))
    board.point(CurvePoint(series="reward", step=1, value=math.nan))
    url = serve(build_app(board, token=None))
    code, body = fetch(url + "/status")
    assert code == 200 and json.loads(body)["reward_mean"] is None and json.loads(body)["staleness"] is None
    assert fetch(url + "/curves") == (200, '{"reward":[[1,null]],"accuracy":[]}')


def test_metrics_have_help_and_type_lines_gauges_and_counters():
    board = Board(2.0)
    sent = beacons(board)
    with sent["rollout"].working("generate"):
        board.report(Progress(state="training", roster=ROSTER, step=4, reward_mean=0.5,
                              totals=Totals(reward_timeouts=3, learner_restarts=1)))
        url = serve(build_app(board, token=None))
        code, text = fetch(url + "/metrics")
    assert code == 200 and "# HELP dllmrl_reward_mean mean reward of the last trained batch" in text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["dllmrl_step"].type == "gauge" and families["dllmrl_step"].samples[0].value == 4
    assert "dllmrl_steps_per_s" not in families  # no rate yet: no sample rather than a made-up 0
    timeouts = families["dllmrl_reward_timeouts"]
    assert timeouts.type == "counter" and timeouts.samples[0].name == "dllmrl_reward_timeouts_total"
    assert timeouts.samples[0].value == 3 and families["dllmrl_learner_restarts"].samples[0].value == 1
    busy = {(s.labels["role"], s.labels["index"]): s.value for s in families["dllmrl_worker_busy"].samples}
    assert busy == {("rollout", "0"): 1.0, ("reward", "0"): 0.0, ("learner", "0"): 0.0}
    assert families["dllmrl_worker_restarts"].type == "counter"
    assert families["dllmrl_up"].samples[0].value == 1.0
    assert {s.labels["dllmrl_state"]: s.value for s in families["dllmrl_state"].samples}["training"] == 1.0


def test_rates_are_over_the_last_batches_of_training_only():
    meter = Throughput(window=2)
    assert meter.rates() == (None, None)
    meter.record(seconds=100.0, steps=1, completions=10)  # a slow first batch, then two fast ones
    meter.record(seconds=1.0, steps=1, completions=64)
    meter.record(seconds=3.0, steps=1, completions=64)
    assert meter.rates() == (pytest.approx(0.5), pytest.approx(32.0))


def test_the_printed_url_is_reachable():
    assert reachable_url("0.0.0.0", 8266, "10.1.2.3") == "http://10.1.2.3:8266"
    assert reachable_url("::", 8266, "fd00::5") == "http://[fd00::5]:8266"
    assert reachable_url("127.0.0.1", 8266, "10.1.2.3") == "http://127.0.0.1:8266"
