"""The ``posetween`` command.

Each subcommand lives in its own module, which exposes ``register(subparsers)``: it adds its
parser and sets ``func`` to the function that runs it. Those modules import torch, scipy or
OpenCV, which takes seconds, so ``posetween --help`` is built from the table below alone and a
command's module is imported only when that command runs (or its ``--help`` is asked for).

:func:`run` is the console script: :func:`main` inside the error boundary, which turns a
user's mistake (a missing file, a bad value, a foreign model file, a missing optional
dependency) into one line ``posetween <cmd>: error: ...`` and exit status 2, with the traceback
only under ``-v``. :func:`main` itself lets exceptions through, for tests and scripts.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import re
import sys

from posetween.shipped import MissingModelError

# (command, module that registers it, one-line help). A module may register several commands.
COMMANDS = (
    ("demo", "posetween.stream.demo", "live demo: pose estimation at a few fps in, smooth poses out, on a video"),
    ("serve", "posetween.stream.cli", "run the streaming upsampler as a ZeroMQ service"),
    ("replay", "posetween.stream.cli", "send a recorded pose sequence to a running service, in real time"),
    ("upsample", "posetween.offline.upsample", "upsample a recorded pose sequence (OpenPose JSON, npz, JSON lines)"),
    ("visualize", "posetween.offline.visualize", "draw pose sequences side by side into a GIF or MP4"),
    ("export", "posetween.export.cli", "export the model to ONNX or TorchScript"),
    ("bench", "posetween.export.cli", "measure the runtime backends' latency and accuracy"),
    ("data", "posetween.training.cli", "build a training dataset from motion capture (BVH, AMASS)"),
    ("train", "posetween.training.cli", "train the motion model"),
    ("eval", "posetween.training.cli", "compare the model with interpolation baselines"),
)

DESCRIPTION = """\
Streaming 2D human pose upsampler: low-rate, noisy body keypoints in, smooth high-rate poses out.

Examples:
  posetween demo                      the live demo on the shipped video clip
  posetween serve --rate 120          the ZeroMQ service (tcp://127.0.0.1:5555 in, :5556 out)
  posetween upsample --input poses.npz --save-dir out --upsample-rate 8

Run "posetween COMMAND --help" for a command's options. Add -v for debug logs and tracebacks.
"""

# Optional dependencies by import name -> the extra that installs them.
EXTRA_OF_MODULE = {
    "torch": "train", "scipy": "train", "h5py": "train", "yaml": "train", "tensorboard": "train",
    "onnx": "train", "onnxscript": "train", "matplotlib": "train", "tqdm": "train",
    "cv2": "demo", "mediapipe": "demo", "imageio": "demo", "imageio_ffmpeg": "demo",
}


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage mistake told in one line (the usage is a --help away)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _root_parser() -> argparse.ArgumentParser:
    # Subcommand parsers take the root's class (add_subparsers' default parser_class).
    parser = _Parser(prog="posetween", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging; tracebacks on errors")
    return parser


def _command_of(argv: list[str]) -> str | None:
    """The subcommand named in ``argv`` (the first word that is not an option), if any."""
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser for ``command`` (its module imported and registered), or, for None or an
    unknown word, the light parser that only lists the commands (argparse then reports an
    unknown command itself)."""
    parser = _root_parser()
    sub = parser.add_subparsers(title="commands", dest="command", required=True, metavar="COMMAND")
    module = next((m for name, m, _ in COMMANDS if name == command), None)
    if module is None:
        for name, _, help_text in COMMANDS:
            sub.add_parser(name, help=help_text)
        return parser
    importlib.import_module(module).register(sub)
    for p in sub.choices.values():
        _user_facing(p)
    return parser


# reStructuredText in the modules' docstrings (which double as --help text) -> plain text.
_RST = ((re.compile(r":[a-z]+:`~?([^`]+)`"), r"\1"),   # :mod:`posetween.x` -> posetween.x
        (re.compile(r"``([^`]+)``"), r"\1"),            # ``code`` -> code
        (re.compile(r"(\S)::$", re.M), r"\1:"))          # "as follows::" -> "as follows:"


def plain_text(text: str | None) -> str | None:
    if not text:
        return text
    for pattern, repl in _RST:
        text = pattern.sub(repl, text)
    return text


def _user_facing(parser: argparse.ArgumentParser) -> None:
    """Plain help text, ``-v`` after the command too, and choices for ``--backend``, in this
    parser and its subcommands' parsers."""
    from posetween.export.backends import BACKENDS

    parser.description = plain_text(parser.description)
    option_strings = {s for a in parser._actions for s in a.option_strings}
    if "-v" not in option_strings and "--verbose" not in option_strings:
        parser.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                            help="debug logging; tracebacks on errors")
    for action in parser._actions:
        action.help = plain_text(action.help)
        if action.dest == "backend" and action.choices is None:
            action.choices = BACKENDS
        if isinstance(action, argparse._SubParsersAction):
            for p in action.choices.values():
                _user_facing(p)


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the command; exceptions propagate (see :func:`run`)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(_command_of(argv)).parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return int(args.func(args) or 0)


