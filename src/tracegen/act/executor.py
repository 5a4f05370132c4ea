"""From a predicted 3D trace to an end-effector plan: lift, pick the effector's tracks, derive a path and the gripper.

A trace says where every grid point of the scene goes, in the observation's camera. The executor needs only three
things from it, each decided by a named rule (:class:`ExecutorConfig`):

1. **Lift** every ``(u, v, z)`` to world coordinates with the camera's K and w2c.
2. **The arm's tracks** (``kinematic_path``, given the robot's kinematics): the tracks that start on the arm's links
   pin down its future joint angles, and forward kinematics gives the effector's path (:mod:`tracegen.act.kinematics`;
   :func:`effector_motion`). Without them, or with ``kinematic_path="off"``:
   **Effector tracks**: near the end effector's known position (forward kinematics at planning time), the moving
   tracks that move coherently with a seed track (:func:`select_effector_tracks`). The seed is the nearest of the
   tracks that start moving first (``first_movers``: an object about to be picked can lie closer to the tool point
   than any gripper point, but it waits for the gripper). When the gripper has no moving grid point (hidden behind the
   arm) the nearest moving part within ``fallback_radius_m`` drives the plan — unless the effector can *reach* an
   object (:func:`reached_object_tracks`): with no moving track within ``effector_radius_m`` that starts higher than
   ``object_below_m`` under the effector, the nearest moving track within ``reach_radius_m`` (starting at most
   ``reach_max_above_m`` above it, and nearer than any moving part higher than that) is an object the effector is
   about to move. The plan (:func:`reach_plan`) goes to it — its seen point pushed ``reach_depth_m`` along the
   camera's ray, since a track lies on the object's visible face — by the step before it moves, closes there and then
   moves with it. A 20x20 grid over a far camera (the protocol's ``corner2``) often has no point on the gripper.
3. **Path**: the effector's future positions — the start position plus the *mean* displacement of its tracks (as the
   paper's authors do), or a *rigid* fit (Kabsch) of the tracks from the start to every step applied to the
   effector's position.
4. **Gripper** and **contact point** (where to close). *Co-motion*: closed from the first step where at least
   ``min_carried_tracks`` non-effector tracks that start within ``grasp_radius_m`` of the effector move *with* it
   (their displacement since that step stays within ``carry_tolerance_m`` of the effector's, while the effector
   moves at least ``carry_min_motion_m``) and stayed still while the effector first moved ``carry_approach_m`` (arm
   links move from the start; objects wait) — closing one step before they have moved ``carry_onset_m`` — and open
   again when they stop following. The contact point is read from the carried tracks (``contact_grasp``): a held
   track moves with the effector, so ``path[s] - (track[s] - track[0])`` is where the effector was when it took hold.
   *Dip*: a 20x20 grid often has no point on a small object, so a second rule reads the effector path alone: the
   first descend-then-rise (``dip_depth_m``, ``dip_rise_m``) next to something (a track, or the observation's depth
   points) is a pick, closed from its lowest step; the contact point lies as low as where the descent and the rise
   meet, across where the lowest step is — or the step before it, if the move into the lowest went more sideways than
   down (``dip_refine``: retargeted steps are centimetres apart and skip the bottom, and the lowest step may already be
   on the way out with the object). With ``dip_centre_m``, a last descent step shorter than 2.5 times that radius is
   searched for the object under it, in the observation's depth (:func:`dip_object`): the contact is the step's point
   nearest to the top of what stands out of its support there (an expert that fumbles, or closes while its object
   rolls, leaves its lowest step beside the object). With ``dip_snap_m``, a contact that still has nothing standing
   out under it (within ``dip_snap_keep_m``) moves over the top of the nearest object within that radius
   (:func:`snap_to_object`): a learned plan's dip lands centimetres beside the object it means, since a model trained
   on five videos per task and camera does not localise it.
   No privileged task knowledge is used.

Only the valid steps of the trace are used (a prediction has all 33).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from tracegen.act.kinematics import ArmKinematics, KinematicFitConfig
from tracegen.geometry import kabsch, pixels_to_world
from tracegen.settings import ABOVE_ZERO, AT_LEAST_ONE, out_of_range, rules

PATH_MODES = ("mean", "rigid")
KINEMATIC_PATHS = ("off", "hidden", "always")
GRASP_RULES = ("co-motion", "dip")
# what ExecutorConfig's numbers must be (anything else would fail every episode quietly)
_RANGES = rules(AT_LEAST_ONE, "min_effector_tracks", "min_carried_tracks") | rules(
    ABOVE_ZERO, "effector_radius_m", "max_depth_m"
)


@dataclass(frozen=True)
class ExecutorConfig:
    effector_radius_m: float = 0.10  # effector tracks start this close to the end effector ...
    min_track_motion_m: float = 0.01  # ... move at least this far ...
    coherence_m: float = 0.02  # ... and move like the nearest moving track (within this, at every step)
    fallback_radius_m: float = 0.50  # when no grid point near the effector moves, the nearest moving part this close
    min_effector_tracks: int = 3  # when nothing near the effector moves: the nearest tracks (a static plan)
    first_movers: bool = True  # the seed is the nearest of the tracks that start moving first (the arm drives the
    # scene: an object next to the gripper starts moving only once reached)
    first_mover_slack_steps: int = 1  # ... within this many steps of the earliest
    path_mode: Literal["mean", "rigid"] = "mean"
    grasp_radius_m: float = 0.08  # object tracks that can be carried start this close to the effector
    carry_tolerance_m: float = 0.02  # a carried track's displacement stays this close to the effector's
    carry_min_motion_m: float = 0.03  # ... while the effector moves at least this far
    min_carried_tracks: int = 2
    carry_onset_m: float = 0.005  # the grasp starts one step before the carried tracks have moved this far
    carry_approach_m: float = 0.01  # carried tracks stay still while the effector first moves this far (an object
    # waits for the gripper to reach it; the arm's own links, not picked as effector tracks, move from the start)
    contact_grasp: bool = True  # grasp where the carried tracks say the effector was when they started moving
    dip_depth_m: float = 0.04  # a "dip": the effector descends at least this far (this plan or just before) ...
    dip_rise_m: float = 0.04  # ... then rises at least this far, next to something: a pick, closed at the bottom
    dip_refine: bool = True  # the dip's contact point is where the descent and the rise meet between the steps
    dip_max_refine_m: float = 0.03  # ... at most this far below the lowest step
    dip_centre_m: float = 0.03  # > 0: across, the dip's contact is the point of its last descent step (when shorter
    # than 2.5 x this) nearest to the top of an object within this radius of it in the observation's depth (dip_object)
    dip_snap_m: float = 0.08  # > 0: then a contact with no object under it (nothing standing out within
    # dip_snap_keep_m across) moves over the top of the nearest object within this radius (snap_to_object) ...
    dip_snap_keep_m: float = 0.03
    dip_snap_object_m: float = 0.03  # ... the object: what stands out within this of its point nearest the contact
    dip_object_raised_m: float = 0.01  # ... an object's points stand at least this far out of their support ...
    dip_object_reach_m: float = 0.08  # ... and at most this far above the dip's bottom (higher up is the arm) ...
    dip_object_top_m: float = 0.005  # ... and its top is those within this of its highest point
    grasp_rules: tuple[str, ...] = ("co-motion", "dip")
    max_depth_m: float = 10.0  # tracks starting farther than this (e.g. sky, far plane) are ignored
    reach_radius_m: float = 0.10  # > 0: with no moving track within effector_radius_m (a hidden gripper), an object
    # that moves within this radius is what the effector goes to: reach its start, close, then carry it
    object_below_m: float = 0.03  # ... a moving track starting this far below the effector is an object, not it
    reach_depth_m: float = 0.02  # ... its contact point lies this far behind the object's seen face (camera ray)
    reach_max_above_m: float = 0.02  # ... an object starting at most this far above the effector (arm links hang
    # above the tool; what it reaches lies level with it or below)
    kinematic_path: Literal["off", "hidden", "always"] = "always"  # read the effector's path from the arm's own
    # tracks through its kinematics (act.kinematics): when no grid point near the effector moves, always, or never
    kinematics: KinematicFitConfig = field(default_factory=KinematicFitConfig)

    def __post_init__(self) -> None:
        if self.kinematic_path not in KINEMATIC_PATHS:
            raise ValueError(
                f"unknown kinematic_path {self.kinematic_path!r}; use {', '.join(map(repr, KINEMATIC_PATHS))}"
            )
        if self.path_mode not in PATH_MODES:
            raise ValueError(f"unknown path_mode {self.path_mode!r}; use {' or '.join(map(repr, PATH_MODES))}")
        unknown = [r for r in self.grasp_rules if r not in GRASP_RULES]
        if unknown:
            raise ValueError(f"unknown grasp rule(s) {unknown}; use any of {', '.join(map(repr, GRASP_RULES))}")
        bad = out_of_range(self, _RANGES)
        if bad:
            raise ValueError(f"executor settings out of range: {', '.join(bad)}")


@dataclass
class Plan:
    """An end-effector plan in world coordinates, one entry per trace step (step 0 = now)."""

    positions: np.ndarray  # (S, 3) metres, world frame
    gripper_closed: np.ndarray  # (S,) bool
    effector_tracks: np.ndarray  # (K,) indices of the tracks attributed to the effector
    world_traj: np.ndarray  # (N, S, 3) the lifted trace
    grasp_position: np.ndarray | None = None  # (3,) where to close the gripper (when a grasp starts in this plan)

    @property
    def excursion(self) -> float:
        """How far (m) the plan takes the effector from where it is: its farthest step, not its last (a press
        that goes down and comes back is a motion, not a static plan)."""
        return float(np.linalg.norm(self.positions - self.positions[0], axis=1).max())

    @property
    def grasps_later(self) -> bool:
        """Whether the gripper closes on something after the first step: an object not yet in hand."""
        return self.grasp_position is not None and bool(self.gripper_closed.any()) and not self.gripper_closed[0]

    def final_press_start(self, min_drop_m: float, still_m: float = 0.002) -> int | None:
        """The step at which the plan's last motion, a press straight down, begins: its moving steps
        (> ``still_m``) from there on each go more down than sideways, at least ``min_drop_m`` in all, and only still
        steps follow. ``None`` for a plan that grasps or whose motion does not end in such a press."""
        if self.gripper_closed.any():
            return None
        steps = np.diff(self.positions, axis=0)  # (S-1, 3) metres
        moving = np.linalg.norm(steps, axis=1) > still_m
        down = -steps[:, 2] >= np.linalg.norm(steps[:, :2], axis=1)
        if not moving.any():
            return None
        start = int(np.flatnonzero(moving)[-1])  # the last moving step must go down ...
        if not down[start]:
            return None
        while start > 0 and (down[start - 1] or not moving[start - 1]):
            start -= 1  # ... and so must every moving step back to where the press begins
        drop = self.positions[start, 2] - self.positions[-1, 2]
        return start if drop >= min_drop_m else None


def lift_trace(traj: np.ndarray, K: np.ndarray, w2c: np.ndarray) -> np.ndarray:
    """``(N, S, 3)`` ``(u, v, z)`` in the camera (K, w2c) -> world points ``(N, S, 3)``."""
    return pixels_to_world(np.swapaxes(traj, 0, 1).astype(np.float64), K, w2c).swapaxes(0, 1)


def track_distances(
    world: np.ndarray, ee_position: np.ndarray, start_depth: np.ndarray, cfg: ExecutorConfig
) -> tuple[np.ndarray, np.ndarray]:
    """``(N,)`` start distance of every usable track to the effector (inf if unusable) and ``(N,)`` whether it
    moves (its farthest excursion exceeds ``min_track_motion_m``)."""
    usable = np.isfinite(world[:, 0]).all(1) & (start_depth > 0) & (start_depth < cfg.max_depth_m)
    dist = np.where(usable, np.linalg.norm(world[:, 0] - ee_position, axis=1), np.inf)
    motion = np.linalg.norm(world - world[:, :1], axis=2).max(1)  # (N,) farthest excursion of each track
    return dist, motion > cfg.min_track_motion_m


def coherent_with(world: np.ndarray, candidates: np.ndarray, seed: int, cfg: ExecutorConfig) -> np.ndarray:
    """The ``candidates`` whose displacement stays within ``coherence_m`` of the ``seed`` track's at every step."""
    disp = world[candidates] - world[candidates, :1]  # (M, S, 3)
    return candidates[np.linalg.norm(disp - (world[seed] - world[seed, :1]), axis=2).max(1) <= cfg.coherence_m]


