"""The status app: token rules and refusals (no Ray needed)."""

import socket
import threading
import time
import urllib.error
import urllib.request

import pytest

from services.launch import main as launch_main
from services.status import build_app, prometheus, resolve_token


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


def fetch(url, token=None):
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as err:
        return err.code


def test_token_is_required_when_configured():
    url = serve(build_app(lambda: {"step": 3, "workers": []}, token="s3cret"))
    assert fetch(url + "/status") == 401 and fetch(url + "/status", "wrong") == 401
    assert fetch(url + "/status", "s3cret") == 200 and fetch(url + "/metrics", "s3cret") == 200


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


def test_prometheus_text():
    text = prometheus({"step": 4, "reward_mean": 0.5, "state": "training",
                       "workers": [{"role": "rollout", "index": 0, "busy": True}]})
    assert "dllmrl_step 4.0" in text and "dllmrl_reward_mean 0.5" in text and "state" not in text
    assert 'dllmrl_worker_busy{role="rollout",index="0"} 1.0' in text
