"""TraceGen: from one RGB(-D) observation and an instruction, generate the future 3D trace of a grid of points.

    model = TraceGen.from_pretrained("runs/pretrain")
    pred = model.predict(rgb, depth, "open the drawer")      # rgb (H, W, 3) uint8, depth (H, W) metres or None
    pred.traj                                                 # (B, num_samples, N, L + 1, 3): u, v px; z m

Shapes: N = G * G grid points (400), L = horizon (32). Predictions are in the observation's own camera and pixel
coordinates, whatever the model's internal image size; z is NaN when there is no depth to anchor it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from tracegen import __version__
from tracegen.errors import DataError
from tracegen.geometry import unproject
from tracegen.model import flow
from tracegen.model.config import TraceGenConfig
from tracegen.model.data import resize_observation
from tracegen.model.decoder import TraceDiT
from tracegen.model.encoders import TextEncoder, build_observation_encoder, clean_instruction
from tracegen.model.retrieval import BANK, SCENE_FIELDS, THUMBNAIL_KEY, RetrievalBank, retrieval_keys
from tracegen.traces import DELTA_SCALE, decode_deltas, grid_points, grid_start_depth

WEIGHTS, CONFIG = "model.safetensors", "config.json"
# weights older checkpoints hold that this code no longer builds: the HF encoder's unused conv RGB branch
RETIRED_WEIGHTS = ("observation.conv.rgb.",)


def without_retired(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """``state`` less the :data:`RETIRED_WEIGHTS` that ``model`` does not have (so an older checkpoint loads)."""
    own = model.state_dict()
    return {k: v for k, v in state.items() if k in own or not k.startswith(RETIRED_WEIGHTS)}


# fields that older checkpoints were saved without, and what those checkpoints were: point features came later,
# and before x0 prediction the decoder predicted the velocity
OLD_DEFAULTS = {"point_features": 0, "prediction": "velocity"}


@dataclass
class TracePrediction:
    """Generated traces for a batch of B observations, ``num_samples`` each."""

    traj: np.ndarray  # (B, num_samples, N, L + 1, 3) float32: u, v pixels of the input image; z metres (NaN: no depth)
    x: np.ndarray  # (B, num_samples, N, L, 3) float32 normalised increments (the model's raw output)
    xyz: np.ndarray | None  # (B, num_samples, N, L + 1, 3) camera-frame metres (OpenCV axes) when K was given
    latency_ms: float


class Condition(NamedTuple):
    """What the decoder is conditioned on, for a batch of B observations with their instructions."""

    tokens: torch.Tensor  # (B, M, dim): observation tokens (then the retrieved scene's, with retrieval_scene) and
    # the instruction token (cross-attention)
    pooled: torch.Tensor  # (B, dim): modulates every block with the flow time (current observation and instruction)
    points: torch.Tensor | None  # (B, N, point_features): the observation under each query point, or None
    retrieved: torch.Tensor | None  # (B, N, L, 3): the nearest training triplet's increments (retrieval), or None
    retrieved_points: torch.Tensor | None = None  # (B, N, point_features): its observation under each query point
    # (retrieval_scene), or None


class TraceGen(nn.Module):
    def __init__(self, cfg: TraceGenConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.observation = build_observation_encoder(cfg)
        self.text_proj = nn.Linear(cfg.text_dim, cfg.dim)
        self.null_image = nn.Parameter(torch.zeros(1, 1, cfg.dim))  # the trained null condition (guidance)
        self.null_text = nn.Parameter(torch.zeros(1, cfg.dim))
        if cfg.retrieval_scene:  # tells the retrieved scene's tokens from the current one's
            self.scene_tag = nn.Parameter(torch.randn(1, 1, cfg.dim) * 0.02)
        if cfg.decoder == "cogvideox":
            from tracegen.model.paper import CogVideoXDecoder

            self.decoder = CogVideoXDecoder(cfg)
        else:
            self.decoder = TraceDiT(cfg)
        self.text = TextEncoder(cfg.text_encoder)
        self.bank: RetrievalBank | None = None  # the training triplets, with cfg.retrieval (set by training)

    # --- conditioning ---

    def condition(self, batch: dict, keep: torch.Tensor | None = None) -> Condition:
        """The condition of a batch; ``keep (B,)`` False -> the null condition (the trained null image and text
        tokens; point features and retrieved increments zero)."""
        image, points, scene, scene_points = self.encode_observations(batch)
        text = self.text_proj(batch["text_emb"])  # (B, dim)
        retrieved = batch["retrieved"] if self.cfg.retrieval else None
        if keep is not None:
            image, scene = (_kept(x, keep, self.null_image) for x in (image, scene))
            text = _kept(text, keep, self.null_text)
            points, scene_points, retrieved = (_kept(x, keep) for x in (points, scene_points, retrieved))
        tokens = [image] + ([] if scene is None else [scene]) + [text[:, None]]
        return Condition(torch.cat(tokens, 1), text + image.mean(1), points, retrieved, scene_points)

    def encode_observations(self, batch: dict) -> tuple:
        """Image tokens ``(B, T_img, dim)`` and point features ``(B, N, F)`` (or None) of the observation, then the
        same of the retrieved triplet's observation with ``retrieval_scene`` (else None, None): one encoder call."""
        B = len(batch["rgb"])
        views = ("", "retrieved_") if self.cfg.retrieval_scene else ("",)
        rgb, depth, has_depth = (torch.cat([batch[v + k] for v in views]) for k in ("rgb", "depth", "has_depth"))
        image, points = self.observation(rgb, depth, has_depth)  # (2B or B, T_img, dim), (2B or B, N, F) or None
        if not self.cfg.retrieval_scene:
            return image, points, None, None
        scene_points = None if points is None else points[B:]
        return image[:B], None if points is None else points[:B], image[B:] + self.scene_tag, scene_points

    def with_retrieved(
        self, batch: dict, exclude: list[str] | None = None, top_k: int = 1, generator: torch.Generator | None = None
    ) -> dict:
        """``batch`` plus ``retrieved (B, N, L, 3)``, the bank's nearest increments, and with ``retrieval_scene``
        that triplet's observation (``retrieved_rgb``, ``retrieved_depth``, ``retrieved_has_depth``, see
        :meth:`RetrievalBank.scenes`); unchanged without retrieval. ``exclude``: each sample's episode, left out of
        its search; ``top_k``: draw among the k nearest."""
        if not self.cfg.retrieval:
            return batch
        if self.bank is None:
            raise ValueError(
                "this model has retrieval=True but no retrieval bank: train it, or load a checkpoint "
                f"that has its {BANK}"
            )
        keys = retrieval_keys(batch["rgb"].cpu(), batch["text_emb"].cpu())
        index = self.bank.nearest(keys, exclude=exclude, top_k=top_k, generator=generator)  # (B,)
        found = {"retrieved": self.bank.traces[index].float()}
        if self.cfg.retrieval_scene:
            found.update(self.bank.scenes(index))
        return {**batch, **{k: v.to(batch["rgb"].device) for k, v in found.items()}}

    def has_retrieved(self, batch: dict) -> bool:
        """Whether ``batch`` already holds everything :meth:`with_retrieved` adds (a batch with the increments
        but without their scene is retrieved again, whole)."""
        fields = ("retrieved",) + (SCENE_FIELDS if self.cfg.retrieval_scene else ())
        return all(k in batch for k in fields)

    @property
    def device(self) -> torch.device:
        """Where the weights are (``model.to(device)`` moves them; inputs follow)."""
        return next(self.parameters()).device

    def embed_texts(self, texts: list[str]) -> torch.Tensor:
        return torch.from_numpy(self.text.encode([clean_instruction(t) for t in texts]))

    # --- training ---

    def loss(self, batch: dict, generator: torch.Generator | None = None) -> torch.Tensor:
        """Flow-matching loss on a batch from :func:`tracegen.model.data.collate` (+ ``text_emb``).

        ``loss_space="x0"`` (the default with x0 prediction) measures the clean increments' error with every flow
        time weighted alike; ``"velocity"`` measures the velocity's, i.e. the same error weighted 1 / t^2, which
        starves the high-noise times where the trace must come from the condition alone. Both have the same
        minimiser, E[x0 | x_t, condition]; so has the optional ``path_loss`` term. ``loss_norm="distance"``
        measures the Euclidean distance of the paths instead (minimiser: their geometric median).
        """
        increments, mask, B = batch["x0"], batch["mask"], len(batch["x0"])
        if not self.has_retrieved(batch):  # (training retrieves with its own episodes left out: train.make_batch)
            batch = self.with_retrieved(batch)
        x0 = self.to_target(increments, mask)  # what the flow generates
        # random draws on the CPU generator, then moved: the same numbers on every device
        rand = torch.rand(B, 3, generator=generator).to(x0.device)
        keep = rand[:, 0] >= self.cfg.cond_dropout
        batch = {**batch, "has_depth": batch["has_depth"] & (rand[:, 1] >= self.cfg.depth_dropout)}
        t = rand[:, 2]
        noise = torch.randn(x0.shape, generator=generator).to(x0.device)
        x_t, target = flow.interpolate(x0, noise, t)
        cond = self.condition(batch, keep)
        out = self.decode(x_t, t, cond)
        weight = None
        if self.cfg.moving_weight:  # (B, N, 1, 1): moving points count 1 + moving_weight times
            moving = flow.moving_points(increments, mask, self.cfg.moving_threshold)
            weight = (1.0 + self.cfg.moving_weight * moving.to(x0.dtype))[..., None, None]
        if self.cfg.loss_norm == "distance":  # the paths' distance (what ADE measures), every flow time alike
            loss = flow.masked_distance(flow.path(out, mask), flow.path(x0, mask), mask, weight)
        elif self.cfg.prediction == "x0" and self.cfg.loss_space == "x0":
            loss = flow.masked_mse(out, x0, mask, weight)  # the same minimiser, every flow time weighted alike
        else:  # x0 errors weighted by 1 / t^2
            loss = flow.masked_mse(self.to_velocity(out, x_t, t), target, mask, weight)
        if self.cfg.path_loss and self.cfg.prediction == "x0":  # (config: only with target="increments")
            paths = flow.path(out, mask), flow.path(x0, mask)
            loss = loss + self.cfg.path_loss * flow.masked_mse(*paths, mask, weight)
        return loss

    def to_target(self, increments: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The data's normalised increments ``(B, N, L, 3)`` in the space the flow generates (``cfg.target``)."""
        if self.cfg.target == "offsets":
            return flow.to_offsets(increments, mask, self.cfg.offset_scale)
        return increments

    def from_target(self, x: torch.Tensor) -> torch.Tensor:
        """Generated ``(B, N, L, 3)`` -> normalised increments, clipped to [-1, 1] where every target lives."""
        if self.cfg.target == "offsets":
            x = flow.from_offsets(x, self.cfg.offset_scale)
        return x.clamp(-1, 1)

    def decode(self, x_t: torch.Tensor, t: torch.Tensor, cond: Condition) -> torch.Tensor:
        """The decoder's raw output ``(B, N, L, 3)`` at ``x_t``, times ``t (B,)``: clean increments or a velocity."""
        if cond.retrieved is not None:
            return self.decoder(x_t, t, cond.tokens, cond.pooled, cond.points, cond.retrieved, cond.retrieved_points)
        return self.decoder(x_t, t, cond.tokens, cond.pooled, cond.points)

    def velocity(self, x_t: torch.Tensor, t: torch.Tensor, cond: Condition, min_t: float | None = None) -> torch.Tensor:
        """The flow velocity at ``x_t (B, N, L, 3)``, times ``t (B,)``, given the condition (``min_t``: see
        :meth:`to_velocity`)."""
        return self.to_velocity(self.decode(x_t, t, cond), x_t, t, min_t)

    def to_velocity(
        self, out: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, min_t: float | None = None
    ) -> torch.Tensor:
        """The decoder's output ``out (B, N, L, 3)`` as a velocity.

        With ``prediction="x0"`` the decoder outputs the clean increments and the velocity is ``(x_t - x0_hat) / t``
        (t clipped at ``min_t``, by default the config's: in training, where t can come near 0; the sampler passes
        0, since its steps stop short of t = 0, and a clip there would leave noise behind with more than
        1 / min_t steps). A token packs p*p*L*3 numbers (1536 by default) into ``dim`` (128) channels, so
        the decoder cannot pass noise through to its output, which predicting the velocity (``eps - x0``) needs;
        the clean increments are low-dimensional and fit (as in "Back to Basics: Let Denoising Generative Models
        Denoise", Li and He, 2025).
        """
        if self.cfg.prediction == "velocity":
            return out
        floor = self.cfg.min_t if min_t is None else min_t
        return (x_t - out) / t.clamp_min(max(floor, 1e-12)).view(-1, 1, 1, 1)

    def forward(self, batch: dict, generator: torch.Generator | None = None) -> torch.Tensor:
        """The training loss (so that DistributedDataParallel can wrap the model)."""
        return self.loss(batch, generator)

    # --- inference ---

    @torch.no_grad()
    def sample(
        self,
        batch: dict,
        num_samples: int = 1,
        steps: int | None = None,
        guidance: float | None = None,
        sampler: str | None = None,
        seed: int = 0,
        exclude: list[str] | None = None,
    ) -> torch.Tensor:
        """Normalised increments ``(B, num_samples, N, L, 3)`` for a prepared batch (``rgb``, ``depth``, ...).
        ``exclude``: each observation's rollout, left out of a retrieval model's search (evaluation on samples its
        bank may hold)."""
        cfg = self.cfg
        steps, guidance, sampler = (
            steps or cfg.sample_steps,
            cfg.guidance if guidance is None else guidance,
            (sampler or cfg.sampler),
        )
        B = len(batch["rgb"])
        if not self.has_retrieved(batch):
            batch = self.with_retrieved(batch, exclude)
        rep = {k: v.to(self.device).repeat_interleave(num_samples, 0) for k, v in batch.items() if torch.is_tensor(v)}
        cond = self.condition(rep)
        if guidance != 1.0:
            null = self.condition(rep, torch.zeros(len(cond.pooled), dtype=torch.bool, device=cond.pooled.device))

        def velocity(x, t, conditional):  # the sampler never asks at t = 0: t unclipped (training clips it)
            return self.velocity(x, t, cond if conditional else null, min_t=0.0)

        g = torch.Generator().manual_seed(seed)
        noise = torch.randn((B * num_samples, cfg.num_points, cfg.horizon, 3), generator=g).to(self.device)
        x = flow.sample(flow.guided(velocity, guidance), noise, steps, sampler)
        return self.from_target(x).view(B, num_samples, cfg.num_points, cfg.horizon, 3)

    @torch.no_grad()
    def predict(
        self,
        rgb,
        depth=None,
        instruction: str | list[str] = "",
        K=None,
        num_samples: int = 1,
        steps: int | None = None,
        guidance: float | None = None,
        sampler: str | None = None,
        seed: int = 0,
    ) -> TracePrediction:
        """Generate traces for one observation or a batch.

        Args:
            rgb: ``(H, W, 3)`` or ``(B, H, W, 3)`` uint8 — any size (resized internally; outputs use this size).
            depth: ``(H, W)`` / ``(B, H, W)`` metres of planar depth (0 = none), or None for RGB only.
            instruction: one string, or one per observation.
            K: ``(3, 3)`` or ``(B, 3, 3)`` intrinsics of the observation; when given, camera-frame points are returned.
        """
        start_time = time.perf_counter()
        self.eval()
        rgb = np.asarray(rgb)
        single = rgb.ndim == 3
        rgbs = rgb[None] if single else rgb
        depths = None if depth is None else (np.asarray(depth)[None] if single else np.asarray(depth))
        if depths is not None:  # a sensor's NaN or inf is no measurement (0), not a number to propagate everywhere
            depths = np.where(np.isfinite(depths), depths, 0.0).astype(np.float32)
        texts = [instruction] * len(rgbs) if isinstance(instruction, str) else list(instruction)
        if len(texts) != len(rgbs) or (depths is not None and depths.shape[:3] != rgbs.shape[:3]):
            raise ValueError(
                f"predict: {len(rgbs)} images, {len(texts)} instructions, depth "
                f"{None if depths is None else depths.shape}: sizes must agree"
            )
        H, W = rgbs.shape[1:3]
        batch = self._prepare(rgbs, depths, texts)
        x = self.sample(batch, num_samples, steps, guidance, sampler, seed).cpu().numpy()  # (B, S, N, L, 3)
        start_uv = grid_points(H, W, self.cfg.grid)
        start_z = None if depths is None else grid_start_depth(depths, self.cfg.grid)[:, None]  # (B, 1, N)
        traj = decode_deltas(x.astype(np.float64), start_uv, start_z, H, W).astype(np.float32)
        xyz = None
        if K is not None:
            Kb = np.asarray(K, np.float64).reshape(-1, 1, 1, 3, 3)
            xyz = unproject(traj[..., :2], traj[..., 2], Kb).astype(np.float32)
        return TracePrediction(traj, x.astype(np.float32), xyz, 1000 * (time.perf_counter() - start_time))

    def _prepare(self, rgbs: np.ndarray, depths: np.ndarray | None, texts: list[str]) -> dict:
        size = self.cfg.image_size
        obs = [
            resize_observation(r, None if depths is None else d, size)
            for r, d in zip(rgbs, depths if depths is not None else [None] * len(rgbs), strict=True)
        ]
        return {
            "rgb": torch.from_numpy(np.stack([o[0] for o in obs])).float() / 255.0,
            "depth": torch.from_numpy(np.stack([o[1] for o in obs])),
            "has_depth": torch.full((len(rgbs),), depths is not None),
            "text_emb": self.embed_texts(texts),
        }

    # --- checkpoints: safetensors + config.json ---

    def save_pretrained(self, path: str | Path) -> Path:
        from safetensors.torch import save_file

        from tracegen.io.files import atomic_path, save_json
        from tracegen.provenance import provenance

        path = Path(path)
        if self.cfg.retrieval and self.bank is None:
            raise ValueError("a model with retrieval=True is saved with its retrieval bank; this one has none")
        path.mkdir(parents=True, exist_ok=True)
        if self.bank is not None:
            self.bank.save(path / BANK)
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        with atomic_path(path / WEIGHTS) as tmp:
            save_file(state, str(tmp), metadata={"format": "pt", "tracegen_version": __version__})
        save_json(
            path / CONFIG,
            {
                "model": self.cfg.to_dict(),
                "tracegen_version": __version__,
                "normalization": {"delta_scale_u_v_z": DELTA_SCALE.tolist(), "units": "u/W, v/H, z metres per step"},
                "provenance": provenance(),  # the code that saved these weights
            },
        )
        return path

    @classmethod
    def from_pretrained(cls, path: str | Path, load_bank: bool = True) -> TraceGen:
        """Load a checkpoint folder; a config or weights that do not fit this code fail with a clear message.
        ``load_bank=False`` skips a retrieval model's bank (for its weights or config alone)."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        from tracegen.io.files import load_json

        path = Path(path)
        meta = load_json(path / CONFIG)
        try:
            cfg = TraceGenConfig.from_dict({**OLD_DEFAULTS, **meta["model"]})
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(path / CONFIG, f"model config does not match this tracegen: {e}") from None
        scale = meta.get("normalization", {}).get("delta_scale_u_v_z")
        if scale is not None and not np.allclose(scale, DELTA_SCALE):
            raise DataError(
                path / CONFIG,
                f"trained with increments normalised by {scale}, this tracegen uses {DELTA_SCALE.tolist()}: its "
                "traces would come out scaled; use the tracegen version that saved it",
            )
        model = cls(cfg)
        if not (path / WEIGHTS).is_file():
            raise DataError(path / WEIGHTS, "file not found")
        try:
            state = load_file(str(path / WEIGHTS))
        except (SafetensorError, OSError) as e:
            raise DataError(path / WEIGHTS, f"cannot read weights (truncated or corrupt?): {e}") from None
        try:
            model.load_state_dict(without_retired(state, model))
        except RuntimeError as e:
            first = str(e).splitlines()[1].strip() if "\n" in str(e) else str(e)
            raise DataError(path / WEIGHTS, f"weights do not match the config ({first})") from None
        if cfg.retrieval and load_bank:
            model.bank = RetrievalBank.load(path / BANK)
            model.bank.check(
                THUMBNAIL_KEY + cfg.text_dim,
                (cfg.num_points, cfg.horizon, 3),
                path / BANK,
                cfg.image_size if cfg.retrieval_scene else None,
            )
        return model.eval()


def _kept(x: torch.Tensor | None, keep: torch.Tensor, null: torch.Tensor | None = None) -> torch.Tensor | None:
    """``x (B, ...)`` where ``keep (B,)``, else ``null`` (broadcast to x; zeros when None). None stays None."""
    if x is None:
        return None
    fill = torch.zeros_like(x) if null is None else null.expand_as(x)
    return torch.where(keep.view(-1, *[1] * (x.ndim - 1)), x, fill)


def describe(path: str | Path) -> str:
    """One line about a checkpoint (for logs)."""
    meta = json.loads((Path(path) / CONFIG).read_text())
    m = meta["model"]
    return f"TraceGen {m['decoder']} dim={m['dim']} depth={m['depth']} grid={m['grid']} horizon={m['horizon']}"
