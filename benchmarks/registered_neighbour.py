"""Does carrying the nearest training trace into the current scene help? A training-free registration, held out.

    python benchmarks/registered_neighbour.py --train runs/s33/traces/target_gt \
        --test runs/s32/cl/traces/heldout [--every 4] [--sigma 0.02 --sigma 0.04]

The nearest-neighbour baseline replays a demonstration's increments from the current query grid, so a grasp lands
where the object lay in the demonstration. Here the neighbour's trace is first registered to the current scene, in
the manner of trajectory transfer by non-rigid registration (Schulman et al., ISRR 2013), with dense optical flow in
place of point-cloud matching:

1. Correspondences: DIS optical flow from the neighbour's image to the current one (same camera), kept where the
   backward flow returns within 1.5 px and both depths exist; lifted to camera-frame points ``X`` and their 3D
   displacements ``D`` (metres).
2. A smooth displacement field: at any point ``Y``, the Gaussian-weighted mean of ``D`` (width ``--sigma``), shrunk
   to zero away from every correspondence (a prior weight), so that free space far from anything that moved stays.
3. The neighbour's every trace point ``X_i(t)`` is moved by the field, ``f(X) = X + field(X)``; point ``i`` of the
   current grid takes the warped track's motion from its start, ``f(X_i(t)) - f(X_i(0))`` (a point without depth
   replays the neighbour's motion, as the plain baseline does).

Printed: the project's trace metrics (:func:`tracegen.model.evaluate.displacement_metrics`) of the plain neighbour
and of each registered one, against the test set's exact traces. A neighbour from another camera or of another
image size stays plain.
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

from tracegen.geometry import project, unproject
from tracegen.io.trace_dataset import TraceDataset
from tracegen.model.config import preset
from tracegen.model.data import make_example
from tracegen.model.encoders import TextEncoder
from tracegen.model.evaluate import displacement_metrics, mean_metrics
from tracegen.model.retrieval import RetrievalBank
from tracegen.traces import encode_deltas, grid_points

FLOW = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)


def flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dense flow ``(H, W, 2)`` px from RGB image ``a`` to ``b``."""
    gray = [cv2.cvtColor(x, cv2.COLOR_RGB2GRAY) for x in (a, b)]
    return FLOW.calc(*gray, None)


def correspondences(nb, cur, stride: int = 6, fb_px: float = 1.5):
    """Points ``X (P, 3)`` of the neighbour's scene (every ``stride``-th pixel) and their displacements ``D (P, 3)``
    metres into the current one."""
    fw, bw = flow(nb.rgb, cur.rgb), flow(cur.rgb, nb.rgb)
    H, W = nb.depth.shape
    rows, cols = (a.ravel() for a in np.mgrid[0:H:stride, 0:W:stride])
    p = np.stack([cols, rows], -1).astype(np.float64)
    q = p + fw[rows, cols]
    qc = np.clip(np.rint(q).astype(int), 0, [W - 1, H - 1])
    z0, z1 = nb.depth[rows, cols], cur.depth[qc[:, 1], qc[:, 0]]
    ok = (q == np.clip(q, 0, [W - 1, H - 1])).all(1) & (z0 > 0) & (z1 > 0)
    ok &= np.linalg.norm(fw[rows, cols] + bw[qc[:, 1], qc[:, 0]], axis=1) < fb_px  # forward-backward consistent
    X0, X1 = unproject(p[ok], z0[ok], nb.K), unproject(q[ok], z1[ok], cur.K)
    return X0, X1 - X0


def displacement_field(Y: np.ndarray, X: np.ndarray, D: np.ndarray, sigma: float, prior: float = 1e-3) -> np.ndarray:
    """The field at ``Y (M, 3)``: Gaussian-weighted mean of ``D`` over ``X``, zero far from every ``X``."""
    out = np.zeros_like(Y)
    for a in range(0, len(Y), 1000):
        w = np.exp(-((Y[a : a + 1000, None] - X[None]) ** 2).sum(-1) / (2 * sigma**2))  # (m, P)
        out[a : a + 1000] = (w @ D) / (prior + w.sum(1, keepdims=True))
    return out