def select_effector_tracks(
    world: np.ndarray, ee_position: np.ndarray, start_depth: np.ndarray, cfg: ExecutorConfig
) -> np.ndarray:
    """Indices of the tracks that move with the end effector.

    A 20x20 grid often has no point on the gripper itself, so: among tracks starting within ``effector_radius_m``
    of the effector, take the nearest one that moves (more than ``min_track_motion_m``) as the seed, and keep the
    moving tracks whose displacement stays within ``coherence_m`` of the seed's at every step (one rigid-ish part).
    With ``first_movers`` the seed is the nearest of the candidates that start moving (by ``carry_onset_m``) within
    one step of the earliest: an object the gripper is about to pick can lie closer than any gripper point.
    With no moving track within the radius (a coarse grid may miss the gripper), the same rule runs within
    ``fallback_radius_m``; if nothing moves there either, the nearest tracks are returned (a static plan).
    """
    dist, moving = track_distances(world, ee_position, start_depth, cfg)
    candidates = np.flatnonzero((dist <= cfg.effector_radius_m) & moving)
    if len(candidates) == 0:  # no grid point on the effector moves: the nearest moving part of the arm, if close
        candidates = np.flatnonzero((dist <= cfg.fallback_radius_m) & moving)
    if len(candidates) == 0:
        return np.argsort(dist)[: cfg.min_effector_tracks]
    pool = candidates
    if cfg.first_movers:
        onset = np.argmax(np.linalg.norm(world[candidates] - world[candidates, :1], axis=2) > cfg.carry_onset_m, axis=1)
        pool = candidates[onset <= onset.min() + cfg.first_mover_slack_steps]
    return coherent_with(world, candidates, pool[np.argmin(dist[pool])], cfg)


