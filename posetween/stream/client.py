"""Python helpers for clients of ``posetween serve``.

Send keyframes from a detector::

    from posetween.stream.client import PosePublisher
    with PosePublisher("tcp://127.0.0.1:5555") as pub:
        pub.send("cam0", capture_time, joints, conf, layout="coco17")   # joints (17, 2) pixels
        pub.send_frame("cam1", capture_time, people_xy, people_conf, layout="coco17")   # (N, 17, 2): cam1/0, cam1/1 ...

Receive poses in a game or robot loop::

    from posetween.stream.client import PoseSubscriber
    with PoseSubscriber("tcp://127.0.0.1:5556", streams=["cam0"], conflate=True) as sub:
        pose = sub.recv(timeout=1.0)        # OutputPose: .time .kind .xy (19, 2) .conf (19,)

``conflate=True`` keeps only the newest message (ZMQ_CONFLATE): for one stream per
subscriber, when only the latest pose matters.
"""

from __future__ import annotations

import time

import zmq

from . import wire
from .frames import OutputPose
from .security import make_client
from .validate import to_model_pose
from .wire import StatsMessage


class _Client:
    """A socket of its own (and a context, unless one is given), closed on ``close()`` or at
    the end of a ``with`` block."""

    def __init__(self, socket_type: int, context: zmq.Context | None):
        self._own_context = context is None
        self.ctx = context or zmq.Context()
        self.sock = self.ctx.socket(socket_type)

    def close(self) -> None:
        self.sock.close()
        if self._own_context:
            self.ctx.term()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class PosePublisher(_Client):
    """Publishes keyframes to the service's input. Connects an XPUB socket (a PUB that also
    sees subscriptions) so that :meth:`wait_ready` can tell when the service listens: a PUB
    drops what it sends before that. Sending never blocks (ZeroMQ drops at its high-water mark)."""

    def __init__(self, address: str = "tcp://127.0.0.1:5555", *, wait: float = 2.0,
                 context: zmq.Context | None = None, hwm: int = 1000,
                 curve: tuple[bytes, bytes, bytes] | None = None):
        super().__init__(zmq.XPUB, context)
        self.sock.setsockopt(zmq.LINGER, 200)
        self.sock.setsockopt(zmq.SNDHWM, hwm)
        if curve is not None:        # (client public, client secret, server public), Z85
            make_client(self.sock, curve)
        self.sock.connect(address)
        self.address = address
        self._seq: dict[str, int] = {}
        self.ready = self.wait_ready(wait) if wait else False

    def wait_ready(self, timeout: float = 2.0) -> bool:
        """Wait until a service subscribes to this publisher (True), or the timeout (False)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if self.sock.poll(int(min(left, 0.05) * 1000) + 1):
                msg = self.sock.recv()
                if msg[:1] == b"\x01":
                    self.ready = True
                    return True

    def send(self, stream_id: str, timestamp: float, joints, conf=None, layout: str = "posetween19",
             seq: int | None = None, check: bool = True) -> int:
        """Send one keyframe. ``joints (J, 2)`` in ``layout``, ``conf (J,)`` or None (all 1;
        missing joints: 0). ``timestamp``: the capture time in seconds (the camera's clock).
        ``seq`` defaults to a counter per stream. With ``check`` the pose is validated here
        first (``InputError``). Returns the sequence number sent."""
        if check:
            to_model_pose(joints, conf, layout)
        seq = self._next_seq(stream_id, seq)
        self.send_raw(wire.encode_keyframe(stream_id, timestamp, joints, conf, layout, seq))
        return seq

    def send_frame(self, camera: str, timestamp: float, joints, conf=None, layout: str | None = None,
                   ids=None, seq: int | None = None) -> int:
        """Send one camera frame of several people: ``joints (N, J, 2)``, ``conf (N, J)`` or
        None, in any order. The service gives each person their own stream
        ``<camera>/<person>``: ``ids`` (N ints or strings) when the detector tracks people
        itself, else (None) from its tracker. ``seq`` defaults to a counter per camera.
        Returns the sequence number sent."""
        seq = self._next_seq(wire.FRAME_PREFIX.decode() + camera, seq)
        self.send_raw(wire.encode_frame(camera, timestamp, joints, conf, layout, ids, seq))
        return seq

    def _next_seq(self, key: str, seq: int | None) -> int:
        """``seq``, or one more than the last one sent on ``key`` (a stream, or a camera's frames)."""
        if seq is None:
            seq = self._seq.get(key, -1) + 1
        self._seq[key] = seq
        return seq

    def send_raw(self, data: bytes) -> bool:
        """Send one frame as is (False when ZeroMQ dropped it at the high-water mark)."""
        try:
            self.sock.send(data, zmq.NOBLOCK)
            return True
        except zmq.Again:
            return False


class PoseSubscriber(_Client):
    """Receives output poses (and, with ``stats=True``, the service's counters)."""

    def __init__(self, address: str = "tcp://127.0.0.1:5556", streams=None, conflate: bool = False,
                 *, stats: bool = False, context: zmq.Context | None = None, hwm: int = 10000,
                 curve: tuple[bytes, bytes, bytes] | None = None):
        super().__init__(zmq.SUB, context)
        self.sock.setsockopt(zmq.LINGER, 0)
        if curve is not None:        # (client public, client secret, server public), Z85
            make_client(self.sock, curve)
        if conflate:
            self.sock.setsockopt(zmq.CONFLATE, 1)   # before connect; whole single-frame messages
        else:
            self.sock.setsockopt(zmq.RCVHWM, hwm)
        if streams is None:
            self.sock.setsockopt(zmq.SUBSCRIBE, wire.POSE_PREFIX)
        else:
            for s in ([streams] if isinstance(streams, str) else streams):
                self.sock.setsockopt(zmq.SUBSCRIBE, wire.pose_topic(s))
        if stats:
            self.sock.setsockopt(zmq.SUBSCRIBE, wire.STATS_TOPIC + wire.SEP)
        self.sock.connect(address)
        self.address = address

    def recv(self, timeout: float | None = None) -> OutputPose | StatsMessage | None:
        """The next message (an :class:`OutputPose`, or a :class:`StatsMessage`), or None after
        ``timeout`` seconds (None: wait forever)."""
        if timeout is not None and not self.sock.poll(int(timeout * 1000)):
            return None
        return wire.decode_output(self.sock.recv())

    def __iter__(self):
        while True:
            yield self.recv()


__all__ = ["PosePublisher", "PoseSubscriber", "OutputPose", "StatsMessage"]
