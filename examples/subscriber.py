"""A consumer of `posetween serve`, as a game loop or a robot controller would use it.

Runs its own loop at --fps (like a game's frame loop), takes the newest pose of each stream
without ever blocking, and uses it: here it prints the right wrist, the pose's age and kind.

    posetween serve --rate 120 &                       # the service
    posetween replay data/bandai.h5 --fps 15 &         # a source (or your detector)
    python examples/subscriber.py --stream replay      # this consumer

With a single stream, --conflate makes ZeroMQ keep only the newest message (ZMQ_CONFLATE),
so a slow loop never works through a backlog.
"""

from __future__ import annotations

import argparse
import time

from posetween.core.skeleton import JOINT_INDEX
from posetween.stream.client import OutputPose, PoseSubscriber, StatsMessage

WRIST = JOINT_INDEX["right_wrist"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--address", default="tcp://127.0.0.1:5556", help="the service's output address")
    p.add_argument("--stream", action="append", help="stream id to follow (repeatable; default: all)")
    p.add_argument("--fps", type=float, default=60.0, help="this loop's own rate")
    p.add_argument("--seconds", type=float, default=0, help="stop after this long (0: never)")
    p.add_argument("--conflate", action="store_true", help="keep only the newest message (one stream)")
    p.add_argument("--stats", action="store_true", help="also print the service's counters")
    args = p.parse_args()

    latest: dict[str, OutputPose] = {}
    segment: dict[str, int] = {}
    end = time.monotonic() + args.seconds if args.seconds else None
    with PoseSubscriber(args.address, streams=args.stream, conflate=args.conflate, stats=args.stats) as sub:
        print(f"listening on {args.address} ({', '.join(args.stream) if args.stream else 'all streams'})")
        next_frame = next_report = time.monotonic()
        while end is None or time.monotonic() < end:
            # 1. Take everything that arrived since the last frame, keep the newest per stream.
            while (msg := sub.recv(timeout=0)) is not None:
                if isinstance(msg, StatsMessage):
                    d = msg.data
                    print(f"[stats] streams={d['streams']} in={d['keyframes_in']} out={d['frames_out']} "
                          f"fallbacks={d['fallbacks']} drops={d['drops_by_reason']}")
                    continue
                if segment.get(msg.stream, msg.segment) != msg.segment:
                    print(f"{msg.stream}: restarted (segment {msg.segment}): do not blend with the old pose")
                segment[msg.stream] = msg.segment
                latest[msg.stream] = msg
            # 2. Use the newest pose of each stream every frame (a game would drive a character
            #    with it); print a few times a second.
            report = time.monotonic() >= next_report
            for stream, pose in latest.items():
                x, y = pose.xy[WRIST]
                if report:
                    age_ms = (time.time() - pose.time) * 1000.0     # capture clock = wall clock here
                    seen = "seen" if pose.conf[WRIST] > 0 else "guessed"
                    print(f"{stream}: wrist ({x:7.1f}, {y:7.1f}) {seen:7s} {pose.kind:12s} "
                          f"age {age_ms:6.1f} ms  seq {pose.seq}")
            if report:
                next_report = time.monotonic() + 0.25
            # 3. Wait for the next frame of this loop.
            next_frame += 1.0 / args.fps
            time.sleep(max(0.0, next_frame - time.monotonic()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
