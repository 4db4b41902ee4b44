"""Pack the training motions small enough to travel to a lent GPU machine, and unpack them there.

    python scripts/gpu_data.py pack [--data data/multi.h5] [--config configs/default.yaml] --out data/gpu/train.pack
    python scripts/gpu_data.py unpack data/gpu/train.pack --out data/gpu/train.h5

The device tool carries at most 64 MiB with the repository (scripts/train_gpu.sh says how it is
used); data/multi.h5 is 160 MB, and its train and validation motions alone 114 MB as float32,
73 MB losslessly compressed. ``pack`` keeps only the motions the config's split puts in training
or validation (the test motions and held-out sources never travel), rounds the positions to
0.5 mm (int16; motion capture is not more exact than that) and compresses them with xz, about
20 MB. ``unpack`` writes an HDF5 file in ``posetween data build``'s format, which ``posetween
train --data`` reads as it reads any other.
"""

from __future__ import annotations

import argparse
import io
import json
import lzma
from pathlib import Path

import h5py
import numpy as np

from posetween.training.config import load_config
from posetween.training.splits import split_of

STEP = 1 / 2000     # metres per int16 unit: 0.5 mm, +-16 m
MISSING = -32768    # a joint the source lacks (NaN)


def _plain(value):
    """An HDF5 attribute as JSON can hold it."""
    return value.tolist() if isinstance(value, (np.ndarray, np.generic)) else value


def pack(data: Path, config: Path, out: Path) -> None:
    split = load_config(config).data.split
    motions, chunks = [], []
    with h5py.File(data, "r") as f:
        root = {k: _plain(v) for k, v in f.attrs.items()}
        for subset in f:
            for name, g in f[subset].items():
                if split_of(subset, name, split) == "test":
                    continue
                joints = g["joints"][()]
                motions.append({"subset": subset, "name": name, "frames": len(joints),
                                "attrs": {k: _plain(v) for k, v in g.attrs.items()}})
                chunks.append(joints)
    joints = np.concatenate(chunks)
    if np.nanmax(np.abs(joints)) >= 32767 * STEP:
        raise ValueError(f"{data}: positions beyond +-{32767 * STEP:.1f} m do not fit the packed format")
    q = np.where(np.isnan(joints), MISSING, np.round(np.nan_to_num(joints) / STEP)).astype(np.int16)
    buf = io.BytesIO()
    # One row per joint coordinate over all frames: neighbouring values are then neighbouring
    # frames, which xz compresses best.
    np.savez(buf, joints=q.reshape(len(q), -1).T.copy(),
             meta=np.frombuffer(json.dumps({"root": root, "motions": motions}).encode(), np.uint8))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(lzma.compress(buf.getvalue(), preset=6))
    print(f"{out}: {len(motions)} motions, {len(q)} frames, {out.stat().st_size / 1e6:.1f} MB")


def unpack(packed: Path, out: Path) -> None:
    arrays = np.load(io.BytesIO(lzma.decompress(packed.read_bytes())))
    meta = json.loads(arrays["meta"].tobytes())
    q = arrays["joints"].T
    joints = np.where(q == MISSING, np.nan, q * STEP).astype(np.float32).reshape(len(q), -1, 3)
    out.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(out, "w") as h5:
        for k, v in meta["root"].items():
            h5.attrs[k] = np.array(v, dtype=h5py.string_dtype()) if isinstance(v, list) else v
        start = 0
        for m in meta["motions"]:
            g = h5.require_group(m["subset"]).create_group(m["name"])
            g.attrs.update(m["attrs"])
            g.create_dataset("joints", data=joints[start:start + m["frames"]])
            start += m["frames"]
    print(f"{out}: {len(meta['motions'])} motions, {len(q)} frames")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack", help="train and validation motions -> a small packed file")
    p.add_argument("--data", type=Path, default=Path("data/multi.h5"))
    p.add_argument("--config", type=Path, default=Path("configs/default.yaml"), help="whose data.split decides")
    p.add_argument("--out", type=Path, required=True)
    u = sub.add_parser("unpack", help="a packed file -> HDF5 for posetween train --data")
    u.add_argument("packed", type=Path)
    u.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    try:
        if args.command == "pack":
            pack(args.data, args.config, args.out)
        else:
            unpack(args.packed, args.out)
    except (OSError, ValueError, lzma.LZMAError) as e:   # a missing or foreign file: one line, exit 2
        source = str(args.data if args.command == "pack" else args.packed)
        parser.error(str(e) if source in str(e) else f"{source}: {e}")


if __name__ == "__main__":
    main()
