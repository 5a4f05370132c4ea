"""Trace accuracy of a model on held-out triplets, always beside two baselines computed on the same data.

Metrics (numpy, per sample, then averaged over samples):

* ``mse_norm`` — masked MSE of the normalised increments (the official benchmark's number).
* ``ade_norm`` / ``fde_norm`` — mean / final displacement of the decoded ``(u / W, v / H)`` positions.
* ``ade_px`` / ``fde_px`` — the same in pixels of the observation.
* ``ade_cm`` / ``fde_cm`` — 3D displacement in centimetres, lifting both traces with the reference camera's K
  (samples with depth and K only).
* ``*_moving`` — the same restricted to points whose ground truth moves more than ``moving_px`` pixels.
* ``false_motion`` — the share of still points (ground truth moves less than ``still_px``) that the prediction
  moves more than ``moving_px``: motion made up where nothing moves.
* ``best_of_k`` — each sample scored by its best of k generated traces (ADE in pixels).

Every displacement is averaged over the valid steps 1..n (the start point is given) and all N points.
Baselines: *static* (nothing moves) and *nearest neighbour* (the training trace whose observation and instruction
embedding are closest).
"""

from __future__ import annotations

import numpy as np
import torch

from tracegen.geometry import unproject
from tracegen.model.data import Example, collate, source_ids
from tracegen.model.retrieval import RetrievalBank, retrieval_keys
from tracegen.model.tracegen import TraceGen
from tracegen.traces import decode_deltas


def displacement_metrics(x: np.ndarray, t: Example, moving_px: float = 2.0, still_px: float = 0.5) -> dict[str, float]:
    """Scores of one predicted increment tensor ``x (N, L, 3)`` against example ``t``'s ground truth."""
    H, W = t.image_hw
    pred = decode_deltas(x.astype(np.float64), t.traj[:, 0, :2], t.traj[:, 0, 2], H, W)  # (N, L+1, 3)
    valid = t.mask[:, :, 0]  # (N, L) steps 1..L that count
    if not valid.any():
        return {}
    steps = np.flatnonzero(valid[0]) + 1
    err_px = np.linalg.norm(pred[:, steps, :2] - t.traj[:, steps, :2], axis=-1)  # (N, S)
    err_norm = np.linalg.norm((pred[:, steps, :2] - t.traj[:, steps, :2]) / [W, H], axis=-1)
    excursion = np.linalg.norm(t.traj[:, steps, :2] - t.traj[:, :1, :2], axis=-1).max(1)  # (N,) px
    moving, still = excursion > moving_px, excursion < still_px
    out = {
        "mse_norm": float(((x - t.x0) ** 2)[t.mask].mean()),
        "ade_norm": float(err_norm.mean()),
        "fde_norm": float(err_norm[:, -1].mean()),
        "ade_px": float(err_px.mean()),
        "fde_px": float(err_px[:, -1].mean()),
    }
    if still.any():
        made_up = np.linalg.norm(pred[:, steps, :2] - pred[:, :1, :2], axis=-1).max(1) > moving_px  # (N,)
        out["false_motion"] = float(made_up[still].mean())
    if moving.any():
        out |= {"ade_px_moving": float(err_px[moving].mean()), "fde_px_moving": float(err_px[moving, -1].mean())}
    if t.z_valid and t.K is not None:
        lift = lambda tr: unproject(tr[..., :2], tr[..., 2], t.K)  # noqa: E731 (N, S, 3) metres
        err_m = np.linalg.norm(lift(pred[:, steps]) - lift(t.traj[:, steps]), axis=-1)
        out |= {"ade_cm": float(100 * err_m.mean()), "fde_cm": float(100 * err_m[:, -1].mean())}
        if moving.any():
            out["ade_cm_moving"] = float(100 * err_m[moving].mean())
    return out


def mean_metrics(rows: list[dict[str, float]]) -> dict[str, float]:
    keys = sorted({k for r in rows for k in r})
    return {k: float(np.mean([r[k] for r in rows if k in r])) for k in keys}


@torch.no_grad()
def evaluate(
    model: TraceGen,
    test: list[Example],
    train: list[Example],
    k: int = 1,
    steps: int | None = None,
    batch_size: int = 16,
    seed: int = 0,
) -> dict:
    """Model vs static vs nearest-neighbour on ``test``; the neighbours come from ``train``."""
    model.eval()
    texts = [e.instructions[0] for e in test]
    pred_rows, best_rows, static_rows, nn_rows = [], [], [], []
    bank = RetrievalBank.from_examples(train, model.text)
    test_text = model.text.encode(texts)
    for start in range(0, len(test), batch_size):
        chunk = list(range(start, min(start + batch_size, len(test))))
        batch = collate([test[i] for i in chunk], [texts[i] for i in chunk])
        batch["text_emb"] = torch.from_numpy(test_text[chunk])
        chosen = [test[i] for i in chunk]  # a retrieval model never retrieves the very rollout it is scored on
        own = source_ids(chosen, model.bank.ids) if model.bank is not None else None
        x = model.sample(batch, num_samples=k, steps=steps, seed=seed + start, exclude=own).cpu().numpy()  # (B,k,N,L,3)
        keys = retrieval_keys(batch["rgb"], batch["text_emb"])
        neighbours = bank.retrieve(keys, exclude=source_ids(chosen, bank.ids)).numpy()  # (B, N, L, 3)
        for j, i in enumerate(chunk):
            scores = [displacement_metrics(x[j, s], test[i]) for s in range(k)]
            pred_rows.append(scores[0])
            best_rows.append({"best_of_k_ade_px": min(s["ade_px"] for s in scores if s)} if scores[0] else {})
            static_rows.append(displacement_metrics(np.zeros_like(x[j, 0]), test[i]))
            nn_rows.append(displacement_metrics(neighbours[j], test[i]))
    result = {"samples": len(test), "k": k} | mean_metrics(pred_rows) | mean_metrics(best_rows)
    result |= {f"static_{k_}": v for k_, v in mean_metrics(static_rows).items()}
    result |= {f"nn_{k_}": v for k_, v in mean_metrics(nn_rows).items()}
    return result
