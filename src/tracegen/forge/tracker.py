"""Point trackers: the CPU ``forge`` tracker, plain Lucas-Kanade (the baseline), and learned trackers via hooks.

Every tracker follows the query grid of every query frame through its window and returns
:class:`~tracegen.forge.clip.Tracks`: pixels in each frame's own image, visibility, and world points when depth
and cameras exist (2D tracks lifted with the depth map: "tracking in 3D").

**The forge tracker** tracks all queries' points together, frame by frame, so each frame is prepared once:

1. *Static points cost nothing and do not drift.* Fixed camera: a visible point whose 5 x 5 neighbourhood (grey
   levels and depth) has not changed since its anchor frame stays where it is. Moving camera with depth: a point
   whose anchor patch still matches where its world position projects is static in the world and stays pinned.
2. *Moving points*: dense DIS flow gives the step, a Lucas-Kanade refinement the rest. Its patch (19 x 19, sampled
   every other pixel) is masked to the point's own surface (pixels at similar depth, so a thin arm link is not
   dragged by the background behind it) and compared up to a brightness offset (shading changes as surfaces turn).
   With depth and cameras, a *geometric step* follows (:func:`~tracegen.forge.surface.align_surface`): the surface
   around the point, lifted once from its query frame's depth, is moved rigidly (6 DoF, from its previous pose) until
   it fits this frame's depth; the photometric position only holds what the surface leaves free. Shading on
   untextured parts stays with the lights as they turn, so photometry alone falls ~9 % short of every step.
3. *Every step is checked*: the patch residual; with depth, depth consistency -- the point's own pixel must show
   its surface at its expected depth (something in front is an occluder; plain LK instead latches onto the arm
   passing over a background point); without depth, forward-backward consistency of the dense flow. A step that
   lands within a pixel across a depth edge (thin gripper fingers, arm links) is *snapped* back onto its surface
   rather than lost, at most a few steps in a row (an occluder's edge sliding over a point must not hold it).
   The depth a fitted point keeps is its surface fit's, not its own pixel's (steadier by edges).
4. *Occluded points* keep their last world position (re-projected into every frame, so a moving camera is
   followed), and where enough of their surface is still in view, follow its fit to the depth (the geometric
   step with no photometric position of its own: a finger behind the other finger moves on with the hand). They are
   *re-acquired*: where the predicted position shows a surface at the predicted depth and the
   last-seen patch matches there, they are visible again; points that were moving are also searched for within
   ``REACQUIRE_RADIUS`` pixels.
"""

from __future__ import annotations

import numpy as np

from tracegen.forge.clip import Clip, ClipError, StatelessStage, Tracks
from tracegen.forge.config import TrackerConfig
from tracegen.forge.flow import (
    ClipImages,
    Patches,
    align,
    consistent_depth,
    depth_mask,
    nearest_depth,
    patch_offsets,
    sample_points,
    snap_to_surface,
    template_patches,
)
from tracegen.forge.surface import align_surface, surface_patches
from tracegen.forge.windows import WindowConfig
from tracegen.geometry import invert_rigid, pixels_to_world, world_to_pixels
from tracegen.traces import grid_points

STATIC_RADIUS = 2  # the neighbourhood compared by the static test: 5 x 5 pixels
REACQUIRE_RADIUS = 3.0  # pixels a re-acquired point may move from its predicted position
SURFACE_ABS_TOL, SURFACE_REL_TOL = 0.01, 0.02  # a surface pixel's depth is within 1 cm + 2 % of its neighbour's


class _Surfaces:
    """Per track: the surface around it lifted at birth (or re-acquisition) and its current rigid pose."""

    def __init__(self, tracks: int, samples: int):
        self.offsets = np.zeros((tracks, samples, 3), np.float32)  # world axes, relative to the point, at lifting
        self.mask = np.zeros((tracks, samples), bool)
        self.R = np.tile(np.eye(3), (tracks, 1, 1))  # rotation since lifting (world axes)
        self.centre = np.zeros((tracks, 3))  # the point's world position
        self.ready = np.zeros(tracks, bool)


