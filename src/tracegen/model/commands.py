"""What the model verbs of the command line do: predict, eval-traces, bench-latency."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from tracegen.errors import DataError, check
from tracegen.io.files import load_json, load_npz, save_json, save_npz
from tracegen.io.official import read_png, write_png
from tracegen.model.tracegen import TraceGen
from tracegen.provenance import provenance
from tracegen.viz.overlay import draw_traces


def read_depth_file(path: Path, shape: tuple[int, int], png_scale: float) -> np.ndarray:
    """Depth in metres from ``.npy``, ``.npz`` (key ``depth``) or a 16-bit PNG divided by ``png_scale``."""
    if path.suffix == ".npz":
        depth = load_npz(path, ("depth",))["depth"]
    elif path.suffix == ".npy":
        try:
            depth = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as e:
            raise DataError(path, f"not a readable .npy array: {e}") from None
    else:
        depth = read_png(path, rgb=False).astype(np.float32) / png_scale
    depth = np.asarray(depth, np.float32).squeeze()
    check(depth.shape == shape, path, f"depth size {depth.shape} does not match the image {shape}")
    check(bool(np.isfinite(depth).all() and (depth >= 0).all()), path, "depth must be finite and non-negative")
    return depth


def observation(
    image: Path | None, depth: Path | None, episode: Path | None, frame: int, png_scale: float
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, str | None]:
    """What ``predict`` sees: ``rgb (H, W, 3)`` uint8, ``depth (H, W)`` metres or None, ``K (3, 3)`` or None, and the
    episode's first instruction (None for an image) — from an image (+ depth file) or from frame ``frame`` of an
    episode folder (its depth, intrinsics and instruction with it)."""
    if (image is None) == (episode is None):
        raise ValueError("give the observation as --image (and --depth) or as --episode (and --frame), one of them")
    if image is not None:
        rgb = read_png(image)
        return rgb, read_depth_file(depth, rgb.shape[:2], png_scale) if depth else None, None, None
    from tracegen.io.episode import read_episode

    ep = read_episode(episode)
    check(0 <= frame < len(ep.rgb), episode, f"has {len(ep.rgb)} frames; --frame {frame} is not one of them")
    pick = lambda a: None if a is None else a[frame]  # noqa: E731
    return ep.rgb[frame], pick(ep.depth), pick(ep.K), (ep.instructions or [None])[0]


def run_predict(
    ckpt: Path,
    image: Path | None,
    depth: Path | None,
    text: str | None,
    out: Path,
    samples: int,
    steps: int | None,
    seed: int,
    depth_png_scale: float,
    episode: Path | None = None,
    frame: int = 0,
) -> dict:
    model = TraceGen.from_pretrained(ckpt)
    rgb, d, K, instruction = observation(image, depth, episode, frame, depth_png_scale)
    text = text if text is not None else instruction
    if text is None:
        raise DataError(episode or image, "has no instruction: give --text")
    model.embed_texts([text])  # load the sentence encoder and cache the instruction: latency_ms times the plan
    pred = model.predict(rgb, d, text, K=K, num_samples=samples, steps=steps, seed=seed)
    traj = pred.traj[0]  # (samples, N, L + 1, 3)
    arrays = {"traj": traj, "x": pred.x[0], "instruction": np.array(text), "image_hw": np.array(rgb.shape[:2])}
    if pred.xyz is not None:
        arrays["xyz"] = pred.xyz[0]  # (samples, N, L + 1, 3) metres in the observation's camera
    save_npz(out, **arrays)
    picture = out.with_suffix(".png")
    write_png(picture, draw_traces(rgb, traj[0], min_motion_px=1.0))
    return {"traces": str(out), "overlay": str(picture), "shape": list(traj.shape), "latency_ms": pred.latency_ms}


def held_out_examples(ckpt: Path, data: list[str], split: str, limit: int | None):
    """The examples to score and the training examples for the nearest-neighbour baseline."""
    from tracegen.train import load_examples, split_by_episode, training_data

    model_cfg = TraceGen.from_pretrained(ckpt, load_bank=False).cfg
    examples, _ = load_examples(data, model_cfg)
    train_cfg = load_json(ckpt / "train_config.json") if (ckpt / "train_config.json").exists() else None
    trained_on = training_data(ckpt, train_cfg) if train_cfg else None  # absolute: compared and read from here
    if split == "auto":
        split = "val" if trained_on and sorted(trained_on) == sorted(str(Path(d).resolve()) for d in data) else "all"
    if split == "val":
        check(train_cfg is not None, ckpt, "--split val needs the run's train_config.json")
        by = train_cfg.get("split_by", "episode")  # as the run split it (runs before split_by: by episode)
        train, test = split_by_episode(examples, train_cfg["val_fraction"], train_cfg["seed"], by)
        check(
            len(test) > 0,
            ckpt,
            f"no held-out samples for split 'val' (val_fraction={train_cfg['val_fraction']} of its episodes held none "
            "out); score a held-out dataset (--data OTHER) or every sample (--split all)",
        )
    else:  # a separate held-out dataset: neighbours come from the run's training data when it is known
        test = examples
        train = load_examples(trained_on, model_cfg)[0] if trained_on else examples
    return train, test[:limit] if limit else test, split


def run_eval(
    ckpt: Path,
    data: list[str],
    out: Path | None,
    samples: int,
    steps: int | None,
    split: str,
    limit: int | None,
    seed: int,
) -> dict:
    from tracegen.model.evaluate import evaluate

    train, test, used = held_out_examples(ckpt, data, split, limit)
    model = TraceGen.from_pretrained(ckpt)
    result = {"checkpoint": str(ckpt), "data": data, "split": used, "steps": steps or model.cfg.sample_steps}
    result |= evaluate(model, test, train, k=samples, steps=steps, seed=seed)
    result["provenance"] = provenance()
    if out:
        save_json(out, result)
    return result


def run_bench_latency(
    ckpt: Path, out: Path | None, runs: int, steps: int | None, threads: int, size: tuple[int, int] = (224, 224)
) -> dict:
    """Plan latency for one observation: resize, encoders, sampling and decoding; the text embedding is cached."""
    torch.set_num_threads(threads)
    model = TraceGen.from_pretrained(ckpt)
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (*size, 3), dtype=np.uint8)
    depth = rng.uniform(0.5, 2.0, size).astype(np.float32)
    for _ in range(3):  # warm-up: the text encoder loads and caches the instruction
        model.predict(rgb, depth, "open the drawer", steps=steps)
    times = []
    for i in range(runs):
        t = time.perf_counter()
        model.predict(rgb, depth, "open the drawer", steps=steps, seed=i)
        times.append(1000 * (time.perf_counter() - t))
    times.sort()
    result = {
        "checkpoint": str(ckpt),
        "runs": runs,
        "threads": threads,
        "image_hw": list(size),
        "steps": steps or model.cfg.sample_steps,
        "sampler": model.cfg.sampler,
        "median_ms": round(statistics.median(times), 2),
        "p90_ms": round(times[int(0.9 * (runs - 1))], 2),
        "min_ms": round(times[0], 2),
        "provenance": provenance(),
    }
    if out:
        save_json(out, result)
    return result


def dumps(result: dict) -> str:
    return json.dumps(result, indent=2, default=str)