def registered_trace(nb, cur, traj: np.ndarray, sigma: float) -> np.ndarray:
    """The neighbour's trace ``traj (N, L + 1, 3)`` (its example's, padded to the horizon) carried from sample ``nb``'s
    scene into sample ``cur``'s: ``(N, L + 1, 3)`` (u, v px; z m)."""
    H, W = cur.depth.shape
    G = nb.grid
    X, D = correspondences(nb, cur)
    traj = traj.astype(np.float64)
    lifted = unproject(traj[..., :2], traj[..., 2], nb.K)  # (N, L+1, 3)
    has_3d = (traj[..., 2] > 0).all(1)  # (N,)
    warped = lifted.copy()
    warped[has_3d] += displacement_field(lifted[has_3d].reshape(-1, 3), X, D, sigma).reshape(-1, *traj.shape[1:])
    grid = grid_points(H, W, G)
    start_z = cur.depth[np.rint(grid[:, 1]).astype(int), np.rint(grid[:, 0]).astype(int)].astype(np.float64)
    ok = has_3d & (start_z > 0)
    start = unproject(grid, np.where(ok, start_z, 1.0), cur.K)  # (N, 3)
    uv, z = project(start[:, None] + (warped - warped[:, :1]), cur.K)
    out = np.concatenate([uv, z[..., None]], -1)
    replay = grid[:, None] + (traj - traj[:, :1])[..., :2]  # without 3D: the plain neighbour's pixel motion
    out[~ok] = np.concatenate([replay, (start_z[:, None] + traj[..., 2] - traj[:, :1, 2])[..., None]], -1)[~ok]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", required=True, help="trace dataset to retrieve from")
    ap.add_argument("--test", required=True, help="held-out trace dataset with exact traces")
    ap.add_argument("--every", type=int, default=4, help="score every n-th test triplet")
    ap.add_argument("--sigma", type=float, action="append", help="field width in metres (repeatable; default 0.02)")
    args = ap.parse_args()
    cfg = preset("default")
    finite = lambda s: np.isfinite(s.traj).all() and s.depth is not None and s.K is not None  # noqa: E731
    train = [s for s in TraceDataset(args.train) if finite(s)]
    test = [s for s in list(TraceDataset(args.test))[:: args.every] if finite(s)]
    text = TextEncoder()
    train_examples, truths = ([make_example(s, cfg) for s in samples] for samples in (train, test))
    bank = RetrievalBank.from_examples(train_examples, text)  # the neighbour baseline's own retrieval
    nearest = bank.nearest(RetrievalBank.from_examples(truths, text).keys).tolist()
    rows: dict[str, list[dict]] = {}
    t0 = time.perf_counter()
    for s, truth, j in zip(test, truths, nearest, strict=True):
        nb = train[j]
        plain = displacement_metrics(bank.traces[j].float().numpy(), truth)
        rows.setdefault("plain neighbour", []).append(plain)
        for sigma in args.sigma or [0.02]:
            scores = plain  # a neighbour from another camera stays plain
            if nb.meta.get("camera") == s.meta.get("camera") and nb.image_size == s.image_size:
                trace = registered_trace(nb, s, train_examples[j].traj, sigma)
                x = encode_deltas(trace, np.ones(len(trace[0]), bool), *s.image_size, cfg.horizon)[0]
                scores = displacement_metrics(x, truth)
            rows.setdefault(f"registered, sigma {sigma} m", []).append(scores)
    print(f"{len(test)} held-out triplets, {time.perf_counter() - t0:.0f} s")
    for name, r in rows.items():
        m = mean_metrics(r)
        print(
            f"{name:28s} ADE {m['ade_px']:.3f} px  moving {m['ade_px_moving']:.3f} px  "
            f"false motion {m['false_motion']:.3f}  ADE {m['ade_cm']:.3f} cm"
        )


if __name__ == "__main__":
    main()
