"""The wire format (version 1): one ZeroMQ frame per message, ``TOPIC \\0 MSGPACK-BODY``.

See README.md (section "Wire format"). Topics are ``pose/<stream id>`` (keyframes in, poses out),
``frame/<camera>`` (several people of one camera frame in; every person of a camera at an output
tick out) and ``stats``; the NUL after the topic makes a prefix subscription to ``pose/cam1\\0``
match stream ``cam1`` only, and ``pose/`` every stream. The body is a msgpack map.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np

from .frames import KINDS, OutputPose
from .validate import InputError, check_seq, check_stream_id, check_time

VERSION = 1
SEP = b"\x00"
POSE_PREFIX = b"pose/"
FRAME_PREFIX = b"frame/"
STATS_TOPIC = b"stats"
MAX_MESSAGE_BYTES = 16 * 1024      # larger messages are dropped ("oversized")
MAX_TOPIC_BYTES = 128


def pose_topic(stream_id: str) -> bytes:
    """The exact topic of one stream, NUL included: subscribe to this to get only that stream."""
    return POSE_PREFIX + check_stream_id(stream_id).encode("ascii") + SEP


@dataclass
class KeyframeMessage:
    """A decoded input message: the pose still in its source layout (checked by the engine)."""
    stream: str
    time: float
    xy: Any                 # (J, 2) / flat 2J numbers / float32 array
    conf: Any | None
    layout: str | None
    seq: int | None


@dataclass
class FrameMessage:
    """A decoded multi-person frame: N people of one camera, each still in the source layout."""
    camera: str
    time: float
    xy: np.ndarray          # (N, J, 2)
    conf: np.ndarray        # (N, J)
    layout: str | None
    ids: list | None        # the detector's identities, or None (the service tracks people)
    seq: int | None


@dataclass
class StatsMessage:
    data: dict
    published: float | None = None


def _split(msg: bytes) -> tuple[bytes, bytes]:
    i = msg.find(SEP, 0, MAX_TOPIC_BYTES + 1)
    if i < 0:
        raise InputError("malformed", f"no topic separator (NUL) in the first {MAX_TOPIC_BYTES} bytes")
    return msg[:i], msg[i + 1:]


def _unpack(body: bytes) -> dict:
    try:
        obj = msgpack.unpackb(body, raw=False, strict_map_key=False, max_bin_len=MAX_MESSAGE_BYTES,
                              max_str_len=MAX_MESSAGE_BYTES, max_array_len=4096, max_map_len=64)
    except Exception as e:  # msgpack raises several types (ExtraData, FormatError, ValueError...)
        raise InputError("malformed", f"body is not msgpack: {type(e).__name__}") from None
    if not isinstance(obj, dict):
        raise InputError("malformed", f"body must be a msgpack map, got {type(obj).__name__}")
    v = obj.get("v")
    if isinstance(v, bool) or not isinstance(v, int):
        raise InputError("bad_version", "schema version field 'v' missing")
    if v != VERSION:
        raise InputError("bad_version", f"schema version {v} not supported (this server speaks {VERSION})")
    return obj


def _array(value, name: str, required: bool):
    if value is None:
        if required:
            raise InputError("bad_field", f"field {name!r} missing")
        return None
    if isinstance(value, (bytes, bytearray)):
        if len(value) % 4:
            raise InputError("bad_field", f"field {name!r}: binary data must be little-endian float32")
        return np.frombuffer(value, dtype="<f4")
    if isinstance(value, (list, tuple)):
        return value
    raise InputError("bad_field", f"field {name!r} must be an array of numbers or float32 bytes, "
                                  f"got {type(value).__name__}")


# ---------------------------------------------------------------- keyframes (input)

def encode_keyframe(stream_id: str, time: float, xy, conf=None, layout: str | None = "posetween19",
                    seq: int | None = None) -> bytes:
    """A keyframe message. ``xy (J, 2)``, ``conf (J,)`` or None; missing joints: conf 0 (NaN allowed)."""
    xy = np.asarray(xy, dtype=np.float64)
    body: dict[str, Any] = {"v": VERSION, "stream": stream_id, "t": float(time),
                            "xy": xy.reshape(-1).tolist()}
    if conf is not None:
        body["conf"] = np.asarray(conf, dtype=np.float64).reshape(-1).tolist()
    if layout is not None:
        body["layout"] = layout
    if seq is not None:
        body["seq"] = int(seq)
    return pose_topic(stream_id) + msgpack.packb(body, use_bin_type=True)


def decode_keyframe(msg: bytes, max_bytes: int = MAX_MESSAGE_BYTES) -> KeyframeMessage:
    """Check a message's structure (raises :class:`InputError`); the pose itself is checked
    by the engine (``validate.to_model_pose``)."""
    topic, obj = _open(msg, POSE_PREFIX, "pose/<stream id>", max_bytes)
    stream = check_stream_id(obj.get("stream"))
    if topic[len(POSE_PREFIX):] != stream.encode("ascii"):
        raise InputError("bad_topic", f"topic {topic[:80]!r} does not match stream id {stream!r}")
    t, seq, layout = _time_seq_layout(obj)
    return KeyframeMessage(stream, t, _array(obj.get("xy"), "xy", True), _array(obj.get("conf"), "conf", False),
                           layout, seq)


def _open(msg: bytes, prefix: bytes, expected: str, max_bytes: int) -> tuple[bytes, dict]:
    """A message's topic and body map, after the checks every input message gets."""
    if len(msg) > max_bytes:
        raise InputError("oversized", f"message of {len(msg)} bytes (limit {max_bytes})")
    topic, body = _split(msg)
    if not topic.startswith(prefix):
        raise InputError("bad_topic", f"topic {topic[:40]!r} is not {expected}")
    return topic, _unpack(body)


