"""Does a ``retrieval_scene`` model use the neighbour's observation? Swap it and see what the prediction does.

    python benchmarks/retrieval_scene_ablation.py --ckpt runs/cl_scene/scratch \
        --data runs/closed_loop/traces/heldout [--every 4] [--steps 1]

For every ``--every``-th triplet of ``--data``, the model predicts (``--steps`` ODE steps, fixed noise) with its
nearest training triplet's increments and, as the neighbour's scene, (a) that triplet's own observation (as in
use), (b) the current observation itself ("nothing moved since the demonstration"), (c) a black image. Printed: the
mean absolute error of each prediction against the data's increments on the moving points (normalised units, per
step and coordinate), and how far (b) and (c) move the prediction away from (a). A model that compares the two
scenes must get worse with (b), where the scenes agree although the objects moved.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from tracegen.model import TraceGen, flow
from tracegen.model.data import collate
from tracegen.train import load_examples

SWAPS = {
    "the neighbour's own scene": lambda b: b,
    "the current scene in its place": lambda b: {
        **b,
        "retrieved_rgb": b["rgb"],
        "retrieved_depth": b["depth"],
        "retrieved_has_depth": b["has_depth"],
    },
    "a black image in its place": lambda b: {**b, "retrieved_rgb": torch.zeros_like(b["rgb"])},
}


def predict(model: TraceGen, examples: list, swap, steps: int, batch_size: int = 32) -> torch.Tensor:
    """Normalised increments ``(R, N, L, 3)`` predicted with the neighbour's scene replaced by ``swap(batch)``."""
    out = []
    for i in range(0, len(examples), batch_size):
        chunk = examples[i : i + batch_size]
        batch = collate(chunk, [e.instructions[0] for e in chunk])
        batch = {k: v for k, v in batch.items() if torch.is_tensor(v)}
        batch["text_emb"] = model.embed_texts([e.instructions[0] for e in chunk])
        out.append(model.sample(swap(model.with_retrieved(batch)), steps=steps)[:, 0])
    return torch.cat(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True, help="a checkpoint trained with retrieval_scene=true")
    parser.add_argument("--data", required=True, help="a trace dataset (e.g. the held-out triplets)")
    parser.add_argument("--every", type=int, default=4, help="take every k-th triplet")
    parser.add_argument("--steps", type=int, default=1, help="ODE steps per prediction")
    args = parser.parse_args()
    model = TraceGen.from_pretrained(args.ckpt)
    if not model.cfg.retrieval_scene:
        raise SystemExit(f"{args.ckpt}: this model was not trained with retrieval_scene=true")
    examples = load_examples([args.data], model.cfg)[0][:: args.every]
    x0 = torch.from_numpy(np.stack([e.x0 for e in examples]))  # (R, N, L, 3)
    mask = torch.from_numpy(np.stack([e.mask for e in examples]))
    moving = flow.moving_points(x0, mask, model.cfg.moving_threshold)  # (R, N): as the training loss weights them
    print(f"{len(examples)} triplets, {int(moving.sum())} moving points")
    first = None
    for name, swap in SWAPS.items():
        x = predict(model, examples, swap, args.steps)
        error = ((x - x0).abs() * mask)[moving].mean()
        moved = "" if first is None else f", moved {(x - first).abs()[moving].mean():.4f} from the first"
        print(f"{name:32s} error on moving points {error:.4f}{moved}")
        if first is None:
            first = x


if __name__ == "__main__":
    main()
