"""The CLI's error boundary, through the real `posetween` command (a subprocess): each user
mistake of issue 20 (point 3) ends with exit status 2 and one line
``posetween <command>: error: <what>``, naming what is wrong, and no traceback; ``-v`` shows it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from posetween.core.skeleton import NUM_JOINTS

pytestmark = pytest.mark.slow   # a subprocess each, most of which import torch


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    """Model files from elsewhere and broken ones, and a small valid pose sequence."""
    import onnx
    import torch
    from onnx import TensorProto, helper

    d = tmp_path_factory.mktemp("cli-errors")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "other", [x], [y])
    onnx.save(helper.make_model(graph), str(d / "foreign.onnx"))
    (d / "garbage.onnx").write_bytes(b"this is not a protobuf\n" * 20)
    torch.save({"weights": torch.zeros(3)}, d / "foreign.pt")
    (d / "garbage.pt").write_bytes(b"\x80\x04not a pickle" * 20)
    rng = np.random.default_rng(0)
    np.savez(d / "seq.npz", xy=rng.uniform(100, 400, (12, NUM_JOINTS, 2)), conf=np.ones((12, NUM_JOINTS)), fps=10.0)
    return d


def posetween(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The installed console script when there is one beside this Python, else the module."""
    script = Path(sys.executable).with_name("posetween")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "posetween.cli"]
    env = {**os.environ, "POSETWEEN_CACHE": str(cwd / "cache")}
    return subprocess.run(cmd + list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


# (arguments, words the message must contain). The serve cases fail before binding (their
# addresses are set anyway, so that a wrong success would not collide with a real service).
SERVE = ("--in", "tcp://127.0.0.1:57301", "--out", "tcp://127.0.0.1:57302")
CASES = {
    "demo --rate 0": (("demo", "--rate", "0", "--headless", "--max-frames", "2", "--out", "d.mp4"), ["rate"]),
    "demo --pose-fps 0": (("demo", "--pose-fps", "0", "--headless", "--max-frames", "2", "--out", "d.mp4"),
                          ["pose-fps"]),
    "serve --backend cuda": (("serve", "--backend", "cuda", *SERVE), ["--backend", "cuda", "onnxruntime"]),
    "demo --backend cuda": (("demo", "--backend", "cuda"), ["--backend", "cuda"]),
    "upsample --backend cuda": (("upsample", "--input", "seq.npz", "--save-dir", "o", "--backend", "cuda"),
                                ["--backend", "cuda"]),
    "foreign .onnx (serve)": (("serve", "--model", "foreign.onnx", *SERVE), ["foreign.onnx", "not a posetween model"]),
    "foreign .onnx (upsample)": (("upsample", "--input", "seq.npz", "--save-dir", "o", "--backend", "onnxruntime",
                                  "--model", "foreign.onnx"), ["foreign.onnx", "not a posetween model"]),
    "garbage .onnx": (("upsample", "--input", "seq.npz", "--save-dir", "o", "--backend", "onnxruntime",
                       "--model", "garbage.onnx"), ["garbage.onnx", "not a readable ONNX model"]),
    "foreign .pt": (("upsample", "--input", "seq.npz", "--save-dir", "o", "--model", "foreign.pt"),
                    ["foreign.pt", "not a posetween model"]),
    "garbage .pt": (("export", "--model", "garbage.pt", "--out", "x.onnx"), ["garbage.pt", "not a posetween model"]),
    "export --queries -3": (("export", "--queries", "-3", "--out", "x.onnx"), ["--queries -3", "2 or more"]),
    "upsample: missing model": (("upsample", "--input", "seq.npz", "--save-dir", "o", "--model", "opne"),
                                ["opne", "no such model file", "default, open"]),
    "upsample: missing input": (("upsample", "--input", "nope.npz", "--save-dir", "o"), ["nope.npz", "no such file"]),
    "upsample: missing folder": (("upsample", "--pose-dir", "nope", "--save-dir", "o"), ["nope"]),
    "replay: missing file": (("replay", "nope.h5", "--fps", "15"), ["nope.h5", "no such file"]),
    "visualize: missing file": (("visualize", "nope.npz", "--out", "x.gif"), ["nope.npz", "no such file"]),
    "visualize nope/": (("visualize", "nope/", "--out", "x.gif"), ["nope", "no such file"]),
    "eval: missing data": (("eval", "--data", "nope.h5", "--input-fps", "7.5", "--json", "x.json"),
                           ["nope.h5", "no such file"]),
    "train: missing config": (("train", "--config", "nope.yaml", "--name", "x", "--runs", "runs"),
                              ["nope.yaml", "no such file"]),
    "train: missing data": (("train", "--config", str(Path(__file__).parents[1] / "configs" / "default.yaml"),
                             "--name", "x", "--runs", "runs", "--data", "nope.h5"), ["nope.h5", "no such file"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_user_mistake_is_one_line(case, files):
    args, words = CASES[case]
    res = posetween(*args, cwd=files)
    assert res.returncode == 2, (res.returncode, res.stderr[-2000:])
    assert "Traceback" not in res.stderr, res.stderr[-2000:]
    errors = [line for line in res.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1, res.stderr[-2000:]
    assert errors[0].startswith(f"posetween {args[0]}: error: "), errors
    assert res.stderr.rstrip().endswith(errors[0])      # the last thing said
    for word in words:
        assert word in errors[0], (word, errors[0])


def test_verbose_shows_the_traceback(files):
    res = posetween("-v", "upsample", "--input", "seq.npz", "--save-dir", "o", "--model", "garbage.pt", cwd=files)
    assert res.returncode != 0
    assert "Traceback" in res.stderr and "garbage.pt" in res.stderr


def test_upsample_refuses_a_non_empty_save_dir(files):
    out = files / "filled"
    out.mkdir()
    np.savez(out / "model.npz", xy=np.zeros((5, NUM_JOINTS, 2)))     # an earlier run's output
    (out / "notes.txt").write_text("the user's own file")
    res = posetween("upsample", "--input", "seq.npz", "--save-dir", "filled", "--upsample-rate", "2", cwd=files)
    assert res.returncode == 2 and "--overwrite" in res.stderr and "not empty" in res.stderr, res.stderr
    with np.load(out / "model.npz") as z:
        assert len(z["xy"]) == 5                                     # untouched
    res = posetween("upsample", "--input", "seq.npz", "--save-dir", "filled", "--upsample-rate", "2", "--overwrite",
                    cwd=files)
    assert res.returncode == 0, res.stderr[-2000:]
    with np.load(out / "model.npz") as z:
        assert len(z["xy"]) == 2 * 11 + 1
    assert (out / "notes.txt").exists()                              # not this command's: left alone


def test_help_is_instant_and_imports_no_heavy_module(tmp_path):
    """`posetween --help` is built from the command table alone: no torch, scipy, OpenCV ..."""
    probe = ("import sys, time\n"
             "t0 = time.perf_counter()\n"
             "from posetween import cli\n"
             "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
             "heavy = [m for m in ('torch', 'scipy', 'cv2', 'h5py', 'onnx', 'onnxruntime', 'mediapipe') if m in sys.modules]\n"
             "print(heavy, round(time.perf_counter() - t0, 3), file=sys.stderr)\n")
    res = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    heavy, seconds = res.stderr.strip().rsplit(" ", 1)
    assert heavy == "[]", heavy
    assert "upsample" in res.stdout and "serve" in res.stdout and "``" not in res.stdout
    print(f"posetween --help: {seconds} s in-process")


@pytest.mark.parametrize("command", [["train"], ["eval"], ["data", "build"], ["upsample"], ["serve"]])
def test_command_help_imports_no_torch(command, tmp_path):
    """A command's --help comes from its parser alone: the module that runs it (torch, h5py,
    scipy: seconds to import) is imported only when the command runs."""
    probe = ("import sys\n"
             "from posetween import cli\n"
             f"try:\n    cli.main({command + ['--help']!r})\nexcept SystemExit:\n    pass\n"
             "print([m for m in ('torch', 'h5py', 'scipy', 'cv2', 'mediapipe') if m in sys.modules], file=sys.stderr)\n")
    res = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stderr.strip().splitlines()[-1] == "[]", res.stderr
    assert "usage: posetween " + " ".join(command) in res.stdout
