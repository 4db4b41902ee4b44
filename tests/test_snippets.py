"""README.md's Python snippets run as written: every block fenced ```` ```python run ```` is run
in a fresh interpreter against a real `posetween serve` on 127.0.0.1 (the snippets' ports 5555
and 5556 swapped for free ones), and must exit 0 and print what it received.

Options after ``run`` on the fence line, separated by spaces:

- ``needs=mediapipe,cv2``: modules the block imports beyond the runtime's; where one is not
  installed in the interpreter's environment the block is skipped, with their names.
- ``prints=cam1/0,cam1/1``: strings its output must contain.

POSETWEEN_PYTHON names another environment's interpreter to run the service and the snippets
in (`make runtime-check`: the runtime install without torch, OpenCV or MediaPipe)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
PYTHON = os.environ.get("POSETWEEN_PYTHON", sys.executable)
RUNNABLE = re.compile(r"^```python run([^\n]*)\n(.*?)^```", re.S | re.M)


def runnable_blocks() -> list[tuple[int, str, dict[str, list[str]]]]:
    """(line number, code, options) of each ```python run block of the README; options: the
    fence's ``name=a,b`` words as ``{name: [a, b]}``."""
    text = README.read_text()
    return [(text.count("\n", 0, m.start()) + 1, m.group(2),
             {k: v.split(",") for k, _, v in (w.partition("=") for w in m.group(1).split())})
            for m in RUNNABLE.finditer(text)]


def missing_modules(modules: list[str]) -> list[str]:
    """Those of ``modules`` that PYTHON's environment cannot import (not installed)."""
    probe = "import importlib.util, sys; print(' '.join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is None))"
    res = subprocess.run([PYTHON, "-c", probe, *modules], cwd="/", capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return res.stdout.split()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """A real `posetween serve` on two free loopback ports, ready (its SUB socket subscribed)."""
    import zmq

    ports = free_port(), free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    cmd = [PYTHON, "-m", "posetween.cli", "serve", "--in", f"tcp://127.0.0.1:{ports[0]}",
           "--out", f"tcp://127.0.0.1:{ports[1]}"]
    with open(log, "w") as out:
        # Outside the checkout: `-m` would import the package from the current folder, not POSETWEEN_PYTHON's.
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=log.parent)
    # The service is up when its input SUB subscribes to a connected XPUB (as PosePublisher waits).
    ctx = zmq.Context()
    probe = ctx.socket(zmq.XPUB)
    probe.setsockopt(zmq.LINGER, 0)
    probe.connect(f"tcp://127.0.0.1:{ports[0]}")
    deadline = time.monotonic() + 120
    try:
        while not probe.poll(200):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"posetween serve did not start (exit {proc.poll()}):\n{log.read_text()[-3000:]}")
        yield ports
    finally:
        probe.close()
        ctx.term()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_the_readme_has_runnable_snippets():
    assert len(runnable_blocks()) >= 3   # quick start (engine, clients) and the plain pyzmq client


def test_fence_options_are_known():
    for line, _, options in runnable_blocks():
        assert set(options) <= {"needs", "prints"}, f"README.md line {line}: unknown option in {options}"


@pytest.mark.parametrize("line,code,options", [pytest.param(*b, id=f"README.md:{b[0]}") for b in runnable_blocks()])
def test_readme_snippet_runs(line, code, options, request, tmp_path):
    if missing := missing_modules(options.get("needs", [])):
        pytest.skip(f"README.md line {line} needs {', '.join(missing)}, not installed for {PYTHON}")
    service = request.getfixturevalue("service")
    code = code.replace("127.0.0.1:5555", f"127.0.0.1:{service[0]}").replace("127.0.0.1:5556", f"127.0.0.1:{service[1]}")
    res = subprocess.run([PYTHON, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, f"README.md line {line}:\n{res.stderr[-3000:]}"
    assert res.stdout.strip(), f"README.md line {line} printed nothing"
    assert "None" not in res.stdout, res.stdout   # a pose that never came
    for expected in options.get("prints", []):
        assert expected in res.stdout, f"README.md line {line} did not print {expected!r}:\n{res.stdout[-3000:]}"


def test_quick_start_replay_reaches_a_subscriber(service, tmp_path):
    """The quick start as written on a fresh clone: `posetween replay --fps 15 --loop` (the shipped
    recording, no data to build) into the service, and a subscriber gets interpolated poses."""
    import zmq

    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"pose/replay\0")
    sub.connect(f"tcp://127.0.0.1:{service[1]}")
    replay = subprocess.Popen([PYTHON, "-m", "posetween.cli", "replay", "--fps", "15", "--loop",
                               "--to", f"tcp://127.0.0.1:{service[0]}"], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        kinds, deadline = set(), time.monotonic() + 60
        while "interpolated" not in kinds and time.monotonic() < deadline:
            if sub.poll(500):
                import msgpack
                topic, _, body = sub.recv().partition(b"\0")
                kinds.add(msgpack.unpackb(body)["kind"])
        assert "interpolated" in kinds, (kinds, replay.poll())
    finally:
        replay.terminate()
        out = replay.communicate(timeout=10)[0].decode()
        sub.close()
        ctx.term()
    assert "Traceback" not in out, out
