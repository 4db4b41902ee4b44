"""CurveZMQ over real TCP sockets: with a server key pair and a list of client keys, a client
without a listed key is refused (its keyframes never reach the engine, and it reads nothing),
and a listed client cannot write stream ids outside its prefix."""

from __future__ import annotations

import time

import numpy as np
import pytest
import zmq

from posetween.stream import Engine, EngineConfig
from posetween.stream.client import PosePublisher, PoseSubscriber
from posetween.stream.security import CurveConfig, read_clients
from posetween.stream.service import Service

from stream_support import Collector, moving_pose, tiny_backend


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    return tiny_backend(tmp_path_factory.mktemp("model"))


def send_for(pub: PosePublisher, streams: list[str], seconds: float = 1.0, fps: float = 15.0) -> None:
    start = time.time()
    for k in range(int(seconds * fps)):
        time.sleep(max(0.0, start + k / fps - time.time()))
        for s in streams:
            pub.send(s, time.time(), moving_pose(k / fps), np.ones(19), seq=k)


def test_curve_refuses_unknown_keys_and_confines_each_key_to_its_prefix(backend, tmp_path):
    server_pub, server_sec = zmq.curve_keypair()
    alice, bob, mallory = zmq.curve_keypair(), zmq.curve_keypair(), zmq.curve_keypair()
    clients = tmp_path / "clients.txt"
    clients.write_text(f"# key, stream-id prefix\n{alice[0].decode()} alice/\n{bob[0].decode()} bob/\n")
    cfg = CurveConfig(server_pub, server_sec, read_clients(clients))
    engine = Engine(backend, EngineConfig(rate=60, lookahead=1, budget_ms=100))
    with Service(engine, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*", curve=cfg) as svc:
        as_client = lambda key: (key[0], key[1], server_pub)
        reader = Collector(PoseSubscriber(svc.out_address, curve=as_client(bob)))
        stranger = Collector(PoseSubscriber(svc.out_address, curve=as_client(mallory)))
        plain = Collector(PoseSubscriber(svc.out_address))
        a = PosePublisher(svc.in_address, curve=as_client(alice))
        m = PosePublisher(svc.in_address, curve=as_client(mallory), wait=1.0)
        p = PosePublisher(svc.in_address, wait=1.0)
        assert a.ready and not m.ready and not p.ready        # the handshake refuses them
        send_for(a, ["alice/cam1", "bob/cam1"])                # alice also tries bob's ids
        send_for(m, ["alice/cam2", "mallory"], 0.3)
        send_for(p, ["alice/cam3", "plain"], 0.3)
        time.sleep(0.5)
        for c in (reader, stranger, plain):
            c.stop()
        for pub in (a, m, p):
            pub.close()
    snap = engine.snapshot()
    assert {p.stream for p in reader.poses()} == {"alice/cam1"}
    assert not stranger.items and not plain.items          # unlisted keys read nothing either
    assert sorted(engine.streams) == ["alice/cam1"]
    assert snap["drops_by_reason"] == {"not_allowed": 15}   # alice's keyframes for bob's id
    assert snap["refused"] >= 2


def test_curve_config_files(tmp_path):
    import zmq.auth
    _, secret_file = zmq.auth.create_certificates(str(tmp_path), "server")
    key = zmq.curve_keypair()[0].decode()
    other = key[:-1] + ("y" if key.endswith("x") else "x")   # another key (not the same one by chance)
    (tmp_path / "clients").write_text(f"{key}   cam1/   # the first camera\n\n{other}\n")
    cfg = CurveConfig.from_files(secret_file, tmp_path / "clients")
    assert cfg.prefix_of(key) == "cam1/" and cfg.prefix_of(other) == "" and cfg.prefix_of(None) is None
    (tmp_path / "bad").write_text("not-a-key\n")
    with pytest.raises(ValueError, match="Z85"):
        read_clients(tmp_path / "bad")