def run(argv: list[str] | None = None) -> int:
    """The ``posetween`` console script: :func:`main` inside the error boundary."""
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = any(a in ("-v", "--verbose") for a in argv)
    command = _command_of(argv) or "posetween"
    try:
        return main(argv)
    except KeyboardInterrupt:
        print(f"posetween {command}: interrupted", file=sys.stderr)
        return 130
    except SystemExit as e:
        if not isinstance(e.code, str):   # argparse's own exits (--help, usage errors) and exit codes
            raise
        message, status = e.code, 2       # a command's SystemExit("what went wrong")
    except Exception as e:  # noqa: BLE001 -- the boundary: every error becomes one line
        if verbose:
            raise
        message, status = describe_error(e), 2 if is_user_error(e) else 1
    print(f"posetween {command}: error: {_one_line(message, command)}", file=sys.stderr)
    return status


def is_user_error(e: BaseException) -> bool:
    """Errors a user can fix (a path, a value, a file, an install) rather than bugs."""
    return isinstance(e, (ValueError, OSError, ImportError, RuntimeError))


def describe_error(e: BaseException) -> str:
    """What went wrong, for a user: the exception's message, with the fix where we know it."""
    if isinstance(e, ModuleNotFoundError) and e.name:
        top = e.name.split(".")[0]
        extra = EXTRA_OF_MODULE.get(top)
        what = f"this command needs {top}, which is not installed" if str(e).startswith("No module named") else str(e)
        if extra:
            return f"{what}: pip install 'posetween[{extra}]' (or make setup in a clone)"
        return f"{what} ({e.name})"
    if isinstance(e, OSError):
        # h5py's FileNotFoundError carries the name only inside its message.
        filename = e.filename or (re.findall(r"name = '([^']*)'", str(e)) or [None])[0]
        if isinstance(e, MissingModelError):
            return f"{filename}: {e.strerror}"
        if filename and e.errno == errno.ENOENT:
            return f"{filename}: no such file or directory"
        if filename and e.strerror:
            return f"{filename}: {e.strerror}"
    if is_user_error(e):
        return str(e) or type(e).__name__
    return f"{type(e).__name__}: {e} (an unexpected error; run with -v for the traceback)"


def _one_line(message: str, command: str) -> str:
    """The message without its own "posetween <cmd>:" / "error:" prefix, on one line."""
    message = " ".join(str(message).split())
    for prefix in (f"posetween {command}: ", "posetween: ", "error: "):
        if message.startswith(prefix):
            message = message[len(prefix):]
    return message


if __name__ == "__main__":   # python -m posetween.cli (e.g. under torchrun)
    sys.exit(run())
