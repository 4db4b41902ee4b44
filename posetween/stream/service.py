"""The ZeroMQ service around the engine: keyframes in on a SUB socket, poses out on a PUB socket.

Three threads share one :class:`~posetween.stream.engine.Engine`:

* input: receives, decodes (``wire.py``) and pushes every keyframe as it comes, drops bad
  ones (counted). It never waits for the model, so each keyframe is taken, and stamped, when
  it arrives: a keyframe left in the socket during a model call would look late by the call,
  and its window would get less time;
* model: runs the model on the windows waiting (one batched call) whenever there are any;
  windows that arrive during a call wait for the next, so the calls grow with the load. The
  call runs in a thread of its own, and the next one starts as soon as it ends, before its
  answers are merged: the model keeps one core busy, the threads' Python the other. A full
  batch (``wide_batch`` windows) is split over both cores (``parallel.py``);
* output: sleeps until each output tick, renders, publishes poses, and the ``stats`` topic.
  It never waits for the model: a window not answered within the budget falls back.

Both sockets bind (loopback unless ``allow_remote``): detectors connect PUB sockets to the
input, consumers connect SUB sockets to the output.

The threads share the GIL. Python's default switch interval (5 ms) would let the input
thread hold the output thread past its tick by up to that long, which shows up directly as
output delay; the service sets it to ``switch_interval`` (0.5 ms) for the process, and the
output thread sends a tick's messages in a turn of its own (:class:`Turns`). A full garbage
collection holds the GIL too: the objects loaded at start are frozen out of its reach.
"""

from __future__ import annotations

import gc
import logging
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import zmq
from zmq.utils.monitor import recv_monitor_message

from . import wire
from .engine import Engine
from .parallel import pin, split_cores
from .people import camera_messages
from .security import CurveConfig, make_server, start_authenticator
from .stats import RateLimitedLog, summary_line
from .validate import InputError

log = logging.getLogger("posetween.serve")

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
DRAIN_MAX = 256          # messages taken per input round (then the monitor socket)
YIELD_S = 0.002          # the input thread's pause while the output is behind


class Turns:
    """The output thread's sends in one turn, the input and model threads' work in short turns between.

    Sending a message releases the GIL (pyzmq), and a thread that wants it back waits until
    the holder's switch interval runs out: with the input thread busy, each of a tick's sends
    would wait that long (0.5 ms), and 100 streams' poses would take 50 ms a tick instead of
    one. So the other threads do their work in turns (a keyframe; the Python part of a model
    call, not the model itself, which releases the GIL) and wait while the output thread
    sends a tick's messages; the output thread waits at most for the work in hand. It
    renders and encodes outside its turn (the engine's lock and the GIL share that time)."""

    def __init__(self):
        self._cv = threading.Condition(threading.Lock())
        self._output_wants = False
        self._output = False       # the output thread's turn
        self._workers = 0          # input-side threads in a turn

    @contextmanager
    def output(self):
        with self._cv:
            self._output_wants = True
            while self._workers:
                self._cv.wait()
            self._output_wants, self._output = False, True
        try:
            yield
        finally:
            with self._cv:
                self._output = False
                self._cv.notify_all()

    @contextmanager
    def worker(self):
        self._begin()
        try:
            yield
        finally:
            self._end()

    def _begin(self) -> None:
        with self._cv:
            while self._output or self._output_wants:
                self._cv.wait()
            self._workers += 1

    def _end(self) -> None:
        with self._cv:
            self._workers -= 1
            if self._output_wants and not self._workers:
                self._cv.notify_all()


def check_bind_address(address: str, allow_remote: bool = False) -> str:
    """Refuse to bind anything but loopback (or ipc/inproc) unless ``allow_remote``."""
    scheme, sep, rest = address.partition("://")
    if not sep or not rest:
        raise ValueError(f"bad ZeroMQ address {address!r}: expected tcp://HOST:PORT, ipc://PATH or inproc://NAME")
    if scheme in ("ipc", "inproc"):
        return address
    if scheme != "tcp":
        raise ValueError(f"unsupported transport in {address!r}: use tcp, ipc or inproc")
    host, colon, port = rest.rpartition(":")
    if not colon or not host or not port:
        raise ValueError(f"bad tcp address {address!r}: expected tcp://HOST:PORT")
    if not (host in LOOPBACK_HOSTS or host.startswith("127.")) and not allow_remote:
        raise ValueError(f"refusing to bind {address}: not a loopback address, so other machines could "
                         "send to or read from it. Pass --allow-remote (allow_remote=True) to do so anyway.")
    return address