def in_image(p: np.ndarray, height: int, width: int, margin: float = 0.5) -> np.ndarray:
    """``(P,)`` True for pixels inside the image, up to ``margin`` beyond its border pixels (border rows and
    columns are tracked: a refinement may settle a fraction of a pixel outside)."""
    u, v = p[:, 0], p[:, 1]
    return (u >= -margin) & (u <= width - 1 + margin) & (v >= -margin) & (v <= height - 1 + margin)


def query_frames(num_frames: int, window: WindowConfig) -> np.ndarray:
    """Frames that open a window: every ``query_every`` frames (PAPER.md §3.1)."""
    return np.arange(0, num_frames, window.query_every, dtype=np.int64)


class _State:
    """Per-track arrays of all queries' points (M = Q * N tracks), updated in place frame by frame."""

    def __init__(self, queries: np.ndarray, grid: np.ndarray, lengths: np.ndarray):
        Q, N = len(queries), len(grid)
        self.born = np.repeat(queries, N)  # (M,) query frame of each track
        self.end = self.born + np.repeat(lengths, N)  # (M,) first frame after its window
        self.pos = np.tile(grid, (Q, 1)).astype(np.float64)  # (M, 2) current pixel
        self.visible = np.zeros(Q * N, bool)
        self.z = np.zeros(Q * N)  # current planar depth, 0 when unknown
        self.has_z = np.zeros(Q * N, bool)  # the point has a surface with depth (else 2D only)
        self.world = np.full((Q * N, 3), np.nan)  # last seen world position
        self.anchor = self.born.copy()  # reference frame of the point's template (static test, anchored refinement)
        self.anchor_pos = self.pos.copy()  # its pixel in the anchor frame
        self.change = np.zeros(Q * N)  # change of its neighbourhood since the anchor frame, in units of the threshold
        self.moved = np.zeros(Q * N, bool)  # it has moved in the image (else it reappears where it was hidden)
        self.tmpl_frame = self.born.copy()  # last frame the point was seen (re-acquisition template)
        self.tmpl_pos = self.pos.copy()
        self.snaps = np.zeros(Q * N, np.int64)  # steps in a row that were snapped back onto their surface
        self.surf: _Surfaces | None = None  # geometric tracking state (with depth and cameras)


