"""Rectified flow (linear interpolant) training and sampling, in one time convention.

Convention (the official TraceGen code's and diffusers'): **t = 0 is data, t = 1 is noise**.

    x_t = (1 - t) * x_0 + t * eps,        velocity target  v = eps - x_0,
    sampling integrates dx/dt = v from t = 1 (pure noise) down to t = 0 with ``steps`` equal steps.

(The paper writes the same flow with tau = 1 - t and the velocity negated.) The step size follows the number of
steps, unlike the official sampler, which always steps 1/100. Classifier-free guidance combines a conditional and an
unconditional velocity, ``v = v_u + w * (v_c - v_u)``; the unconditional one comes from a *trained* null condition.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x (B, ...), t (B,)) -> v (B, ...)


def interpolate(x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``x_t`` and the velocity target for data ``x0``, noise and times ``t (B,)``."""
    tb = t.view(-1, *([1] * (x0.ndim - 1)))
    return (1 - tb) * x0 + tb * noise, noise - x0


def masked_mse(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean squared error over the entries where ``mask`` is True (0 if none); ``weight`` (broadcastable to
    ``pred``) counts some entries more, in the sum and in the normaliser alike."""
    w = mask.to(pred.dtype) if weight is None else mask.to(pred.dtype) * weight
    return ((pred - target) ** 2 * w).sum() / w.sum().clamp_min(1.0)


def masked_distance(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor | None = None, eps: float = 1e-6
) -> torch.Tensor:
    """Mean Euclidean distance between ``pred`` and ``target`` ``(B, N, L, 3)`` over their last axis, over the
    steps where ``mask`` is True (0 if none); ``weight`` as in :func:`masked_mse`. Minimised by the conditional
    geometric median rather than the mean: a point that moves in some of the plausible futures and not in most
    is predicted still (a displacement error, ADE, rewards the same)."""
    m = mask.to(pred.dtype)  # (B, N, L, 3): a 2D-only sample's depth is masked out of the distance
    distance = torch.sqrt(((pred - target) ** 2 * m).sum(-1) + eps)  # (B, N, L)
    w = m.amax(-1) if weight is None else m.amax(-1) * weight[..., 0]  # (B, N, L)
    return (distance * w).sum() / w.sum().clamp_min(1.0)


def moving_points(x0: torch.Tensor, mask: torch.Tensor, threshold: float) -> torch.Tensor:
    """``(B, N)`` bool: the points whose path (running sum of the valid increments ``x0 (B, N, L, 3)``) leaves its
    start by more than ``threshold`` normalised steps in u or v."""
    return path(x0, mask)[..., :2].abs().amax(dim=(2, 3)) > threshold


def path(increments: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Positions relative to the start ``(B, N, L, 3)``: the running sum of the valid increments over the steps."""
    return torch.cumsum(increments * mask.to(increments.dtype), dim=2)


def to_offsets(increments: torch.Tensor, mask: torch.Tensor, scale: float) -> torch.Tensor:
    """Normalised increments ``(B, N, L, 3)`` -> offsets from the start ``(B, N, L, 3)`` divided by ``scale`` (an
    invalid step holds the last valid offset)."""
    return path(increments, mask) / scale


def from_offsets(offsets: torch.Tensor, scale: float) -> torch.Tensor:
    """Inverse of :func:`to_offsets` on the valid steps: offsets ``(B, N, L, 3)`` -> increments ``(B, N, L, 3)``."""
    return torch.diff(offsets * scale, dim=2, prepend=torch.zeros_like(offsets[:, :, :1]))


def guided(velocity: Callable[[torch.Tensor, torch.Tensor, bool], torch.Tensor], scale: float) -> Velocity:
    """Wrap ``velocity(x, t, conditional)`` with classifier-free guidance; scale 1 is the conditional model alone."""
    if scale == 1.0:
        return lambda x, t: velocity(x, t, True)

    def v(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        v_cond, v_null = velocity(x, t, True), velocity(x, t, False)
        return v_null + scale * (v_cond - v_null)

    return v


@torch.no_grad()
def sample(velocity: Velocity, noise: torch.Tensor, steps: int, method: str = "heun") -> torch.Tensor:
    """Integrate from ``t = 1`` (``noise``) to ``t = 0`` in ``steps`` equal steps with Euler or Heun (2nd order).

    Heun costs two velocity evaluations per step, except the last, which ends at t = 0 with an Euler step.
    """
    if method not in ("euler", "heun"):
        raise ValueError(f"unknown sampler {method!r}; use 'euler' or 'heun'")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    x = noise
    ts = torch.linspace(1.0, 0.0, steps + 1, device=noise.device)
    for i in range(steps):
        t, t_next = ts[i].expand(len(x)), ts[i + 1].expand(len(x))
        dt = float(ts[i + 1] - ts[i])  # negative
        v = velocity(x, t)
        if method == "heun" and i < steps - 1:
            v = 0.5 * (v + velocity(x + dt * v, t_next))
        x = x + dt * v
    return x