def reached_object_tracks(
    world: np.ndarray, ee_position: np.ndarray, start_depth: np.ndarray, cfg: ExecutorConfig
) -> np.ndarray | None:
    """With a hidden effector (no moving track within ``effector_radius_m`` that starts higher than
    ``object_below_m`` under the effector: lower ones are objects waiting for it), the tracks of the nearest object
    that moves within ``reach_radius_m`` and starts at most ``reach_max_above_m`` above the effector (coherent with
    it); ``None`` when the effector is visible, nothing qualifies, or a moving part higher than that (the arm) is
    nearer than the object."""
    if cfg.reach_radius_m <= 0:
        return None
    dist, moving = track_distances(world, ee_position, start_depth, cfg)
    height = world[:, 0, 2] - ee_position[2]  # start height above the effector (world z is up)
    if (moving & (dist <= cfg.effector_radius_m) & (height >= -cfg.object_below_m)).any():
        return None
    candidates = np.flatnonzero(moving & (height <= cfg.reach_max_above_m) & (dist <= cfg.reach_radius_m))
    arm = dist[moving & (height > cfg.reach_max_above_m)]  # moving parts above the tool: the arm it hangs from
    if len(candidates) == 0 or arm.min(initial=np.inf) < dist[candidates].min():
        return None  # nothing to reach, or a part of the arm is nearer and drives the plan (the fallback)
    return coherent_with(world, candidates, candidates[np.argmin(dist[candidates])], cfg)