class ForgeTracker(StatelessStage):
    """The default CPU tracker (see the module docstring)."""

    name = "tracker"

    def __init__(self, cfg: TrackerConfig = TrackerConfig(), window: WindowConfig = WindowConfig()):
        self.cfg, self.window = cfg, window

    def process(self, clip: Clip) -> Clip:
        if clip.num_frames < 2:
            raise ClipError("a clip needs at least two frames to track")
        clip.tracks = self.track(clip)
        return clip

    def track(self, clip: Clip) -> Tracks:
        cfg = self.cfg
        T, H, W = clip.num_frames, clip.height, clip.width
        images = ClipImages(clip.rgb, keep=self.window.window + 2)  # every frame a window can use
        queries = query_frames(T, self.window)
        grid = grid_points(H, W, self.window.grid)
        lengths = np.minimum(self.window.window, T - queries)
        L, N = int(lengths.max()), len(grid)
        st = _State(queries, grid, lengths)
        depth, K, w2c = clip.depth, clip.K, clip.w2c
        lift = depth is not None and clip.has_cameras
        if lift and cfg.surface_align:
            st.surf = _Surfaces(len(st.pos), len(patch_offsets(cfg.surface_radius, cfg.surface_stride)[0]))
        uv_out = np.full((len(queries), N, L, 2), np.nan)
        vis_out = np.zeros((len(queries), N, L), bool)
        world_out = np.full((len(queries), N, L, 3), np.nan) if lift else None
        for t in range(T):
            self._birth(st, t, grid, depth, K, w2c, lift)
            if t > 0:
                active = np.flatnonzero((st.born < t) & (t < st.end))
                same_camera = clip.camera_static or (
                    K is not None
                    and w2c is not None
                    and np.array_equal(K[t], K[t - 1])
                    and np.array_equal(w2c[t], w2c[t - 1])
                )
                self._step(st, images, active[st.visible[active]], t, depth, K, w2c, lift, same_camera)
                hidden = active[~st.visible[active]]
                if lift:
                    self._predict_hidden(st, hidden, t, depth, K, w2c)
                if len(hidden) and t % cfg.reacquire_every == 0:
                    self._reacquire(st, images, hidden, t, depth, K, w2c, lift, same_camera)
            for q in np.flatnonzero((queries <= t) & (t < queries + lengths)):  # record frame t of each window
                tracks, step = slice(q * N, (q + 1) * N), t - queries[q]  # query q's tracks are contiguous
                uv_out[q, :, step], vis_out[q, :, step] = st.pos[tracks], st.visible[tracks]
                if lift:
                    world_out[q, :, step] = st.world[tracks]
        return Tracks(queries, uv_out, vis_out, lengths, world_out)

    # ------------------------------------------------------------------ patch helpers (this tracker's settings)

    def _mask(self, depth: np.ndarray, frames: np.ndarray, p: np.ndarray) -> np.ndarray:
        """``(P, M)`` the patch pixels around ``p (P, 2)`` on the point's surface in its frame ``frames (P,)``."""
        cfg = self.cfg
        return depth_mask(depth, frames, p, cfg.window_radius, cfg.depth_abs_tol, cfg.depth_rel_tol, cfg.window_stride)

    def _patches(self, images: ClipImages, frames: np.ndarray, p: np.ndarray, mask) -> Patches:
        """The template patches around ``p (P, 2)``, each in its own frame ``frames (P,)``."""
        stack, slots = images.prepared(frames)
        return template_patches(stack, slots, p, self.cfg.window_radius, mask, self.cfg.window_stride)

    def _surface_mask(self, st: _State, idx: np.ndarray, frames: np.ndarray, p: np.ndarray, depth):
        """The patch masks of tracks ``idx`` (None without depth; a point without depth keeps its whole patch)."""
        if depth is None:
            return None
        mask = self._mask(depth, frames, p)
        mask[~st.has_z[idx]] = True
        return mask

    # ------------------------------------------------------------------ steps

    def _birth(self, st: _State, t: int, grid: np.ndarray, depth, K, w2c, lift: bool) -> None:
        new = np.flatnonzero(st.born == t)
        if not len(new):
            return
        st.pos[new] = st.anchor_pos[new] = grid
        st.visible[new] = True
        st.tmpl_pos[new] = grid
        if depth is not None:
            z = nearest_depth(depth[t], grid)  # the query's depth, as the official code lifts it
            st.z[new], st.has_z[new] = z, z > 0
            if lift:
                st.world[new] = pixels_to_world(np.concatenate([grid, z[:, None]], 1), K[t], w2c[t])
                st.world[new[z <= 0]] = np.nan
                if st.surf is not None:
                    self._new_surfaces(st, new, t, depth, K, w2c)

    def _step(
        self, st: _State, images: ClipImages, vis: np.ndarray, t: int, depth, K, w2c, lift: bool, same_camera: bool
    ) -> None:
        """Advance the visible tracks ``vis`` from frame t - 1 to t."""
        cfg = self.cfg
        if same_camera and len(vis):
            vis = vis[self._changed(st, images, vis, t, depth)]
        elif lift and len(vis):
            vis = self._anchored(st, images, vis, t, depth, K, w2c)
        if not len(vis):
            return
        H, W = images.shape
        p_prev = st.pos[vis]
        p0 = p_prev + sample_points(images.flow(t - 1, t), p_prev)
        frames = np.full(len(vis), t - 1)
        patches = self._patches(images, frames, p_prev, self._surface_mask(st, vis, frames, p_prev, depth))
        p1, textured, residual = align(patches, images.smooth(t)[0], p0, cfg.lk_iters)
        p1 = np.where(textured[:, None], p1, p0)  # no texture: trust the dense flow
        z_fit = np.full(len(vis), np.nan)  # the depth of each fitted surface at its point (camera t), NaN unfitted
        if cfg.surface_align and st.surf is not None and len(vis):
            p1, z_fit = self._align_surfaces(st, vis, p1, t, depth, K, w2c)
        inside = in_image(p1, H, W)
        p1 = np.clip(p1, 0, [W - 1, H - 1])
        z_new = st.z[vis]
        with_z = st.has_z[vis] if depth is not None else np.zeros(len(vis), bool)
        ok = ~textured | (residual < cfg.residual_max)
        if (~with_z).any():  # without depth, forward-backward consistency and the patch residual decide
            back = p1 + sample_points(images.flow(t, t - 1), p1)
            ok &= with_z | (np.linalg.norm(back - p_prev, axis=1) < cfg.fb_max_px)
        if with_z.any():  # with depth, the point must stay on its surface: something in front is an occluder
            z_ref = world_to_pixels(st.world[vis], K[t], w2c[t])[:, 2] if lift else st.z[vis]  # camera t's depth
            z_ref = np.where(np.isfinite(z_ref), z_ref, st.z[vis])
            z_found, z_ok = consistent_depth(depth[t], p1, z_ref, cfg.depth_abs_tol, cfg.depth_rel_tol)
            snapped = self._snap(st, vis, p1, z_ref, z_found, z_ok, with_z & ~z_ok & ok & inside, depth[t])
            if cfg.surface_depth:  # the surface fit's depth is steadier than one pixel's (it cannot slip a surface)
                fitted = np.isfinite(z_fit) & z_ok
                fitted[snapped] = False
                z_found = np.where(fitted, z_fit, z_found)
            ok &= z_ok | ~with_z
            z_new = np.where(with_z, z_found, 0.0)
        ok &= inside
        good, lost = vis[ok], vis[~ok]
        st.moved[good] |= np.linalg.norm(p1[ok] - p_prev[ok], axis=1) > 0.25
        self._update(st, good, t, p1[ok], z_new[ok], K, w2c, lift)
        st.visible[lost] = False  # position: held (2D) or re-projected from the world point (3D)

    def _snap(
        self,
        st: _State,
        vis: np.ndarray,
        p1: np.ndarray,
        z_ref: np.ndarray,
        z_found: np.ndarray,
        z_ok: np.ndarray,
        off: np.ndarray,
        depth: np.ndarray,
    ) -> np.ndarray:
        """Steps of tracks ``vis`` that landed just across a depth edge (``off``) move back onto their surface
        (:func:`snap_to_surface`; ``p1``, ``z_found`` and ``z_ok`` are updated in place). An occluder sliding over a
        point would hold it at its edge frame after frame, so only ``snap_max_run`` steps in a row may snap.
        Returns the positions in ``vis`` that were snapped."""
        cfg = self.cfg
        if cfg.snap_radius <= 0:
            return np.zeros(0, np.int64)
        near = np.flatnonzero(off & (st.snaps[vis] < cfg.snap_max_run))
        p_snap, z_snap, hit = snap_to_surface(
            depth, p1[near], z_ref[near], cfg.snap_radius, cfg.depth_abs_tol, cfg.depth_rel_tol
        )
        near = near[hit]
        p1[near], z_found[near], z_ok[near] = p_snap[hit], z_snap[hit], True
        run = np.zeros(len(vis), np.int64)
        run[near] = st.snaps[vis[near]] + 1
        st.snaps[vis] = run
        return near

    def _new_surfaces(self, st: _State, idx: np.ndarray, t: int, depth, K, w2c) -> None:
        """Lift the surface around tracks ``idx`` from frame t's depth; its pose starts at the point, unrotated."""
        cfg = self.cfg
        idx = idx[st.has_z[idx] & np.isfinite(st.world[idx]).all(1)]
        if not len(idx):
            return
        off, mask = surface_patches(
            depth[t],
            K[t],
            invert_rigid(w2c[t]),
            st.pos[idx],
            st.z[idx],
            cfg.surface_radius,
            cfg.surface_stride,
            SURFACE_ABS_TOL,
            SURFACE_REL_TOL,
        )
        surf = st.surf
        surf.offsets[idx], surf.mask[idx] = off, mask
        surf.R[idx], surf.centre[idx], surf.ready[idx] = np.eye(3), st.world[idx], True

    def _align_surfaces(
        self, st: _State, vis: np.ndarray, p1: np.ndarray, t: int, depth, K, w2c
    ) -> tuple[np.ndarray, np.ndarray]:
        """The geometric step (:func:`align_surface`) of the tracks ``vis`` that have a surface: their pixels
        ``(P, 2)`` and the fitted surfaces' depths at them ``(P,)`` (NaN where nothing was fitted)."""
        cfg, surf = self.cfg, st.surf
        z_fit = np.full(len(vis), np.nan)
        sel = np.flatnonzero(surf.ready[vis])
        if not len(sel):
            return p1, z_fit
        ids = vis[sel]
        R, centre, p, ok = align_surface(
            depth[t],
            K[t],
            w2c[t],
            surf.offsets[ids],
            surf.mask[ids],
            surf.R[ids],
            surf.centre[ids],
            p1[sel],
            cfg.surface_prior,
            cfg.surface_rot_damping,
            cfg.surface_iters,
            SURFACE_ABS_TOL,
            SURFACE_REL_TOL,
        )
        surf.R[ids], surf.centre[ids] = R, centre
        out = p1.copy()
        out[sel] = p
        z_fit[sel[ok]] = world_to_pixels(centre[ok], K[t], w2c[t])[:, 2]
        return out, z_fit

    def _update(self, st: _State, idx: np.ndarray, t: int, p: np.ndarray, z: np.ndarray, K, w2c, lift: bool) -> None:
        """Tracks ``idx`` were found at ``p`` (depth ``z``) in frame t: it becomes their anchor and template."""
        st.pos[idx], st.z[idx] = p, z
        st.tmpl_frame[idx], st.tmpl_pos[idx] = t, p
        st.anchor[idx], st.anchor_pos[idx], st.change[idx] = t, p, 0.0
        if lift:
            self._lift(st, idx, t, K, w2c)

    def _anchored(self, st: _State, images: ClipImages, idx: np.ndarray, t: int, depth, K, w2c) -> np.ndarray:
        """Moving camera: a point whose anchor patch still matches where its world position projects now is static
        in the world (only the camera moved) and stays pinned there -- no frame-to-frame drift. Returns the points
        left for the frame-to-frame step."""
        cfg = self.cfg
        H, W = images.shape
        cand = idx[st.has_z[idx]]
        uvz = world_to_pixels(st.world[cand], K[t], w2c[t])
        p_pred, z_pred = uvz[:, :2], uvz[:, 2]
        inside = in_image(p_pred, H, W)
        p_pred = np.clip(p_pred, 0, [W - 1, H - 1])
        _, seen = consistent_depth(depth[t], p_pred, z_pred, cfg.depth_abs_tol, cfg.depth_rel_tol)
        keep = inside & seen & (z_pred > 0)
        cand, p_pred, z_pred = cand[keep], p_pred[keep], z_pred[keep]
        frames, p_anchor = st.anchor[cand], st.anchor_pos[cand]
        patches = self._patches(images, frames, p_anchor, self._mask(depth, frames, p_anchor))
        static = patches.residual(images.smooth(t)[0], p_pred) < cfg.static_residual
        ids = cand[static]
        st.pos[ids], st.z[ids] = p_pred[static], z_pred[static]  # the world point is unchanged
        st.tmpl_frame[ids], st.tmpl_pos[ids] = t, p_pred[static]
        return np.setdiff1d(idx, ids, assume_unique=True)

    def _changed(self, st: _State, images: ClipImages, idx: np.ndarray, t: int, depth) -> np.ndarray:
        """``(len(idx),)`` True where the point's 5 x 5 neighbourhood may have changed since its anchor frame.

        Each frame's change to the previous one (mean absolute grey-level difference over 5 x 5, and the largest
        depth change) is summed per point since its anchor: by the triangle inequality the sum bounds the change
        since the anchor, so a change is never missed, and one filtered image per frame serves every point."""
        import cv2

        size = (2 * STATIC_RADIUS + 1,) * 2
        c = np.rint(st.pos[idx]).astype(np.int64)
        r, k = c[:, 1], c[:, 0]
        grey = cv2.blur(cv2.absdiff(images.gray[t], images.gray[t - 1]).astype(np.float32), size)
        st.change[idx] += grey[r, k] / self.cfg.static_diff
        if depth is not None:
            dz = cv2.dilate(np.abs(depth[t] - depth[t - 1]), np.ones(size, np.uint8))
            st.change[idx] += dz[r, k] / (0.005 + 0.01 * st.z[idx])
        return st.change[idx] > 1.0

    def _lift(self, st: _State, idx: np.ndarray, t: int, K, w2c) -> None:
        with_z = idx[st.has_z[idx]]
        uvz = np.concatenate([st.pos[with_z], st.z[with_z, None]], 1)
        st.world[with_z] = pixels_to_world(uvz, K[t], w2c[t])

    def _predict_hidden(self, st: _State, hidden: np.ndarray, t: int, depth, K, w2c) -> None:
        """Hidden points with a world position are re-projected into frame t (held static in the world), then
        follow their surface's fit to the depth wherever :func:`align_surface` accepts it (at least 8 of its
        samples in view), with the re-projected position as the photometric prior: what the depth leaves free
        stays where the previous frame left it. A point is hidden when its own pixel fails, while much of its
        37 x 37 px surface is often still seen: a gripper finger behind the other one, a link half covered."""
        idx = hidden[st.has_z[hidden]]
        if not len(idx):
            return
        uvz = world_to_pixels(st.world[idx], K[t], w2c[t])
        st.pos[idx], st.z[idx] = uvz[:, :2], uvz[:, 2]
        if not self.cfg.hidden_surface or st.surf is None:
            return
        carry = idx[st.surf.ready[idx] & np.isfinite(uvz[:, :2]).all(1)]
        if not len(carry):
            return
        p, z_fit = self._align_surfaces(st, carry, st.pos[carry], t, depth, K, w2c)
        fitted = np.isfinite(z_fit)
        ids = carry[fitted]
        st.moved[ids] |= np.linalg.norm(p[fitted] - st.pos[ids], axis=1) > 0.25  # re-acquisition searches around it
        st.pos[ids], st.z[ids] = p[fitted], z_fit[fitted]
        st.world[ids] = st.surf.centre[ids]

    def _reacquire(
        self, st: _State, images: ClipImages, hidden: np.ndarray, t: int, depth, K, w2c, lift: bool, static_camera: bool
    ) -> None:
        """Hidden points whose last-seen patch is visible again near their predicted position become visible.

        First the patch is compared at the prediction itself (a held static point that reappears is exactly there);
        the others are searched for with a Lucas-Kanade refinement within ``REACQUIRE_RADIUS`` pixels."""
        cfg = self.cfg
        H, W = images.shape
        cand = hidden[in_image(st.pos[hidden], H, W)]
        if depth is not None and len(cand):  # only where the predicted surface is in view at the predicted depth
            _, seen = consistent_depth(depth[t], st.pos[cand], st.z[cand], cfg.depth_abs_tol, cfg.depth_rel_tol)
            cand = cand[seen | ~st.has_z[cand]]
        frames, p_tmpl = st.tmpl_frame[cand], st.tmpl_pos[cand]
        patches = self._patches(images, frames, p_tmpl, self._surface_mask(st, cand, frames, p_tmpl, depth))
        target = images.smooth(t)[0]
        pos = st.pos[cand].copy()
        ok = patches.residual(target, pos) < cfg.static_residual  # reappeared where predicted
        look = ~ok & (st.moved[cand] | (not static_camera))  # the others reappear in place
        if look.any() and t % (2 * cfg.reacquire_every) == 0:
            sel = np.flatnonzero(look)
            p_lk, textured, residual = align(patches.subset(sel), target, pos[sel], cfg.lk_iters)
            found = textured & (residual < cfg.residual_max)
            found &= (np.linalg.norm(p_lk - pos[sel], axis=1) < REACQUIRE_RADIUS) & in_image(p_lk, H, W)
            pos[sel], ok[sel] = np.clip(p_lk, 0, [W - 1, H - 1]), found
        z_new = st.z[cand]
        if depth is not None:
            z_found, z_ok = consistent_depth(depth[t], pos, st.z[cand], cfg.depth_abs_tol, cfg.depth_rel_tol)
            ok &= z_ok | ~st.has_z[cand]
            z_new = np.where(st.has_z[cand], z_found, 0.0)
        st.visible[cand[ok]] = True
        self._update(st, cand[ok], t, pos[ok], z_new[ok], K, w2c, lift)
        if st.surf is not None:  # it moved unseen: its surface is lifted again where it reappeared
            self._new_surfaces(st, cand[ok], t, depth, K, w2c)


