"""Retrieval of training traces: the nearest-neighbour baseline and TraceGen's optional retrieval conditioning.

A triplet is keyed by a cheap descriptor of its observation and instruction (a 16 x 16 thumbnail and the sentence
embedding, :func:`retrieval_keys`); the bank holds every training triplet's key and normalised increments.

- ``tracegen eval-traces`` and the closed-loop ``neighbour`` planner replay the nearest triplet's increments.
- A model with ``retrieval=True`` is conditioned on them too: the decoder sees the retrieved increments in every
  trace token and predicts a correction to them (``TraceDiT``). Its bank is saved beside the weights
  (``retrieval.safetensors``) and rebuilt from the data of every training or warm-up run. In training, the neighbour
  of a triplet comes from *another* rollout (as at test time, where the query's rollout was never seen, by any
  camera; :func:`tracegen.model.data.rollout_id`), drawn among the ``retrieval_top_k`` nearest. Evaluation leaves
  each test triplet's own rollout out of the search too, should the bank hold it.
- With ``retrieval_scene=True`` the bank also keeps every triplet's observation (RGB uint8, depth float16, at the
  model's image size), and the decoder sees the neighbour's scene beside the current one: what differs between the
  two (where the objects are now) is what its correction has to account for.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tracegen.errors import DataError
from tracegen.model.data import source_ids

THUMBNAIL = 16  # the key's thumbnail is THUMBNAIL x THUMBNAIL pixels per colour channel
THUMBNAIL_KEY = 3 * THUMBNAIL * THUMBNAIL  # the thumbnail's share of a key (the instruction embedding follows)
BANK = "retrieval.safetensors"
SCENE_FIELDS = ("retrieved_rgb", "retrieved_depth", "retrieved_has_depth")  # what RetrievalBank.scenes gives a batch


def retrieval_keys(rgb: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
    """Keys ``(B, 3 * 16 * 16 + D)`` of observations ``rgb (B, 3, S, S)`` in [0, 1] and instruction embeddings
    ``text_emb (B, D)`` (unit norm); compare two with a dot product. The thumbnail is standardised per image and
    weighted like the unit-norm text, so that image and instruction count alike."""
    thumb = F.adaptive_avg_pool2d(rgb.float(), THUMBNAIL).flatten(1)  # (B, 768)
    thumb = (thumb - thumb.mean(1, keepdim=True)) / (thumb.std(1, keepdim=True, correction=0) + 1e-6)
    return torch.cat([thumb / thumb.shape[1] ** 0.5, text_emb.float().to(thumb.device)], 1)


@dataclass
class RetrievalBank:
    """The training triplets' keys and increments (and, for ``retrieval_scene``, observations), R of them."""

    keys: torch.Tensor  # (R, 3 * 16 * 16 + D) float32
    traces: torch.Tensor  # (R, N, L, 3) float16 normalised increments, zero where masked
    episodes: list[str] | None = None  # (R,) rollout ids (Example.rollout), to keep a query's own rollout out
    rgb: torch.Tensor | None = None  # (R, 3, S, S) uint8 observations (retrieval_scene), or None
    depth: torch.Tensor | None = None  # (R, 1, S, S) float16 metres, zeros where there is none (retrieval_scene)
    has_depth: torch.Tensor | None = None  # (R,) bool (retrieval_scene)
    ids: str = "rollout"  # what ``episodes`` names: rollouts, or per-camera episodes (banks saved before rollouts)

    def __post_init__(self) -> None:
        sizes = [len(self.traces)] + [
            len(x) for x in (self.episodes, self.rgb, self.depth, self.has_depth) if x is not None
        ]
        if any(n != len(self.keys) for n in sizes):
            raise ValueError(
                f"a retrieval bank needs one key, trace, episode and scene per triplet, got "
                f"{len(self.keys)} keys and {sizes}"
            )
        if (self.rgb is None) != (self.depth is None) or (self.rgb is None) != (self.has_depth is None):
            raise ValueError("a retrieval bank's scenes need rgb, depth and has_depth together")
        names = sorted(set(self.episodes or []))
        self._episode_code = {name: i for i, name in enumerate(names)}
        self._episode_codes = torch.tensor([self._episode_code[e] for e in self.episodes or []])  # (R,)

    @functools.cached_property
    def fingerprint(self) -> str:
        """A hash of the whole bank: saving skips a file that already holds it (computed only when saving)."""
        digest = hashlib.blake2b(self.keys.numpy().tobytes(), digest_size=16)
        digest.update(self.traces.numpy().tobytes())
        digest.update(json.dumps(self.episodes).encode())
        for scene in (self.rgb, self.depth, self.has_depth):
            if scene is not None:
                digest.update(scene.numpy().tobytes())
        return digest.hexdigest()

    @classmethod
    def from_examples(
        cls, examples: list, text_encoder, chunk: int = 256, scenes: bool = False, ids: str = "rollout"
    ) -> RetrievalBank:
        """The bank of :class:`~tracegen.model.data.Example` s; ``text_encoder.encode(texts) -> (R, D)``; ``scenes``:
        keep their observations too (``retrieval_scene``); ``ids``: name them by rollout or by per-camera episode."""
        if not examples:
            raise ValueError("a retrieval bank needs at least one training triplet")
        text = torch.from_numpy(np.asarray(text_encoder.encode([e.instructions[0] for e in examples])))
        keys = [
            retrieval_keys(
                torch.from_numpy(np.stack([e.rgb for e in examples[i : i + chunk]])) / 255.0, text[i : i + chunk]
            )
            for i in range(0, len(examples), chunk)
        ]
        traces = torch.from_numpy(np.stack([(e.x0 * e.mask).astype(np.float16) for e in examples]))
        observations = (
            (
                torch.from_numpy(np.stack([e.rgb for e in examples])),
                torch.from_numpy(np.stack([e.depth.astype(np.float16) for e in examples])),
                torch.tensor([e.has_depth for e in examples]),
            )
            if scenes
            else ()
        )
        return cls(torch.cat(keys), traces, source_ids(examples, ids), *observations, ids=ids)

    def __len__(self) -> int:
        return len(self.keys)

    def check(
        self, key_size: int, trace_shape: tuple[int, int, int], source: str | Path, scene_size: int | None = None
    ) -> None:
        """Refuse a bank made for another text encoder, grid or horizon, or without the ``scene_size`` square
        observations a ``retrieval_scene`` model needs (``source`` names the bank in the message)."""
        if self.keys.shape[1] != key_size or tuple(self.traces.shape[1:]) != trace_shape:
            raise DataError(
                source,
                f"retrieval bank of keys {self.keys.shape[1]} and traces "
                f"{tuple(self.traces.shape[1:])} does not fit the model (keys {key_size}, traces "
                f"{trace_shape})",
            )
        if scene_size is None:
            return
        S, held = scene_size, None
        if self.rgb is not None:
            held = (tuple(self.rgb.shape[1:]), self.rgb.dtype, tuple(self.depth.shape[1:]))
        if held != ((3, S, S), torch.uint8, (1, S, S)):
            raise DataError(
                source,
                f"the model has retrieval_scene=True and needs the bank's observations at {S}x{S} "
                f"(RGB (3, {S}, {S}) uint8, depth (1, {S}, {S})); this bank has "
                f"{'none' if held is None else held}: rebuild it by training",
            )

    def scenes(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        """The observations of bank triplets ``index (B,)`` as batch fields: ``retrieved_rgb (B, 3, S, S)`` in [0,
        1], ``retrieved_depth (B, 1, S, S)`` metres, ``retrieved_has_depth (B,)``."""
        if self.rgb is None:
            raise ValueError("this retrieval bank keeps no observations (build it with scenes=True)")
        found = self.rgb[index].float() / 255.0, self.depth[index].float(), self.has_depth[index]
        return dict(zip(SCENE_FIELDS, found, strict=True))

    def nearest(
        self,
        keys: torch.Tensor,
        exclude: list[str] | None = None,
        top_k: int = 1,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Bank indices ``(B,)`` of the triplets nearest to ``keys (B, D)``: the best, or one of the ``top_k`` best
        drawn with ``generator``; ``exclude`` gives each query's episode, whose triplets are then skipped."""
        scores = keys.float().cpu() @ self.keys.T  # (B, R)
        if exclude is not None:
            if self.episodes is None:
                raise ValueError("this retrieval bank has no episode ids to leave a query's own episode out")
            query = torch.tensor([self._episode_code.get(q, -1) for q in exclude])  # (B,) -1: not in the bank
            own = query[:, None] == self._episode_codes[None]  # (B, R)
            if own.all(1).any():
                raise ValueError("retrieval needs triplets of at least two episodes (a query's own is left out)")
            scores = scores.masked_fill(own, -torch.inf)
        if top_k <= 1:
            return scores.argmax(1)
        best = scores.topk(min(top_k, len(self)), 1).indices  # (B, k)
        best_finite = torch.isfinite(scores.gather(1, best)).sum(1)  # (B,) how many of them are allowed
        pick = (torch.rand(len(keys), generator=generator) * best_finite).long()
        return best.gather(1, pick[:, None])[:, 0]

    def retrieve(self, keys: torch.Tensor, **kwargs) -> torch.Tensor:
        """The nearest triplets' increments ``(B, N, L, 3)`` float32 (see :meth:`nearest` for the options)."""
        return self.traces[self.nearest(keys, **kwargs)].float()

    def save(self, path: str | Path) -> None:
        """Write ``path`` atomically, unless it already holds this very bank (a training run saves every few
        hundred steps; its bank does not change)."""
        from safetensors import SafetensorError, safe_open
        from safetensors.torch import save_file

        from tracegen.io.files import atomic_path

        path = Path(path)
        if path.is_file():
            try:
                with safe_open(str(path), "pt") as f:
                    if (f.metadata() or {}).get("fingerprint") == self.fingerprint:
                        return
            except (SafetensorError, OSError):  # unreadable: write it again
                pass
        meta = {"fingerprint": self.fingerprint, "episodes": json.dumps(self.episodes), "ids": self.ids}
        tensors = {"keys": self.keys, "traces": self.traces.half()}
        if self.rgb is not None:
            tensors.update(rgb=self.rgb, depth=self.depth, has_depth=self.has_depth)
        with atomic_path(path) as tmp:
            save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), meta)

    @classmethod
    def load(cls, path: str | Path) -> RetrievalBank:
        from safetensors import SafetensorError, safe_open
        from safetensors.torch import load_file

        path = Path(path)
        if not path.is_file():
            raise DataError(path, "file not found: a model with retrieval=True needs the bank it was trained with")
        try:
            tensors = load_file(str(path))
            with safe_open(str(path), "pt") as f:
                meta = f.metadata() or {}
            episodes = json.loads(meta.get("episodes", "null"))
            scenes = [tensors.get(k) for k in ("rgb", "depth", "has_depth")]
            ids = meta.get("ids", "episode")  # a bank saved before rollouts names per-camera episodes
            return cls(tensors["keys"].float(), tensors["traces"].half(), episodes, *scenes, ids=ids)
        except (SafetensorError, OSError, KeyError, ValueError) as e:
            raise DataError(path, f"cannot read the retrieval bank (truncated or corrupt?): {e}") from None