def reach_plan(
    world: np.ndarray, tracks: np.ndarray, ee_position: np.ndarray, camera_center: np.ndarray, cfg: ExecutorConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Path ``(S, 3)``, gripper ``(S,)`` and contact point for an effector that the trace does not show: it goes
    straight to the object ``tracks`` (their mean start, pushed ``reach_depth_m`` further along the camera's ray:
    a track lies on the object's visible face, its middle is behind it), reaching it by the last step before they
    move (by ``carry_onset_m``), closes there and then moves with them (the object's mean displacement)."""
    seen = world[tracks, 0].mean(0)
    ray = (seen - camera_center) / np.linalg.norm(seen - camera_center)
    contact = seen + cfg.reach_depth_m * ray
    disp = (world[tracks] - world[tracks, :1]).mean(0)  # (S, 3)
    onset = max(1, int(np.argmax(np.linalg.norm(disp, axis=1) > cfg.carry_onset_m)))
    path = contact + disp
    path[:onset] = ee_position + (contact - ee_position) * (np.arange(onset) / max(1, onset - 1))[:, None]
    closed = np.arange(len(path)) >= onset
    return path, closed, contact


def effector_path(world: np.ndarray, tracks: np.ndarray, ee_position: np.ndarray, mode: str) -> np.ndarray:
    """Effector positions ``(S, 3)``: mean displacement of its tracks, or a rigid fit per step."""
    pts = world[tracks]  # (K, S, 3)
    if mode == "mean" or len(tracks) < 3:
        return ee_position + (pts - pts[:, :1]).mean(0)
    if mode != "rigid":
        raise ValueError(f"unknown path_mode {mode!r}; use 'mean' or 'rigid'")
    path = np.empty((pts.shape[1], 3))
    for s in range(pts.shape[1]):
        R, t = kabsch(pts[:, 0], pts[:, s])
        path[s] = R @ ee_position + t
    return path


def gripper_schedule(
    world: np.ndarray, effector: np.ndarray, path: np.ndarray, cfg: ExecutorConfig
) -> tuple[np.ndarray, np.ndarray | None]:
    """``(S,)`` bool: closed from the first step where nearby object tracks start moving with the effector, until
    they stop following it (one grasp per plan); and the contact point, where the effector was when they started
    moving (``None`` without a grasp).

    A carried track must stay still (moved less than ``carry_onset_m``) while the effector first travels
    ``carry_approach_m``: an object waits for the gripper, whereas arm links that the effector selection left out
    move from the first step. The contact point is read from the carried tracks themselves: once held, a track moves
    with the effector, so ``path[s] - (track[s] - track[0])`` is the effector's position at contact for every carried
    step ``s`` (median over tracks and steps). The retargeted steps are coarse (centimetres), so this is much finer
    than the step before the onset.
    """
    S = path.shape[0]
    others = np.setdiff1d(np.arange(len(world)), effector)
    others = others[np.isfinite(world[others, 0]).all(1)]
    closed = np.zeros(S, bool)
    for s in range(S - 1):
        near = others[np.linalg.norm(world[others, s] - path[s], axis=1) <= cfg.grasp_radius_m]
        if len(near) < cfg.min_carried_tracks:
            continue
        ee_move = path[s:] - path[s]  # (R, 3) effector displacement since step s
        obj_move = world[near, s:] - world[near, s : s + 1]  # (M, R, 3)
        follows = np.linalg.norm(obj_move - ee_move[None], axis=2) <= cfg.carry_tolerance_m  # (M, R)
        prefix = np.where(follows.all(1), follows.shape[1], np.argmin(follows, axis=1))  # steps each track follows
        reach = np.array([np.linalg.norm(ee_move[:p], axis=1).max() if p else 0.0 for p in prefix])
        carried = reach >= cfg.carry_min_motion_m  # it followed the effector over a real motion
        if cfg.carry_approach_m > 0:  # ... and waited for it: still while the effector first moved
            approach = np.linalg.norm(path[: s + 1] - path[0], axis=1) < cfg.carry_approach_m  # (s+1,)
            first = int(np.argmin(approach)) if not approach.all() else s + 1  # first step the effector is away
            if first > s:  # the effector has not moved yet at step s: look further along the plan
                away = np.flatnonzero(np.linalg.norm(path - path[0], axis=1) >= cfg.carry_approach_m)
                first = int(away[0]) if len(away) else S
            still = np.linalg.norm(world[near, : first + 1] - world[near, :1], axis=2).max(1) < cfg.carry_onset_m
            carried &= still
        if carried.sum() >= cfg.min_carried_tracks:
            lift = np.median(np.linalg.norm(obj_move[carried], axis=2), axis=0)  # (R,) how far the object has moved
            onset = max(0, int(np.argmax(lift >= cfg.carry_onset_m)) - 1)  # close just before it starts moving
            stop = s + int(np.median(prefix[carried]))
            closed[s + onset : stop] = True
            held = np.arange(s + onset + 1, stop)
            if not cfg.contact_grasp or len(held) == 0:
                return closed, path[s + onset].copy()
            tracks = near[carried]
            contact = path[held][None] - (world[tracks][:, held] - world[tracks, :1])  # (M, H, 3)
            return closed, np.median(contact.reshape(-1, 3), axis=0)
    return closed, None


def recent_descent(heights: np.ndarray, slack_m: float = 0.003) -> float:
    """How far the effector has just come down: from the top of its last uninterrupted descent (rises up to
    ``slack_m`` are noise) to the last of ``heights`` (a history of effector heights, oldest first)."""
    h = np.asarray(heights, np.float64)
    if len(h) < 2:
        return 0.0
    top, i = h[-1], len(h) - 1
    while i > 0 and h[i - 1] >= h[i] - slack_m:
        i -= 1
        top = max(top, h[i])
    return float(top - h[-1])


def dip_schedule(
    world: np.ndarray,
    effector: np.ndarray,
    path: np.ndarray,
    cfg: ExecutorConfig,
    descended_before_m: float = 0.0,
    up: np.ndarray = np.array([0.0, 0.0, 1.0]),
    scene_points: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """``(S,)`` bool: closed from the lowest point of the first descend-then-rise along ``up`` (world up) that ends
    next to something in the scene (a track of another part, or a point of the observation's depth
    ``scene_points (P, 3)`` in world coordinates, within ``grasp_radius_m``) — a pick; and the contact point: that
    lowest point, lowered and placed by :func:`dip_contact` when ``dip_refine``."""
    height = path @ up  # (S,)
    closed = np.zeros(len(path), bool)
    for low in range(len(height)):  # the first low point with a deep enough descent before and rise after it
        if low > 0 and height[low] > height[low - 1]:
            continue
        descent = max(height[: low + 1].max() - height[low], descended_before_m if low == 0 else 0.0)
        if descent >= cfg.dip_depth_m and height[low:].max() - height[low] >= cfg.dip_rise_m:
            break
    else:
        return closed, None
    while low + 1 < len(height) and height[low + 1] < height[low]:  # the bottom of that descent
        low += 1
    others = np.setdiff1d(np.arange(len(world)), effector)
    gap = np.linalg.norm(world[others, low] - path[low], axis=1)
    if scene_points is not None and len(scene_points):
        gap = np.concatenate([gap, np.linalg.norm(scene_points - path[low], axis=1)])
    if np.nanmin(gap, initial=np.inf) <= cfg.grasp_radius_m:
        closed[low:] = True
        if not cfg.dip_refine:
            return closed, path[low].copy()
        return closed, dip_contact(path, height, up, low, cfg, scene_points)
    return closed, None


def dip_contact(
    path: np.ndarray,
    height: np.ndarray,
    up: np.ndarray,
    low: int,
    cfg: ExecutorConfig,
    scene_points: np.ndarray | None = None,
) -> np.ndarray:
    """Where the dip at step ``low`` of ``path (S, 3)`` (its ``height (S,)`` along ``up``) touched bottom: at the
    lowest step's height lowered by :func:`dip_undershoot` (at most ``dip_max_refine_m``); across ``up``, where the
    lowest step is, unless the move into it went more sideways than down: then it is already on the way out (an
    expert closes its gripper as it moves off with the object, and a step centimetres long lands beside it), and the
    contact is across where the descent's last step was. With ``scene_points`` (the observation's depth in world
    coordinates): with ``dip_centre_m`` and a last descent step at most 2.5 times that long across, the contact is
    that step's point over the top of the object under it (:func:`dip_object`), when there is one (a longer step: the
    search would reach other objects); then, with ``dip_snap_m``, a contact with nothing under it moves over the
    nearest object (:func:`snap_to_object`)."""
    bottom = height[low] - min(cfg.dip_max_refine_m, dip_undershoot(height, low))
    into = path[low] - path[max(low - 1, 0)]  # (3,) the move into the lowest step
    down = -float(into @ up)
    sideways = float(np.linalg.norm(into + down * up))
    contact = path[low - 1 if sideways > down else low].copy()
    if scene_points is not None and cfg.dip_centre_m > 0 and low > 0 and sideways <= 2.5 * cfg.dip_centre_m:
        found = dip_object(path[low - 1], path[low], scene_points, up, bottom, cfg)
        contact = contact if found is None else found
    if scene_points is not None and cfg.dip_snap_m > 0:
        found = snap_to_object(contact, scene_points, up, bottom, cfg)
        contact = contact if found is None else found
    return contact + up * (bottom - contact @ up)


def snap_to_object(
    contact: np.ndarray, scene_points: np.ndarray, up: np.ndarray, bottom: float, cfg: ExecutorConfig
) -> np.ndarray | None:
    """``contact (3,)`` moved across ``up`` over the top of the nearest object within ``dip_snap_m`` of it in the
    observation's depth ``scene_points (P, 3)``: the points standing out of their support (as in :func:`dip_object`)
    within ``dip_snap_object_m`` of the one nearest the contact. ``None`` when an object already lies under the
    contact (a point standing out within ``dip_snap_keep_m`` of it, across) or none is near."""
    height, across = split_along(scene_points, up)
    gap = np.linalg.norm(across - split_along(contact, up)[1], axis=1)  # (P,) distance across to the contact
    standing = standing_out(height, gap, cfg.dip_snap_m, bottom, cfg)
    near = standing & (gap <= cfg.dip_snap_m)
    if not near.any() or gap[near].min() <= cfg.dip_snap_keep_m:
        return None
    nearest = np.flatnonzero(near)[np.argmin(gap[near])]
    member = standing & (np.linalg.norm(across - across[nearest], axis=1) <= cfg.dip_snap_object_m)
    return across[top_of(height, member, cfg.dip_object_top_m)].mean(0) + (contact @ up) * up


def split_along(points: np.ndarray, up: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``points (..., 3)`` -> their heights ``(...,)`` along the unit vector ``up`` and positions across it."""
    height = points @ up
    return height, points - height[..., None] * up


def standing_out(height: np.ndarray, gap: np.ndarray, radius: float, bottom: float, cfg: ExecutorConfig) -> np.ndarray:
    """``(P,)`` bool: scene points at ``height (P,)`` that stand at least ``dip_object_raised_m`` out of their support
    (the 5th height percentile of the points within ``2 radius`` across, by ``gap (P,)``) and at most
    ``dip_object_reach_m`` above a dip's ``bottom`` (higher up is the arm); none when fewer than 3 are around."""
    around = gap <= 2 * radius
    if around.sum() < 3:
        return np.zeros(len(height), bool)
    support = np.percentile(height[around], 5)
    return (height >= support + cfg.dip_object_raised_m) & (height <= bottom + cfg.dip_object_reach_m)


def top_of(height: np.ndarray, member: np.ndarray, top_m: float) -> np.ndarray:
    """``(P,)`` bool: the ``member`` points within ``top_m`` of the highest of them (a camera sees one side of an
    object; its top, seen from above, locates it better than the centroid of what is seen)."""
    return member & (height >= height[member].max() - top_m)


def dip_object(
    start: np.ndarray, end: np.ndarray, scene_points: np.ndarray, up: np.ndarray, bottom: float, cfg: ExecutorConfig
) -> np.ndarray | None:
    """The point of the segment ``start -> end`` (3,) over the top of an object under it, or ``None``.

    An object's points are the ``scene_points (P, 3)`` within ``dip_centre_m`` of the segment across ``up`` that stand
    out of their support (:func:`standing_out`); the answer is the segment's point nearest to the centroid of their
    top (:func:`top_of`).
    """
    height, across = split_along(scene_points, up)
    a = split_along(start, up)[1]  # the segment across up
    seg = split_along(end, up)[1] - a

    def fraction(points: np.ndarray) -> np.ndarray:  # (...,) where along the segment points (..., 3) are nearest
        return np.clip((points - a) @ seg / max(float(seg @ seg), 1e-12), 0.0, 1.0)

    gap = np.linalg.norm(across - (a + fraction(across)[:, None] * seg), axis=1)  # (P,) distance across to it
    on_object = standing_out(height, gap, cfg.dip_centre_m, bottom, cfg) & (gap <= cfg.dip_centre_m)
    if not on_object.any():
        return None
    top = top_of(height, on_object, cfg.dip_object_top_m)
    return start + float(fraction(across[top].mean(0))) * (end - start)


def dip_undershoot(height: np.ndarray, low: int) -> float:
    """How far below the lowest retargeted step the dip's true bottom lies (>= 0).

    Retargeted steps sample the motion every few centimetres, so the lowest step is an upper bound of the bottom
    (and a pause there, e.g. while the gripper closes, leaves no step at all). The descent before and the rise after
    are each extended by their last per-step velocity (steps ``low-2 -> low-1`` and ``low+1 -> low+2``); they meet,
    between steps ``low-1`` and ``low+1``, at the bottom.
    """
    if low < 2 or low + 2 >= len(height):
        return 0.0
    a, b = height[low - 1] - height[low - 2], height[low + 2] - height[low + 1]  # descent and rise per step
    if not (a < 0 < b):
        return 0.0
    t = (height[low + 1] - height[low - 1] + a * (low - 1) - b * (low + 1)) / (a - b)
    t = float(np.clip(t, low - 1, low + 1))
    return max(0.0, float(height[low] - (height[low - 1] + a * (t - (low - 1)))))


def plan_from_trace(
    traj: np.ndarray,
    K: np.ndarray,
    w2c: np.ndarray,
    ee_position: np.ndarray,
    cfg: ExecutorConfig = ExecutorConfig(),
    num_steps: int | None = None,
    descended_before_m: float = 0.0,
    scene_points: np.ndarray | None = None,
    arm: ArmKinematics | None = None,
) -> Plan:
    """The end-effector plan for a trace ``traj (N, S, 3)`` (u, v px; z m) seen by camera (K, w2c).

    ``num_steps`` keeps only the first steps (e.g. the valid ones). Tracks with unknown depth (NaN z) are ignored.
    ``descended_before_m``: how far the effector came down just before this plan (for the dip rule).
    ``scene_points``: the observation's depth lifted to world points (the dip rule's "next to something").
    ``arm``: the robot's kinematics and which body each trace point starts on (``kinematic_path``).
    """
    traj = np.asarray(traj, np.float64)[:, :num_steps]
    world = lift_trace(traj, K, w2c)
    reached = reached_object_tracks(world, np.asarray(ee_position, np.float64), traj[:, 0, 2], cfg)
    if reached is not None:
        return Plan(*_reach_parts(world, reached, np.asarray(ee_position, np.float64), np.asarray(w2c), cfg))
    effector, path = effector_motion(world, np.asarray(ee_position, np.float64), traj[:, 0, 2], cfg, arm)
    closed, grasp = np.zeros(len(path), bool), None
    for rule in cfg.grasp_rules:
        if rule == "co-motion":
            rule_closed, rule_grasp = gripper_schedule(world, effector, path, cfg)
        else:  # "dip" (ExecutorConfig refuses other names)
            rule_closed, rule_grasp = dip_schedule(
                world, effector, path, cfg, descended_before_m, scene_points=scene_points
            )
        if rule_closed.any() and (grasp is None or np.argmax(rule_closed) < np.argmax(closed)):
            grasp = rule_grasp  # the earliest grasp's contact point
        closed |= rule_closed
    return Plan(path, closed, effector, world, grasp)


def effector_motion(
    world: np.ndarray, ee_position: np.ndarray, start_depth: np.ndarray, cfg: ExecutorConfig, arm: ArmKinematics | None
) -> tuple[np.ndarray, np.ndarray]:
    """``(K,)`` the tracks that say where the effector goes, and its path ``(S, 3)``: fitted through the arm's
    kinematics (``kinematic_path``: when no grid point near the effector moves, or always), else from the effector's
    own tracks (:func:`select_effector_tracks`, :func:`effector_path`)."""
    if arm is not None and cfg.kinematic_path != "off":
        dist, moving = track_distances(world, ee_position, start_depth, cfg)
        if cfg.kinematic_path == "always" or not (moving & (dist <= cfg.effector_radius_m)).any():
            fit = arm.fit(world, cfg.min_track_motion_m)
            if fit is not None:
                return fit[1], fit[0]
    effector = select_effector_tracks(world, ee_position, start_depth, cfg)
    return effector, effector_path(world, effector, ee_position, cfg.path_mode)


def _reach_parts(world, tracks, ee_position, w2c, cfg):
    camera_center = -w2c[:3, :3].T @ w2c[:3, 3]
    path, closed, grasp = reach_plan(world, tracks, ee_position, camera_center, cfg)
    return path, closed, tracks, world, grasp