class LKTracker(StatelessStage):
    """Plain pyramidal Lucas-Kanade, chained frame to frame (window 15, 3 levels): the baseline of PLATFORM.md §8.1.

    A point is visible while OpenCV's status says it was found; world points come from the depth at the tracked
    pixel. No occlusion handling, no depth checks.
    """

    name = "tracker"

    def __init__(self, cfg: TrackerConfig = TrackerConfig(), window: WindowConfig = WindowConfig()):
        self.cfg, self.window = cfg, window

    def process(self, clip: Clip) -> Clip:
        import cv2

        T, H, W = clip.num_frames, clip.height, clip.width
        gray = ClipImages(clip.rgb).gray
        queries = query_frames(T, self.window)
        grid = grid_points(H, W, self.window.grid)
        lengths = np.minimum(self.window.window, T - queries)
        Q, N, L = len(queries), len(grid), int(lengths.max())
        uv = np.full((Q, N, L, 2), np.nan)
        vis = np.zeros((Q, N, L), bool)
        lift = clip.depth is not None and clip.has_cameras
        world = np.full((Q, N, L, 3), np.nan) if lift else None
        for q, f in enumerate(queries):
            p = grid.astype(np.float32).reshape(-1, 1, 2)
            alive = np.ones(N, bool)
            for step in range(lengths[q]):
                if step:
                    p, status, _ = cv2.calcOpticalFlowPyrLK(
                        gray[f + step - 1], gray[f + step], p, None, winSize=(15, 15), maxLevel=3
                    )
                    alive &= status[:, 0] == 1
                uv[q, :, step] = p[:, 0]
                vis[q, :, step] = alive
                if lift:
                    z = nearest_depth(clip.depth[f + step], uv[q, :, step])
                    X = pixels_to_world(
                        np.concatenate([uv[q, :, step], z[:, None]], 1), clip.K[f + step], clip.w2c[f + step]
                    )
                    world[q, :, step] = np.where((z > 0)[:, None], X, np.nan)
        clip.tracks = Tracks(queries, uv, vis, lengths, world)
        return clip


def make_tracker(cfg: TrackerConfig, window: WindowConfig):
    """The tracker stage named by ``cfg.kind``."""
    if cfg.kind == "forge":
        return ForgeTracker(cfg, window)
    if cfg.kind == "lk":
        return LKTracker(cfg, window)
    from tracegen.forge.learned import LearnedTracker

    return LearnedTracker(cfg, window)
