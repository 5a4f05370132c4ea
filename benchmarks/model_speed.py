"""TraceGen speed on this machine: training throughput (samples/s) and plan latency (ms) per preset.

    python benchmarks/model_speed.py [--presets default large] [--threads 2] [--set point_patch=2 ...]

Training: fwd + bwd + AdamW on random batches of 32 (encoders included, text embeddings precomputed), after
warm-up steps. Latency: ``TraceGen.predict`` on one 224x224 RGB-D observation (resize, encoders, the preset's
default sampler and steps, decoding), text embedding cached; median and p90 over 30 calls.
"""

import argparse
import json
import statistics
import time

import numpy as np
import torch

from tracegen.model import TraceGen, preset
from tracegen.train import TrainConfig, parse_overrides


def train_throughput(model: TraceGen, batch_size: int = 32, steps: int = 6) -> float:
    cfg = model.cfg
    S, N, L = cfg.image_size, cfg.num_points, cfg.horizon
    batch = {
        "rgb": torch.rand(batch_size, 3, S, S),
        "depth": torch.rand(batch_size, 1, S, S) + 0.5,
        "has_depth": torch.ones(batch_size, dtype=torch.bool),
        "text_emb": torch.randn(batch_size, 384),
        "x0": torch.rand(batch_size, N, L, 3) * 2 - 1,
        "mask": torch.ones(batch_size, N, L, 3, dtype=torch.bool),
    }
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    times = []
    for i in range(steps + 2):
        t = time.perf_counter()
        loss = model.loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= 2:
            times.append(time.perf_counter() - t)
    return batch_size / statistics.median(times)


def latency(model: TraceGen, runs: int = 30) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (224, 224, 3), dtype=np.uint8)
    depth = rng.uniform(0.5, 2, (224, 224)).astype(np.float32)
    for _ in range(3):
        model.predict(rgb, depth, "open the drawer")
    times = []
    for i in range(runs):
        t = time.perf_counter()
        model.predict(rgb, depth, "open the drawer", seed=i)
        times.append(1000 * (time.perf_counter() - t))
    times.sort()
    return statistics.median(times), times[int(0.9 * (runs - 1))]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--presets", nargs="+", default=["default"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="model config overrides")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    overrides = parse_overrides(TrainConfig(), a.set).model
    for name in a.presets:
        model = TraceGen(preset(name, **overrides))
        params = sum(p.numel() for p in model.parameters())
        rate = train_throughput(model.train())
        med, p90 = latency(model.eval())
        print(
            json.dumps(
                {
                    "preset": name,
                    "overrides": a.set,
                    "params_m": round(params / 1e6, 2),
                    "train_samples_per_s": round(rate, 1),
                    "plan_median_ms": round(med, 1),
                    "plan_p90_ms": round(p90, 1),
                    "sampler": f"{model.cfg.sampler} x {model.cfg.sample_steps}",
                    "threads": a.threads,
                }
            )
        )


if __name__ == "__main__":
    main()
