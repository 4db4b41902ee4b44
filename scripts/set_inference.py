"""Write a training config's inference-only model settings into a model file.

The curve share (``model.curve_blend`` and the rule around it, ``ModelConfig.INFERENCE_ONLY``)
changes how a trained model answers, not its weights: a file trained before a setting existed
gets it here, with its weights and training record kept as they are.

    python scripts/set_inference.py posetween/models/default.pt configs/default.yaml
    python scripts/set_inference.py posetween/models/open.pt configs/default.yaml --set curve_blend=0
"""

from __future__ import annotations

import argparse

import torch

from posetween.core.model import ModelConfig
from posetween.training.config import load_config


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="model file to update in place")
    p.add_argument("config", help="training YAML whose model section has the settings")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="an inference setting other than the YAML's (as the training run's --set model.KEY=VALUE)")
    args = p.parse_args()
    try:
        wanted = load_config(args.config).model.to_dict()
    except (OSError, ValueError) as e:
        p.error(f"{args.config}: {e}")
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in ModelConfig.INFERENCE_ONLY or not value:
            p.error(f"--set {item}: expected KEY=VALUE with KEY one of {', '.join(ModelConfig.INFERENCE_ONLY)}")
        wanted[key] = float(value)
    try:
        ckpt = torch.load(args.model, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 -- missing, not a zip, not tensors: torch raises many kinds
        p.error(f"{args.model} is not a readable model file ({type(e).__name__})")
    if not (isinstance(ckpt, dict) and isinstance(ckpt.get("config"), dict)):
        p.error(f"{args.model} is not a posetween model file (no config)")
    changed = {k: wanted[k] for k in ModelConfig.INFERENCE_ONLY if ckpt["config"].get(k) != wanted[k]}
    ckpt["config"].update(changed)
    ModelConfig(**ckpt["config"])          # still a valid config
    torch.save(ckpt, args.model)
    print(f"{args.model}: " + (", ".join(f"{k} = {v:g}" for k, v in changed.items()) or "unchanged"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
