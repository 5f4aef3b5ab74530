"""Stopping a solve: Ctrl-C and request_stop() return the best plan found, with a bound,
and the CLI writes it as usual. No wall-clock assertions: only what is returned."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from models import load_instance
from optimizers import solve
from optimizers.result import Status
from optimizers.stopping import expired, method_starting, now, request_stop, stop_on_sigint, stop_requested

ROOT = Path(__file__).resolve().parent.parent
CAPA = ROOT / "instances" / "orlib" / "capa.txt"


def test_a_stop_request_expires_every_deadline_after_its_grace():
    with stop_on_sigint():
        assert not expired(None) and not stop_requested()
        request_stop()
        assert stop_requested()
        method_starting()  # a request made while loading counts from the method's start
        while not expired(None):
            pass
        assert expired(1e300) and now() == float("inf")
    assert not stop_requested() and not expired(None)  # cleared on leaving the block


def test_request_stop_returns_the_incumbent_with_a_bound():
    inst = load_instance(CAPA, input_format="orlib-cap", capacity=8000)
    timer = threading.Timer(0.5, request_stop)
    with stop_on_sigint():
        timer.start()
        result = solve(inst, method="lagrangian")
    assert result.status in (Status.FEASIBLE, Status.OPTIMAL)
    assert result.objective is not None and result.bound is not None and result.bound <= result.objective
    assert result.evaluation and result.evaluation["feasible"]
    if result.status is Status.FEASIBLE:
        assert result.meta["stopped"] and "stopped on request" in result.message


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_during_a_cli_solve_writes_the_best_plan(tmp_path):
    out = tmp_path / "result.json"
    cmd = [sys.executable, str(ROOT / "cli.py"), "solve", str(CAPA), "--input-format", "orlib-cap", "--capacity", "8000",
           "--format", "json", "--output", str(out), "--verbose"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stderr is not None
    for line in proc.stderr:  # wait until the method is running
        if "lagrangian step 0" in line:
            break
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    document = json.loads(stdout)
    assert document["status"] in ("feasible", "optimal")
    assert document["objective"] is not None and document["bound"] <= document["objective"]
    assert json.loads(out.read_text()) == document
    if document["status"] == "feasible":
        assert "stopped on request" in document["message"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_second_ctrl_c_stops_at_once():
    cmd = [sys.executable, str(ROOT / "cli.py"), "solve", str(CAPA), "--input-format", "orlib-cap", "--capacity", "8000", "--format", "json", "--verbose"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stderr is not None
    for line in proc.stderr:
        if "lagrangian step 0" in line:
            break
    proc.send_signal(signal.SIGINT)
    for line in proc.stderr:  # the first one is taken as "stop and keep the plan"
        if line.startswith("stopping:"):
            break
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130 and stdout == "" and "interrupted" in stderr