def _time_seq_layout(obj: dict) -> tuple[float, int | None, str | None]:
    """The fields a keyframe and a frame share: capture time, sequence number, layout."""
    if "t" not in obj:
        raise InputError("bad_field", "field 't' (capture time, seconds) missing")
    t = check_time(obj["t"])
    seq = check_seq(obj.get("seq"))
    layout = obj.get("layout")
    if layout is not None and not isinstance(layout, str):
        raise InputError("bad_field", "field 'layout' must be a string")
    return t, seq, layout


def _person_array(value, name: str, i: int) -> np.ndarray:
    arr = _array(value, f"people[{i}].{name}", name == "xy")
    try:
        return None if arr is None else np.asarray(arr, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError("bad_field", f"people[{i}].{name} must be numbers") from None


def encode_frame(camera: str, time: float, xy, conf=None, layout: str | None = None, ids=None,
                 seq: int | None = None, binary: bool = False) -> bytes:
    """A multi-person frame message: ``xy (N, J, 2)``, ``conf (N, J)`` or None, ``ids`` (N
    ints/strings, the detector's identities) or None. ``binary``: float32 bytes (smaller:
    about 8 bytes a joint instead of 18, for many people or many joints)."""
    xy = np.asarray(xy, dtype=np.float64).reshape(len(xy), -1, 2) if len(xy) else np.zeros((0, 0, 2))
    pack = (lambda a: np.asarray(a, "<f4").tobytes()) if binary else (lambda a: np.asarray(a, np.float64).ravel().tolist())
    people = []
    for i in range(len(xy)):
        person: dict[str, Any] = {"xy": pack(xy[i])}
        if conf is not None:
            person["conf"] = pack(conf[i])
        if ids is not None:
            person["id"] = ids[i] if isinstance(ids[i], str) else int(ids[i])
        people.append(person)
    body: dict[str, Any] = {"v": VERSION, "camera": camera, "t": float(time), "people": people}
    if layout is not None:
        body["layout"] = layout
    if seq is not None:
        body["seq"] = int(seq)
    return FRAME_PREFIX + check_stream_id(camera).encode("ascii") + SEP + msgpack.packb(body, use_bin_type=True)


def decode_frame(msg: bytes, max_bytes: int = MAX_MESSAGE_BYTES) -> FrameMessage:
    """Check a multi-person frame's structure (raises :class:`InputError`); each pose is checked
    by the engine."""
    topic, obj = _open(msg, FRAME_PREFIX, "frame/<camera>", max_bytes)
    camera = check_stream_id(obj.get("camera"))
    if "/" in camera or topic[len(FRAME_PREFIX):] != camera.encode("ascii"):
        raise InputError("bad_topic", f"topic {topic[:80]!r} does not match camera id {camera!r} (no '/' in it)")
    t, seq, layout = _time_seq_layout(obj)
    people = obj.get("people")
    if not isinstance(people, list) or not all(isinstance(p, dict) for p in people):
        raise InputError("bad_field", "field 'people' must be an array of maps")
    xys, confs, ids = [], [], []
    for i, p in enumerate(people):
        xy = _person_array(p.get("xy"), "xy", i)
        xy = xy.reshape(-1, 2) if xy.ndim == 1 and xy.size % 2 == 0 else xy
        if xy.ndim != 2 or xy.shape[1] != 2 or (xys and len(xy) != len(xys[0])):
            raise InputError("bad_joint_count", f"people[{i}].xy: every person needs the same J joints (J, 2)")
        c = _person_array(p.get("conf"), "conf", i)
        c = np.ones(len(xy)) if c is None else c.reshape(-1)
        if c.shape != (len(xy),):
            raise InputError("bad_joint_count", f"people[{i}]: {len(xy)} joints but {c.size} confidences")
        pid = p.get("id")
        if pid is not None and (isinstance(pid, bool) or not isinstance(pid, (int, str))):
            raise InputError("bad_field", f"people[{i}].id must be an integer or a string")
        xys.append(xy)
        confs.append(c)
        ids.append(pid)
    if any(pid is None for pid in ids) and any(pid is not None for pid in ids):
        raise InputError("bad_field", "give an id to every person of a frame or to none")
    J = len(xys[0]) if xys else 0
    return FrameMessage(camera, t, np.stack(xys) if xys else np.zeros((0, J, 2)),
                        np.stack(confs) if confs else np.zeros((0, J)), layout,
                        ids if ids and ids[0] is not None else None, seq)


def decode_input(msg: bytes, max_bytes: int = MAX_MESSAGE_BYTES) -> KeyframeMessage | FrameMessage:
    """A message of the service's input socket: a keyframe (``pose/``) or a frame (``frame/``)."""
    if msg.startswith(FRAME_PREFIX):
        return decode_frame(msg, max_bytes)
    return decode_keyframe(msg, max_bytes)


# ---------------------------------------------------------------- poses and stats (output)

def encode_pose(pose: OutputPose, published: float) -> bytes:
    return encode_poses([pose], published)[0]


def encode_poses(poses: list[OutputPose], published: float) -> list[bytes]:
    """:func:`encode_pose` of many (an output tick's), their joints made lists in one go."""
    pub = float(published)
    return [POSE_PREFIX + p.stream.encode("ascii") + SEP
            + msgpack.packb({"v": VERSION, **_pose_fields(p, xy, conf), "pub": pub}, use_bin_type=True)
            for p, xy, conf in zip(poses, *_joint_lists(poses))]


def _joint_lists(poses: list[OutputPose]) -> tuple[list, list]:
    """Every pose's ``xy`` and ``conf`` as flat lists of floats (one conversion for all: per
    pose, they cost more than the rest of its message)."""
    if not poses:
        return [], []
    n = len(poses)
    xy = np.array([p.xy for p in poses], np.float64).reshape(n, -1).tolist()
    return xy, np.array([p.conf for p in poses], np.float64).reshape(n, -1).tolist()


def _pose_fields(pose: OutputPose, xy: list, conf: list) -> dict:
    return {"stream": pose.stream, "seq": pose.seq, "t": float(pose.time), "kind": pose.kind,
            "segment": pose.segment, "layout": pose.layout, "xy": xy, "conf": conf}


def encode_camera_frame(camera: str, poses, published: float) -> bytes:
    """Every person of one camera at one output tick: topic ``frame/<camera>``, ``people`` a list
    of pose maps (the per-person message's fields, plus ``id``: the person part of the stream)."""
    people = [{"id": p.stream.partition("/")[2], **_pose_fields(p, xy, conf)}
              for p, xy, conf in zip(poses, *_joint_lists(poses))]
    body = {"v": VERSION, "camera": camera, "pub": float(published), "people": people}
    return FRAME_PREFIX + camera.encode("ascii") + SEP + msgpack.packb(body, use_bin_type=True)


def decode_camera_frame(msg: bytes) -> tuple[str, list[OutputPose]]:
    """``(camera, poses)`` of a ``frame/<camera>`` output message."""
    topic, body = _split(msg)
    if not topic.startswith(FRAME_PREFIX):
        raise InputError("bad_topic", f"topic {topic[:40]!r} is not frame/<camera>")
    obj = _unpack(body)
    try:
        return obj["camera"], [_pose_from(p, obj.get("pub")) for p in obj["people"]]
    except (KeyError, TypeError, ValueError) as e:
        raise InputError("bad_field", f"camera frame field problem: {e}") from None


def _pose_from(obj: dict, published) -> OutputPose:
    kind = obj["kind"]
    if kind not in KINDS:
        raise InputError("bad_field", f"unknown pose kind {kind!r}")
    return OutputPose(stream=obj["stream"], seq=int(obj["seq"]), time=float(obj["t"]), kind=kind,
                      xy=np.asarray(obj["xy"], np.float64).reshape(-1, 2),
                      conf=np.asarray(obj["conf"], np.float64), segment=int(obj.get("segment", 0)),
                      layout=obj.get("layout", "posetween19"), published=published)


def encode_stats(data: dict, published: float) -> bytes:
    return STATS_TOPIC + SEP + msgpack.packb({"v": VERSION, "pub": float(published), **data}, use_bin_type=True)


def decode_output(msg: bytes) -> OutputPose | StatsMessage:
    """Decode a message of the output socket (raises :class:`InputError` when it is not one)."""
    topic, body = _split(msg)
    obj = _unpack(body)
    if topic == STATS_TOPIC:
        published = obj.pop("pub", None)
        obj.pop("v", None)
        return StatsMessage(obj, published)
    if not topic.startswith(POSE_PREFIX):
        raise InputError("bad_topic", f"unknown topic {topic[:40]!r}")
    try:
        return _pose_from(obj, obj.get("pub"))
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, InputError):
            raise
        raise InputError("bad_field", f"pose message field problem: {e}") from None
