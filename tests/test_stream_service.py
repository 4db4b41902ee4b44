"""The ZeroMQ service over real TCP sockets on 127.0.0.1: bad input of every kind is counted
and dropped while a good stream keeps its output rate; topic filtering, conflation, the stats
topic, loopback-only binding, and the `serve` / `replay` commands."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
import time

import msgpack
import numpy as np
import pytest

from posetween.stream import Engine, EngineConfig, wire
from posetween.stream.client import PosePublisher, PoseSubscriber
from posetween.stream.service import Service, check_bind_address

from stream_support import (REPO, Collector, ServeProcess, free_tcp_address, moving_pose, standing_pose, tiny_backend,
                           tiny_model_file)

RATE = 60.0
FPS = 15.0


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    return tiny_backend(tmp_path_factory.mktemp("model"))


def publish_good(address: str, stop: threading.Event, stream: str = "good"):
    with PosePublisher(address) as pub:
        assert pub.ready
        start, k = time.time(), 0
        while not stop.is_set():
            t = start + k / FPS
            time.sleep(max(0.0, t - time.time()))
            pub.send(stream, t, moving_pose(k / FPS), np.ones(19))
            k += 1


def raw_body(stream="bad", t=None, **fields):
    b = {"v": 1, "stream": stream, "t": time.time() if t is None else t, "layout": "posetween19",
         "xy": standing_pose().reshape(-1).tolist(), "conf": [1.0] * 19}
    b.update(fields)
    return b


def raw(stream="bad", topic=None, **fields) -> bytes:
    return (topic or b"pose/" + stream.encode()) + b"\0" + msgpack.packb(raw_body(stream, **fields))


def test_bad_input_counted_and_dropped_while_good_stream_keeps_rate(backend):
    engine = Engine(backend, EngineConfig(rate=RATE, lookahead=1, budget_ms=100))
    with Service(engine, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*", stats_interval=0.25) as svc:
        good_only = Collector(PoseSubscriber(svc.out_address, streams=["good"]))
        everything = Collector(PoseSubscriber(svc.out_address, stats=True))
        stop = threading.Event()
        good = threading.Thread(target=publish_good, args=(svc.in_address, stop), daemon=True)
        good.start()
        time.sleep(1.0)

        bad = PosePublisher(svc.in_address)
        assert bad.ready
        now = time.time()
        bad.send("ordered", now - 1.0, standing_pose(), seq=10)           # a valid stream, then:
        bad.send("ordered", now - 0.95, standing_pose(), seq=11)
        messages = {
            # (The input subscribes to "pose/": anything else never reaches the service.)
            "malformed": [b"pose/no-separator", b"pose/bad\0\xc1\xc1\xc1", b"pose/bad\0" + msgpack.packb([1, 2])],
            "bad_version": [raw(v=7), raw(v=None)],
            "bad_topic": [raw(topic=b"pose/other")],
            "bad_stream_id": [raw(stream="a b")],
            "bad_field": [raw(t="yesterday"), raw(xy=None), raw(seq=-3)],
            "unknown_layout": [raw(layout="h36m")],
            "bad_joint_count": [raw(layout="body25"), raw(conf=[1.0] * 3)],
            "non_finite": [raw(t=math.nan), raw(t=math.inf),
                           raw(xy=[math.nan] + standing_pose().reshape(-1).tolist()[1:]),
                           raw(conf=[math.inf] + [1.0] * 18)],
            "out_of_range": [raw(xy=[1e12] * 38), raw(conf=[-0.5] * 19)],
            "oversized": [raw(pad="x" * (2 * wire.MAX_MESSAGE_BYTES))],
            "time_backwards": [raw("ordered", t=now - 0.98, seq=12)],     # (back by less than a gap)
            "repeated_seq": [raw("ordered", t=now - 0.9, seq=11)],
        }
        for batch in messages.values():
            for m in batch:
                assert bad.send_raw(m)
        # Larger than ZMQ_MAXMSGSIZE: zmq itself drops the connection (counted as a disconnect);
        # the publisher reconnects by itself.
        bad.send_raw(raw(pad="x" * (8 * wire.MAX_MESSAGE_BYTES)))
        time.sleep(0.5)
        bad.send_raw(raw(v=99))
        time.sleep(2.5)
        t_end = time.time()
        stop.set()
        good.join(2)
        bad.close()
        time.sleep(0.3)
        good_only.stop()
        everything.stop()

    snap = engine.snapshot()
    for reason, batch in messages.items():
        assert snap["drops_by_reason"].get(reason, 0) >= len(batch), (reason, snap["drops_by_reason"])
    assert snap["drops_by_reason"]["bad_version"] >= 3       # the one after the reconnect arrived
    assert snap["disconnects"] >= 1

    # The good stream kept its rate through all of it (2.5 s window after the bad input).
    good = good_only.poses()
    assert good and {p.stream for p in good} == {"good"}
    pub_t = np.array([p.published for p in good])
    window = (pub_t >= t_end - 2.5) & (pub_t < t_end - 0.5)
    assert window.sum() / 2.0 == pytest.approx(RATE, rel=0.02)
    kinds = {p.kind for p, inside in zip(good, window) if inside}
    # From the model throughout (never the fallback); "predicted": the lead shown while it computes.
    assert kinds <= {"keyframe", "interpolated", "predicted"} and "interpolated" in kinds, kinds

    # Unfiltered subscriber: both streams; and the stats topic carries the counters.
    assert {p.stream for p in everything.poses()} == {"good", "ordered"}
    stats = everything.stats()
    assert stats and stats[-1].data["drops"] >= sum(len(b) for b in messages.values())
    assert stats[-1].data["keyframes_in"] > 0 and stats[-1].data["model_ms_p99"] is not None


def test_conflated_subscriber_gets_whole_latest_messages(backend):
    engine = Engine(backend, EngineConfig(rate=120, lookahead=0, budget_ms=50))
    with Service(engine, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*") as svc:
        sub = PoseSubscriber(svc.out_address, streams="s2", conflate=True)
        stop = threading.Event()
        threads = [threading.Thread(target=publish_good, args=(svc.in_address, stop, s), daemon=True)
                   for s in ("s1", "s2")]
        for t in threads:
            t.start()
        time.sleep(1.5)
        latest = sub.recv(timeout=1.0)
        stop.set()
        for t in threads:
            t.join(2)
        sub.close()
    assert latest is not None and latest.stream == "s2" and latest.xy.shape == (19, 2)
    assert time.time() - latest.published < 1.0


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs thread affinity (Linux) and two cores")
def test_model_calls_keep_one_core_and_the_python_threads_the_others(backend):
    engine = Engine(backend, EngineConfig(rate=RATE, lookahead=1, budget_ms=100))
    cores = sorted(os.sched_getaffinity(0))
    with Service(engine, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*") as svc:
        out = Collector(PoseSubscriber(svc.out_address))
        stop = threading.Event()
        source = threading.Thread(target=publish_good, args=(svc.in_address, stop), daemon=True)
        source.start()
        time.sleep(1.0)
        affinity = {t.name: os.sched_getaffinity(t.native_id) for t in threading.enumerate()
                    if t.name.startswith("posetween-")}
        stop.set()
        source.join(2)
        out.stop()
    assert out.poses(), "no output"
    calls = [name for name in affinity if name.startswith("posetween-call")]
    assert calls, f"no model call ran: {sorted(affinity)}"
    assert all(affinity[name] == {cores[-1]} for name in calls)
    for name in ("posetween-input", "posetween-model", "posetween-output"):
        assert affinity[name] == set(cores[:-1]), name
    assert os.sched_getaffinity(0) == set(cores), "the caller's own thread was moved"
    # --no-pin leaves them to the scheduler
    engine = Engine(backend, EngineConfig(rate=RATE, lookahead=1, budget_ms=100))
    with Service(engine, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*", pin_cores=False):
        time.sleep(0.2)
        affinity = {t.name: os.sched_getaffinity(t.native_id) for t in threading.enumerate()
                    if t.name.startswith("posetween-")}
    assert all(a == set(cores) for a in affinity.values())


def test_serve_stops_on_sigint_even_when_started_with_it_ignored():
    # A script's background job (`posetween serve &`) inherits SIGINT ignored; `kill -INT` must
    # still stop it, as Ctrl-C does in a terminal.
    svc = ServeProcess("--in", free_tcp_address(), "--out", free_tcp_address(), "--linear-only",
                       preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    svc.proc.send_signal(signal.SIGINT)
    assert svc.proc.wait(timeout=20) == 0, svc.stderr
    svc.stop()
    assert "stopping" in svc.stderr


def test_only_loopback_without_allow_remote():
    for ok in ("tcp://127.0.0.1:5555", "tcp://localhost:1", "tcp://[::1]:7", "ipc:///tmp/x", "inproc://x"):
        check_bind_address(ok)
    for remote in ("tcp://0.0.0.0:5555", "tcp://*:5555", "tcp://192.168.1.4:5555"):
        with pytest.raises(ValueError, match="allow-remote"):
            check_bind_address(remote)
        assert check_bind_address(remote, allow_remote=True) == remote
    with pytest.raises(ValueError):
        check_bind_address("udp://127.0.0.1:5")


def test_serve_and_replay_commands(tmp_path):
    """`posetween serve` in a subprocess, fed by `posetween replay` of an npz (COCO-17)."""
    model = tiny_model_file(tmp_path)
    T = 45
    xy = np.stack([moving_pose(i / 30)[[0, 0, 0, 0, 0, 5, 2, 6, 3, 7, 4, 12, 9, 13, 10, 14, 11]] for i in range(T)])
    np.savez(tmp_path / "seq.npz", xy=xy, conf=np.ones(xy.shape[:2]), fps=30.0, layout="coco17")
    in_addr, out_addr = free_tcp_address(), free_tcp_address()
    refused = subprocess.run([sys.executable, "-m", "posetween.cli", "serve", "--in", "tcp://0.0.0.0:5999"],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "allow-remote" in refused.stderr
    with ServeProcess("--in", in_addr, "--out", out_addr, "--rate", "120", "--backend", "torch",
                      "--model", str(model), "--budget-ms", "100") as serve:
        sub = Collector(PoseSubscriber(out_addr, stats=True))
        replay = subprocess.run([sys.executable, "-m", "posetween.cli", "replay", str(tmp_path / "seq.npz"),
                                 "--fps", "10", "--to", in_addr, "--stream", "npz"],
                                cwd=REPO, capture_output=True, text=True, timeout=60)
        assert replay.returncode == 0, replay.stderr
        time.sleep(0.5)
        sub.stop()
    err = serve.stderr
    assert serve.returncode == 0, err
    poses = sub.poses("npz")
    assert len(poses) > 60 and {p.kind for p in poses} <= {"keyframe", "interpolated", "predicted"}
    assert "serving" in err and "stopping" in err