class Service:
    def __init__(self, engine: Engine, in_address: str = "tcp://127.0.0.1:5555",
                 out_address: str = "tcp://127.0.0.1:5556", *, allow_remote: bool = False,
                 stats_interval: float = 1.0, log_interval: float = 10.0,
                 max_message_bytes: int = wire.MAX_MESSAGE_BYTES, hwm: int = 1000,
                 context: zmq.Context | None = None, switch_interval: float | None = 0.0005,
                 curve: CurveConfig | None = None, pin_cores: bool = True):
        self.engine = engine
        self.curve = curve            # None: plain ZeroMQ (anyone who reaches the sockets may use them)
        self._auth = None
        self.in_address = check_bind_address(in_address, allow_remote)
        self.out_address = check_bind_address(out_address, allow_remote)
        self.stats_interval, self.log_interval = stats_interval, log_interval
        self.max_message_bytes = max_message_bytes
        self.hwm = hwm
        self.switch_interval = switch_interval   # None: leave the process's setting alone
        self._model_cores, self._python_cores = split_cores() if pin_cores else (None, None)
        self._own_context = context is None
        self.ctx = context or zmq.Context()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._disconnect_log = RateLimitedLog(log, every=10.0)
        self._output_behind = threading.Event()
        self._turns = Turns()

    # ------------------------------------------------------------ life

    def start(self) -> "Service":
        """Bind both sockets (errors raise here) and start the threads. The bound addresses
        (with the real port when the address asked for ``*``) are ``in_address``/``out_address``."""
        if self.curve is not None and self._auth is None:
            self._auth = start_authenticator(self.ctx, self.curve)
        sub = self.ctx.socket(zmq.SUB)
        pub = self.ctx.socket(zmq.PUB)
        try:
            for s in (sub, pub):
                s.setsockopt(zmq.LINGER, 0)
                if self.curve is not None:
                    make_server(s, self.curve)
            # zmq drops the connection of a peer that sends more than this; smaller oversized
            # messages reach the decoder and are counted as "oversized".
            sub.setsockopt(zmq.MAXMSGSIZE, 4 * self.max_message_bytes)
            sub.setsockopt(zmq.RCVHWM, self.hwm)
            sub.setsockopt(zmq.SUBSCRIBE, wire.POSE_PREFIX)
            sub.setsockopt(zmq.SUBSCRIBE, wire.FRAME_PREFIX)   # several people per message (people.py)
            pub.setsockopt(zmq.SNDHWM, self.hwm)
            sub.bind(self.in_address)
            pub.bind(self.out_address)
        except zmq.ZMQError as e:
            sub.close(0)
            pub.close(0)
            raise OSError(f"cannot bind {self.in_address} / {self.out_address}: {e}") from e
        self.in_address = sub.getsockopt_string(zmq.LAST_ENDPOINT)
        self.out_address = pub.getsockopt_string(zmq.LAST_ENDPOINT)
        monitor = sub.get_monitor_socket(zmq.EVENT_ACCEPTED | zmq.EVENT_DISCONNECTED
                                         | zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                                         | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
        if self.switch_interval is not None:
            sys.setswitchinterval(self.switch_interval)
        # What is loaded by now (the model, its runtime, imports: about 50,000 objects) lives as
        # long as the process: out of the collector's reach, so that a full collection does not
        # walk it, holding the GIL (both threads) for 50-150 ms.
        gc.freeze()
        self._threads = [
            threading.Thread(target=self._input_loop, args=(sub, monitor), name="posetween-input", daemon=True),
            threading.Thread(target=self._model_loop, name="posetween-model", daemon=True),
            threading.Thread(target=self._output_loop, args=(pub,), name="posetween-output", daemon=True),
        ]
        for t in self._threads:
            t.start()
        log.info("serving: keyframes in on %s (SUB, topic pose/<id>), poses out on %s (PUB), "
                 "%g Hz, lookahead %d, budget %g ms%s", self.in_address, self.out_address,
                 self.engine.cfg.rate, self.engine.cfg.lookahead, self.engine.cfg.budget_ms,
                 f"; CurveZMQ, {len(self.curve.clients)} client keys" if self.curve is not None else "")
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)
        self._threads = []
        if self._auth is not None:
            self._auth.stop()
            self._auth = None
        if self._own_context:
            self.ctx.term()

    def __enter__(self) -> "Service":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Start (if not started) and run until interrupted (Ctrl-C / SIGTERM)."""
        import signal
        if not self._threads:
            self.start()
        stop = lambda *_: self._stop.set()
        # SIGINT too: a process started in the background by a script inherits it ignored,
        # and `kill -INT` would not stop it.
        old = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            while not self._stop.wait(0.5):
                pass
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)
            log.info("stopping: %s", summary_line(self.engine.snapshot()))
            self.stop()

    # ------------------------------------------------------------ threads

    def _input_loop(self, sub: zmq.Socket, monitor: zmq.Socket) -> None:
        pin(self._python_cores)
        engine = self.engine
        poller = zmq.Poller()
        poller.register(sub, zmq.POLLIN)
        poller.register(monitor, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                if self._output_behind.is_set():   # let the output thread catch up first
                    time.sleep(YIELD_S)
                events = dict(poller.poll(50))
                if sub in events:
                    for _ in range(DRAIN_MAX):   # then the monitor, even under a flood
                        try:
                            frame = sub.recv(zmq.NOBLOCK, copy=False)
                        except zmq.Again:
                            break
                        now = engine.now()
                        with self._turns.worker():
                            self._take(frame, now)
                if monitor in events:
                    event = recv_monitor_message(monitor)
                    # Counted as what they are: connections opened and closed. ZeroMQ does not
                    # say why one closed (a publisher that exits, or one whose message was over
                    # ZMQ_MAXMSGSIZE), so the log says both.
                    if event["event"] == zmq.EVENT_ACCEPTED:
                        engine.stats.add("connects")
                    elif event["event"] in (zmq.EVENT_HANDSHAKE_FAILED_AUTH, zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL,
                                            zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL):
                        engine.stats.add("refused")
                        self._disconnect_log("refused", "refused a publisher: %s", "its key is not listed"
                                             if event["event"] == zmq.EVENT_HANDSHAKE_FAILED_AUTH
                                             else "not a CURVE client of this key")
                    elif event["event"] == zmq.EVENT_DISCONNECTED:
                        engine.stats.add("disconnects")
                        self._disconnect_log("disconnect", "a publisher's connection closed (it exited, or sent a "
                                             "message over %d bytes, which zmq refuses)", 4 * self.max_message_bytes)
        except Exception:
            log.exception("input loop failed")
            self._stop.set()
        finally:
            sub.disable_monitor()
            monitor.close(0)
            sub.close(0)

    def _model_loop(self) -> None:
        """Runs the model on the waiting windows, one batched call at a time, while the input
        thread goes on taking keyframes. The call itself runs on a thread of its own, so that
        the next call starts as soon as one ends, before its answers are merged: the merge
        (Python) and the next call (onnxruntime, without the GIL) use the two cores at once."""
        pin(self._python_cores)
        engine = self.engine
        runner = ThreadPoolExecutor(1, thread_name_prefix="posetween-call", initializer=pin,
                                    initargs=(self._model_cores,))
        running = None   # (call, future) on the runner
        try:
            while not self._stop.is_set():
                if running is None:
                    if engine.wait_for_work(0.05):
                        running = self._begin_call(runner)
                        due = engine.due() if running is None else None
                        if due is not None:   # held for a larger call (an engine with defer_batches)
                            time.sleep(min(max(due - engine.now(), 0.0), 0.05))
                    continue
                call, future = running
                future.result()
                running = self._begin_call(runner)
                with self._turns.worker():
                    engine.end_call(call)
        except Exception:
            log.exception("model loop failed")
            self._stop.set()
        finally:
            runner.shutdown(wait=False)

    def _begin_call(self, runner: ThreadPoolExecutor):
        """Take the waiting windows and start their call on ``runner`` (None: no call)."""
        with self._turns.worker():
            call = self.engine.begin_call()
        return None if call is None or not call.batch else (call, runner.submit(call.run))

    def _take(self, frame: zmq.Frame, now: float) -> None:
        """Decode one input message and give it to the engine (bad ones are counted)."""
        engine = self.engine
        try:
            m = wire.decode_input(frame.bytes, self.max_message_bytes)
            if self.curve is not None and not self._allowed(frame, m):
                return
            if isinstance(m, wire.FrameMessage):
                engine.push_frame(m.camera, m.time, m.xy, m.conf, m.layout, m.ids, now=now)
            else:
                engine.push(m.stream, m.time, m.xy, m.conf, m.layout, m.seq, now=now)
        except InputError as e:
            engine.drop(e.reason, str(e))
        except Exception as e:  # a bug must not stop every other stream
            if not engine.stats.drops["internal_error"]:
                log.exception("failed on a message (%s)", e)
            engine.drop("internal_error", f"{type(e).__name__}: {e}")

    def _allowed(self, frame: zmq.Frame, m) -> bool:
        """CURVE: whether the sender's key may write this message's stream ids (its prefix)."""
        try:
            user = frame.get("User-Id")
        except zmq.ZMQError:
            user = None
        prefix = self.curve.prefix_of(user)
        target = m.camera if isinstance(m, wire.FrameMessage) else m.stream
        if prefix is None or not target.startswith(prefix):
            self.engine.drop("not_allowed", f"stream {target!r}: the sender's key may write only ids starting "
                                            f"with {prefix!r}")
            return False
        return True

    def _warn_fallbacks(self, snap: dict) -> None:
        last = getattr(self, "_last_log_snap", None)
        self._last_log_snap = snap
        if last is None:
            return
        windows = snap["keyframes_in"] - last["keyframes_in"]
        fallbacks = snap["fallbacks"] - last["fallbacks"]
        if windows >= 10 and fallbacks > 0.2 * windows:
            log.warning("%d%% of windows fell back to linear interpolation: the model answers in %s ms "
                        "(p50, from arrival) against a budget of %g ms; raise --budget-ms or use a faster "
                        "backend", round(100 * fallbacks / windows), snap["answer_ms_p50"],
                        self.engine.cfg.budget_ms)

    def _output_loop(self, pub: zmq.Socket) -> None:
        pin(self._python_cores)
        engine = self.engine
        next_stats = engine.now() + self.stats_interval
        next_log = engine.now() + self.log_interval
        try:
            while not self._stop.is_set():
                nt, now = engine.next_tick(), engine.now()
                if nt is not None and nt > now:
                    time.sleep(min(nt - now, 0.05))
                    continue
                # Behind by more than two ticks: the input thread yields to this one (it holds
                # the GIL for every keyframe it decodes); the output keeps its rate first.
                behind = nt is not None and now - nt > 2 * engine.ticks.period
                self._output_behind.set() if behind else self._output_behind.clear()
                poses = engine.render(fresh=True)
                published = time.time()
                messages = wire.encode_poses(poses, published)
                messages += camera_messages(poses, published)
                with self._turns.output():
                    for msg in messages:
                        try:
                            pub.send(msg, zmq.NOBLOCK)
                        except zmq.Again:
                            engine.stats.add("send_dropped")
                now = engine.now()
                if now >= next_stats or now >= next_log:
                    snap = engine.snapshot()
                    if now >= next_stats:
                        next_stats = max(next_stats + self.stats_interval, now)
                        try:
                            pub.send(wire.encode_stats(snap, time.time()), zmq.NOBLOCK)
                        except zmq.Again:
                            pass
                    if now >= next_log:
                        next_log = max(next_log + self.log_interval, now)
                        log.info("%s", summary_line(snap))
                        self._warn_fallbacks(snap)
        except Exception:
            log.exception("output loop failed")
            self._stop.set()
        finally:
            pub.close(0)
