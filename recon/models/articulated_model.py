"""The articulated model: a skinned canonical mesh with a neural colour field, posed per instant.

Why a mesh (LASR) and not volume rendering (BANMo): on a CPU, a rasterized mesh gives every
pixel of a frame a silhouette, colour and flow signal for the price of a few thousand
triangles, where volume rendering pays ~100 field queries and a backward warp per ray; a
60-frame clip then fits in minutes instead of GPU-hours. The colour stays a neural field
(our hash grid) over canonical space, so it survives remeshing and bakes to any texture size.

Canonical shape: a mesh (buffers ``verts``/``faces``) plus an offset field (a hash grid and a
small MLP). Skinning: ``recon.fields.skinning.GaussianBones`` (B bones, <= 4 influences).
Motion: the root pose (axis-angle, translation: canonical -> world) and B bone motions as
cosine series over the clip's time, so every frame's loss moves the whole trajectory and any
instant (a held-out frame) has a pose. A point x at instant t is posed as ``R_t LBS_t(x) + T_t``.

Start (``_initialise``): the floor among the scene's points (``articulated_init.ground_plane``;
its normal is the up), positions on the rays through the masks at the depth where their lowest
pixels meet the floor, else at the depth of the scene's SfM points (``root_translations``), a
visual hull carved with them, root rotations tracked from the optical flow (PnP on the hull,
turns about the up), the positions centred on the masks, the hull carved again, then each
instant slid along its camera's rays until the hull stands on the floor (``_rest_on_floor``)
and carved again. Schedule (training progress p): until ``rigid_until`` root poses, shape and
colour; then bones are placed by k-means in the hull, joined in a tree (``skeleton`` chain:
they turn about their joints), and bones, skin weights and offsets join (``recarve``: the hull
is also carved again on the way, at the end through the articulated warps). Losses: photo (L1,
over white outside the mask; it moves the surface too), silhouette (anti-aliased coverage vs
mask), outline (chamfer of the surface's rim against the mask's outline), optical flow
(rendered vs DIS), floor contact, root acceleration and tilt, bone-motion size and roughness,
offset size and Laplacian, and the warp cycle.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ..core.config import Config
from ..core.errors import InputError
from ..core.log import get_logger, log_event
from ..core.types import Capture
from ..fields.hash_grid import HashGridEncoding
from ..fields.mlp import MLP
from ..fields.skinning import GaussianBones, blend, bone_transforms, chain_transforms, cycle_error, rotation
from ..ops.rasterize import rasterize
from ..render.mesh_raster import edge_neighbours, screen_vertices, silhouette_antialias, UniformLaplacian
from .articulated_init import (carve, contact_depths, ground_plane, init_bones, instants_of, relative_motion,
                               root_translations, scene_depths, skeleton_parents, twist, world_up)
from .base import SubjectModel
from .frame_set import FrameSet
from .pixels import detect_mask_mode

log = get_logger(__name__)


class ArticulatedModel(SubjectModel):
    """See the module docstring. ``instants``: (K,) the training instants (source frame indices)."""

    kind = "articulated"

    def __init__(self, cfg: Config, instants: np.ndarray, mask_mode: str = "weight", bound: float = 1.0):
        super().__init__()
        ac = cfg.articulated
        self.cfg = cfg
        self.mask_mode = mask_mode
        K, B = len(instants), ac.bones
        self.register_buffer("instants", torch.as_tensor(np.asarray(instants), dtype=torch.int64))
        self.register_buffer("bound", torch.tensor(float(bound)))
        self.register_buffer("stage", torch.tensor(0))
        self.register_buffer("verts", torch.zeros(0, 3))
        self.register_buffer("faces", torch.zeros(0, 3, dtype=torch.int64))
        self.register_buffer("normalization", torch.eye(4, dtype=torch.float64))
        self.register_buffer("up", torch.tensor([0.0, 1.0, 0.0]))  # the world's up (normalised frame)
        self.register_buffer("ground", torch.full((4,), float("nan")))  # the floor [n, d] (NaN: none found)
        # the skeleton's tree (``skeleton_parents``), fixed when the bones are placed
        self.register_buffer("chain_order", torch.arange(B))
        self.register_buffer("chain_parents", torch.full((B,), -1))
        # poses over time: cosine-series coefficients (every frame's loss moves the whole trajectory,
        # and any instant in between has a pose); rows are frequencies 0 .. M-1
        t = np.asarray(instants, np.float64)
        self.register_buffer("time_span", torch.tensor([t[0], max(t[-1] - t[0], 1.0)], dtype=torch.float64))
        self.n_root = min(K, ac.root_frequencies)
        self.n_bone = min(K, ac.bone_frequencies)
        self.root_coef = nn.Parameter(torch.zeros(self.n_root, 6))  # axis-angle, translation
        self.bone_coef = nn.Parameter(torch.zeros(self.n_bone, B, 6))
        self.bones = GaussianBones(B, ac.influences)
        self.offset_grid = HashGridEncoding(ac.offset_grid)
        self.offset_mlp = MLP(self.offset_grid.out_dim, 32, 3, n_hidden=1)
        with torch.no_grad():
            self.offset_mlp.linears[-1].weight.zero_()
            self.offset_mlp.linears[-1].bias.zero_()
        self.color_grid = HashGridEncoding(ac.color_grid)
        self.color_mlp = MLP(self.color_grid.out_dim, 64, 3, n_hidden=1)
        self.frames: FrameSet | None = None
        self._points = None  # the capture's sparse scene points (depth of the subject among them)
        self._interior: Tensor | None = None  # the last hull's interior voxels (where bones are placed)
        self._topology: tuple | None = None

    # -- construction -------------------------------------------------------------------------------
    @classmethod
    def for_capture(cls, cfg: Config, cap: Capture, train_idx: np.ndarray) -> "ArticulatedModel":
        if cap.masks is None:
            raise InputError(None, "the articulated model needs subject masks (let a segmenter make them, "
                                   "or pass --masks)")
        inst = np.unique(instants_of(cap)[train_idx])
        need = cfg.articulated.min_frames
        if len(inst) < need:
            raise InputError(None, f"too short to fit a moving subject: {len(inst)} training instants, the "
                                   f"articulated model needs at least {need} (articulated.min_frames)")
        return cls(cfg, inst, detect_mask_mode(cap))

    @classmethod
    def from_info(cls, cfg: Config, info: dict) -> "ArticulatedModel":
        m = cls(cfg, np.asarray(info["instants"]), info.get("mask_mode", "weight"), float(info.get("bound", 1.0)))
        m.verts = torch.zeros(int(info["n_verts"]), 3)
        m.faces = torch.zeros(int(info["n_faces"]), 3, dtype=torch.int64)
        return m

    def checkpoint_info(self) -> dict:
        return {"n_frames": len(self.instants), "instants": self.instants.tolist(), "mask_mode": self.mask_mode,
                "bound": float(self.bound), "n_verts": len(self.verts), "n_faces": len(self.faces)}

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        # the canonical mesh changes size when it is carved again: take the checkpoint's
        self.verts = torch.zeros_like(state_dict["verts"])
        self.faces = torch.zeros_like(state_dict["faces"])
        self._topology = None
        return super().load_state_dict(state_dict, strict, assign)

    def attach(self, cap: Capture, train_idx: np.ndarray, fresh: bool) -> None:
        ac = self.cfg.articulated
        self.normalization.copy_(torch.as_tensor(cap.normalization, dtype=torch.float64))
        if fresh:
            up = world_up(cap)
            plane = ground_plane(cap.points, up, seed=self.cfg.seed) if ac.ground_weight > 0 else None
            if plane is not None:  # the floor's normal is the best up there is
                self.ground.copy_(torch.as_tensor(plane, dtype=torch.float32))
                up = plane[:3]
            self.up.copy_(torch.as_tensor(up, dtype=torch.float32))
            log_event("articulated_ground", found=plane is not None,
                      tilt_from_camera_up_deg=None if plane is None else
                      round(float(np.degrees(np.arccos(np.clip(plane[:3] @ world_up(cap), -1, 1)))), 1))
        inst = instants_of(cap)
        slot_of = {int(t): k for k, t in enumerate(self.instants.tolist())}
        slots = np.array([slot_of[int(inst[i])] for i in train_idx])
        self.frames = FrameSet(cap, train_idx, slots, inst, ac.train_size,
                               flow=ac.flow_weight > 0 or ac.track_rounds > 0)  # the tracker needs it too
        self._points = cap.points
        log_event("articulated_frames", frames=len(self.frames), size=list(self.frames.size),
                  flow_pairs=int((self.frames.next >= 0).sum()))
        if fresh:
            self._initialise()

    def _initialise(self) -> None:
        """Root translations from the masks' centroids, then the rigid visual hull around them."""
        fs, ac = self.frames, self.cfg.articulated
        masks = [(m.numpy() * 255).astype(np.uint8) for m in fs.mask]
        depths = scene_depths(fs.cams_np, masks, self._points)
        if self.has_ground:  # where the feet meet the floor, rather than the points around the subject
            feet = contact_depths(fs.cams_np, masks, self.ground.numpy().astype(np.float64))
            depths = np.where(np.isfinite(feet), feet, depths)
        T, radius = root_translations(fs.cams_np, masks, fs.slot, len(self.instants), depths=depths)
        self._set_translations(T)
        with torch.no_grad():
            self.bound.fill_(ac.box_margin * radius)
        self._carve(consensus=ac.carve_consensus, articulated=False)
        for _ in range(ac.track_rounds):  # root rotations from the flow, then positions from the silhouettes
            self._track_rotations()
            self._carve(consensus=ac.carve_consensus, articulated=False)
            self._centre_on_masks()
            self._carve(consensus=ac.carve_consensus, articulated=False)
        for _ in range(ac.floor_rounds if self.has_ground else 0):  # distances from the floor
            self._rest_on_floor()
            self._carve(consensus=ac.carve_consensus, articulated=False)
        log_event("articulated_init", radius=round(radius, 4), verts=len(self.verts), faces=len(self.faces))

    @torch.no_grad()
    def _set_translations(self, T: np.ndarray) -> None:
        """The cosine series of the root translation closest to per-instant positions T (K, 3)."""
        coef = torch.linalg.lstsq(self.basis(self.instants, self.n_root), torch.as_tensor(T, dtype=torch.float32))
        self.root_coef[:, 3:] = coef.solution

    @torch.no_grad()
    def _centre_on_masks(self) -> None:
        """Shift each instant's root across its camera's view so the hull's rendered silhouette is centred
        on the mask (the same body point in both, unlike the mask centroid alone), at unchanged depth;
        then the steadiest trajectory through those positions (``root_translations``' prior)."""
        fs = self.frames
        H, W = fs.size
        canon = self.canonical_vertices()
        K = len(self.instants)
        root, _ = self.trajectories(self.instants)
        T = root[:, 3:].numpy().astype(np.float64)
        shift, count = np.zeros((K, 3)), np.zeros(K)
        yy, xx = np.mgrid[:H, :W] + 0.5
        for n in range(len(fs)):
            k = int(fs.slot[n])
            alpha = self.render(fs.cams_np, n, self.pose(canon, self.pose_params(k)), canon, H, W)["alpha"].numpy()
            m = fs.mask[n].numpy()
            if alpha.sum() < 4 or m.sum() < 4:
                continue
            du = (m * xx).sum() / m.sum() - (alpha * xx).sum() / alpha.sum()
            dv = (m * yy).sum() / m.sum() - (alpha * yy).sum() / alpha.sum()
            c2w = fs.cams_np.c2w[n]
            depth = (T[k] - c2w[:3, 3]) @ c2w[:3, 2]
            shift[k] += c2w[:3, :3] @ np.array([du * depth / fs.cams_np.fx[n], dv * depth / fs.cams_np.fy[n], 0.0])
            count[k] += 1
        seen = count > 0
        T[seen] += shift[seen] / count[seen, None]
        self._set_steady_translations(T, seen)

    def _set_steady_translations(self, T: np.ndarray, seen: np.ndarray) -> None:
        """The steadiest trajectory close to positions T (K, 3) at the instants ``seen`` (K,) (least
        squares with ``root_translations``' acceleration prior), as the root's cosine series."""
        K = len(T)
        D2 = np.diff(np.eye(K), 2, axis=0)
        A = np.diag(seen.astype(np.float64)) + 1.0 * D2.T @ D2 + 1e-6 * np.eye(K)
        self._set_translations(np.linalg.solve(A, seen[:, None] * np.where(seen[:, None], T, 0.0)))

    @torch.no_grad()
    def _rest_on_floor(self) -> None:
        """Slide each instant's root along its camera's rays (scaling its distance from the camera) until
        the current surface's lowest point meets the floor: the silhouette is unchanged, and the next
        hull, carved at the new distances, scales with them. Instants seen by several frames take the mean."""
        fs = self.frames
        n, d = self.ground[:3].double().numpy(), float(self.ground[3])
        canon = self.canonical_vertices()
        K = len(self.instants)
        root, _ = self.trajectories(self.instants)
        T = root[:, 3:].numpy().astype(np.float64)
        ratio, count = np.zeros(K), np.zeros(K)
        for i in range(len(fs)):
            k = int(fs.slot[i])
            world = self.pose(canon, self.pose_params(k)).numpy().astype(np.float64)
            o = fs.cams_np.c2w[i, :3, 3]
            low = world[np.argmin(world @ n)]
            above, drop = o @ n + d, (o - low) @ n  # camera height; how far the lowest point is below it
            if above <= 0 or drop <= 1e-9:
                continue
            ratio[k] += above / drop  # o + s (low - o) lies on the floor
            count[k] += 1
        seen = count > 0
        if not seen.any():
            return
        for k in np.nonzero(seen)[0]:  # every instant scaled about (the mean of) its cameras
            o = fs.cams_np.c2w[fs.slot == k, :3, 3].mean(0)
            T[k] = o + ratio[k] / count[k] * (T[k] - o)
        self._set_steady_translations(T, seen)
        log_event("articulated_floor", scale_median=round(float(np.median(ratio[seen] / count[seen])), 3))

    @torch.no_grad()
    def _track_rotations(self) -> None:
        """Root rotations chained along the clip from each frame pair's rigid motion (``relative_motion``:
        the current surface's points and their DIS flow; only its turn about the world's up while the
        upright prior holds); the cosine series is fitted to them."""
        fs = self.frames
        H, W = fs.size
        canon = self.canonical_vertices()
        K = len(self.instants)
        rel: dict[int, tuple[int, np.ndarray]] = {}
        for n in np.nonzero(fs.next >= 0)[0]:
            m = int(fs.next[n])
            world = self.pose(canon, self.pose_params(int(fs.slot[n])))
            fid, bary, _ = rasterize(screen_vertices(world, fs.cams_np, n), self.faces, H, W)
            ok = fs.flow_ok[n] & (fid >= 0)
            ys, xs = torch.nonzero(ok, as_tuple=True)
            X = (bary[ok][..., None] * world[self.faces[fid[ok]]]).sum(1).numpy()
            px = np.stack([xs.numpy() + 0.5, ys.numpy() + 0.5], 1) + fs.flow[n][ok].numpy()
            M = relative_motion(X, px, fs.cams_np, m)
            if M is not None:
                turn = M[:3, :3] if self.cfg.articulated.upright_weight <= 0 else twist(M[:3, :3], self.up.numpy())
                rel[int(fs.slot[n])] = (int(fs.slot[m]), turn)
        R = [self.pose_params(0)[0].numpy().astype(np.float64)]
        for k in range(K - 1):  # chain along the clip; a pair without a motion keeps the rotation
            nxt = rel.get(k)
            R.append(nxt[1] @ R[-1] if nxt is not None and nxt[0] == k + 1 else R[-1])
        from scipy.spatial.transform import Rotation

        aa = torch.as_tensor(Rotation.from_matrix(np.stack(R)).as_rotvec(), dtype=torch.float32)
        sol = torch.linalg.lstsq(self.basis(self.instants, self.n_root), aa).solution
        self.root_coef[:, :3] = sol
        turn = np.degrees(np.linalg.norm(Rotation.from_matrix(np.stack(R) @ R[0].T).as_rotvec(), axis=1))
        log_event("articulated_track", pairs=len(rel), of=K - 1, max_turn_deg=round(float(turn.max()), 1))

    # -- geometry -----------------------------------------------------------------------------------
    def _set_mesh(self, verts: np.ndarray, faces: np.ndarray) -> None:
        self.verts = torch.as_tensor(np.asarray(verts), dtype=torch.float32)
        self.faces = torch.as_tensor(np.asarray(faces), dtype=torch.int64)
        self._topology = None

    def topology(self) -> tuple[Tensor, Tensor]:
        """(F, 3) face neighbours and the uniform Laplacian of the canonical mesh (cached)."""
        if self._topology is None:
            f = self.faces.numpy()
            self._topology = (torch.as_tensor(edge_neighbours(f)), UniformLaplacian(f, len(self.verts)))
        return self._topology

    def offsets(self, x: Tensor) -> Tensor:
        """(N, 3) offset field at canonical points x (N, 3) (a hash grid: local, and it survives remeshing;
        at most 0.3 of the box half side)."""
        return 0.3 * self.bound * torch.tanh(self.offset_mlp(self.offset_grid(self._unit(x))))

    def _unit(self, x: Tensor) -> Tensor:
        """Canonical box [-bound, bound]^3 -> [0, 1]^3 (hash-grid coordinates)."""
        return (x / (2 * self.bound) + 0.5).clamp(0, 1)

    def canonical_vertices(self) -> Tensor:
        return self.verts + self.offsets(self.verts)

    def basis(self, instants, n: int) -> Tensor:
        """(T, n) cosine basis ``cos(pi m u)`` at instants (T,), u their time in [0, 1] over the clip."""
        u = (torch.as_tensor(instants, dtype=torch.float64).reshape(-1) - self.time_span[0]) / self.time_span[1]
        m = torch.arange(n, dtype=torch.float64)
        return torch.cos(math.pi * u.clamp(0, 1)[:, None] * m[None]).float()

    def trajectories(self, instants) -> tuple[Tensor, Tensor]:
        """Root (T, 6) and bone (T, B, 6) pose vectors (axis-angle, translation) at instants (T,)."""
        root = self.basis(instants, self.n_root) @ self.root_coef
        bone = torch.einsum("tm,mbc->tbc", self.basis(instants, self.n_bone), self.bone_coef)
        return root, bone

    def params_at(self, instant: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Root rotation (3, 3), root translation (3,), bone axis-angles (B, 3) and translations (B, 3) at
        any instant (between training instants the trajectories are continuous)."""
        root, bone = self.trajectories([instant])
        return rotation(root[0, :3]), root[0, 3:], bone[0, :, :3], bone[0, :, 3:]

    def pose_params(self, slot: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``params_at`` of training instant slot ``slot``."""
        return self.params_at(int(self.instants[slot]))

    @property
    def has_ground(self) -> bool:
        """Whether a floor was found under the subject (``articulated_init.ground_plane``)."""
        return bool(torch.isfinite(self.ground).all())

    @property
    def articulated(self) -> bool:
        """Whether the bones move yet (stage 2 on)."""
        return int(self.stage) >= 2

    def bone_motion(self, rot: Tensor, trans: Tensor) -> tuple[Tensor, Tensor]:
        """The bones' rigid motions (R (B, 3, 3), t (B, 3)) from their pose vectors (B, 3) + (B, 3):
        a kinematic chain over the skeleton's tree (``articulated.skeleton`` chain: turns about the
        joints, ``trans`` unused; the first bone does not turn, so the bones cannot take over the
        root's turning) or free bones (each turns about its centre and shifts)."""
        if self.cfg.articulated.skeleton == "chain":  # the tree's first bone moves with the root pose alone
            still = (self.chain_parents < 0).float()[torch.argsort(self.chain_order)]
            return chain_transforms(rot * (1 - still)[:, None], self.bones.centers, self.chain_order,
                                    self.chain_parents)
        return bone_transforms(rot, trans, self.bones.centers)

    def pose(self, x: Tensor, params: tuple[Tensor, Tensor, Tensor, Tensor], weights: Tensor | None = None) -> Tensor:
        """Canonical points x (N, 3) -> world (N, 3) under pose ``params`` (``pose_params``); ``weights``:
        x's skin weights (N, B) when the caller has them (they do not depend on the pose)."""
        Rr, Tr, br, bt = params
        if self.articulated:
            x = blend(x, self.bones.weights(x) if weights is None else weights, *self.bone_motion(br, bt))
        return x @ Rr.T + Tr

    # -- rendering ----------------------------------------------------------------------------------
    def render(self, cams, n: int, world: Tensor, canon: Tensor, H: int, W: int) -> dict[str, Tensor]:
        """Render posed vertices ``world`` (V, 3) into camera n of ``cams`` (numpy Cameras): rgb (H, W, 3)
        over white, alpha (H, W) anti-aliased coverage, and the raster (fid, bary, screen)."""
        neighbours, _ = self.topology()
        screen = screen_vertices(world, cams, n)
        fid, bary, depth = rasterize(screen, self.faces, H, W)
        hit = fid >= 0
        f = fid[hit]
        x = (bary[hit][..., None] * canon[self.faces[f]]).sum(1)
        img = torch.cat([torch.ones(H, W, 3), torch.zeros(H, W, 1)], -1)
        img = img.index_put(torch.nonzero(hit, as_tuple=True), torch.cat([self.color(x), torch.ones(len(x), 1)], -1))
        img = silhouette_antialias(img, fid, depth, screen, self.faces, neighbours)
        return {"rgb": img[..., :3], "alpha": img[..., 3], "fid": fid, "bary": bary, "screen": screen}

    def color(self, x: Tensor) -> Tensor:
        """(N, 3) sRGB colour at canonical points x (N, 3); in training also differentiated in x
        (``articulated.photo_geometry``), so the photos move the surface too, not only the colour."""
        grad_x = self.training and self.cfg.articulated.photo_geometry
        return torch.sigmoid(self.color_mlp(self.color_grid(self._unit(x), grad_x=grad_x)))

    # -- training -----------------------------------------------------------------------------------
    @property
    def batch_size(self) -> int:
        h, w = self.frames.size if self.frames is not None else (0, 0)
        return self.cfg.articulated.frames_per_step * h * w

    def param_groups(self) -> list[dict]:
        fc, ac = self.cfg.fit, self.cfg.articulated
        return [{"params": [self.color_grid.table], "lr": fc.lr_grid, "name": "grid", "weight_decay": 0.0},
                {"params": [self.offset_grid.table], "lr": ac.lr_offset_grid, "name": "offset_grid",
                 "weight_decay": 0.0},
                {"params": list(self.color_mlp.parameters()), "lr": fc.lr_mlp, "name": "mlp", "weight_decay": 0.0},
                {"params": [self.root_coef], "lr": ac.lr_root, "name": "root", "weight_decay": 0.0},
                {"params": [self.bone_coef], "lr": ac.lr_bones, "name": "bones", "weight_decay": 0.0},
                {"params": list(self.bones.parameters()) + list(self.offset_mlp.parameters()), "lr": ac.lr_shape,
                 "name": "shape", "weight_decay": 0.0}]

    def _advance_stage(self, progress: float) -> None:
        """Stages: 0 rigid on the first hull; 1 rigid on a hull carved with the fitted root poses; 2 bones
        placed in a hull carved again, articulated; 3 articulated on the posed visual hull."""
        ac = self.cfg.articulated
        stage = int(self.stage)
        if stage == 0 and progress >= ac.rigid_until / 2:
            if ac.recarve:
                self._carve(consensus=ac.carve_consensus, articulated=False)
            self._enter(1)
        elif stage == 1 and progress >= ac.rigid_until:
            self._carve(consensus=ac.carve_consensus, articulated=False, replace_mesh=ac.recarve)
            inside = self._interior if self._interior is not None else self.verts  # no hull carved: its surface
            centers, extents = init_bones(inside.numpy(), ac.bones, seed=self.cfg.seed)
            with torch.no_grad():
                B = len(centers)
                self.bones.centers[:B] = torch.as_tensor(centers, dtype=torch.float32)
                self.bones.log_extent[:B] = torch.as_tensor(np.log(extents), dtype=torch.float32)
                order, parents = skeleton_parents(self.bones.centers.numpy())
                self.chain_order.copy_(torch.as_tensor(order))
                self.chain_parents.copy_(torch.as_tensor(parents))
            self._enter(2)
        elif stage == 2 and progress >= ac.recarve_at:
            if ac.recarve:
                self._carve(consensus=ac.carve_consensus, articulated=True)
            self._enter(3)

    def _enter(self, stage: int) -> None:
        self.stage.fill_(stage)
        log_event("articulated_stage", stage=stage, verts=len(self.verts), faces=len(self.faces))

    @torch.no_grad()
    def _carve(self, consensus: float, articulated: bool, replace_mesh: bool = True) -> None:
        """Carve the canonical hull with the current poses (and warps); the offsets restart from it
        (``replace_mesh`` False: only its interior voxels are kept, for placing bones)."""
        fs, ac = self.frames, self.cfg.articulated

        def pose_fn(x: Tensor, n: int) -> Tensor:
            params = self.pose_params(int(fs.slot[n]))
            if not articulated:
                return x @ params[0].T + params[1]
            return torch.cat([self.pose(x[c:c + 65536], params) for c in range(0, len(x), 65536)])

        masks = [(m.numpy() * 255).astype(np.uint8) for m in fs.mask]
        try:
            mesh, interior = carve(pose_fn, fs.cams, masks, float(self.bound), ac.carve_resolution, consensus)
        except ValueError as exc:
            if len(self.verts) == 0:  # nothing to fall back on
                raise InputError(None, f"{exc} (the masks and cameras do not agree on a subject)") from None
            log.warning("the hull was not carved again (%s): the current shape is kept", exc)
            return
        self._interior = interior
        if not replace_mesh:
            return
        if articulated:  # the new surface already includes what the offsets moved
            self.offset_mlp.linears[-1].weight.zero_()
            self.offset_mlp.linears[-1].bias.zero_()
        self._set_mesh(mesh.vertices, mesh.faces)

    def train_losses(self, iteration: int, progress: float,
                     generator: torch.Generator) -> tuple[dict[str, Tensor], dict[str, float]]:
        ac = self.cfg.articulated
        self._advance_stage(progress)
        fs = self.frames
        H, W = fs.size
        picks = torch.randint(len(fs), (ac.frames_per_step,), generator=generator).tolist()
        canon = self.canonical_vertices()
        skin = self.bones.weights(canon) if self.articulated else None  # one set for every frame posed
        photo = sil = flow = ground = outline = 0.0
        se = []
        for n in picks:
            params = self.pose_params(int(fs.slot[n]))
            world = self.pose(canon, params, skin)
            out = self.render(fs.cams_np, n, world, canon, H, W)
            err = out["rgb"] - fs.photo[n]
            photo = photo + err.abs().mean()
            sil = sil + (out["alpha"] - fs.mask[n]).pow(2).mean()
            se.append(err.detach().pow(2).mean())
            m = int(fs.next[n])
            if ac.flow_weight > 0 and m >= 0 and fs.flow[n] is not None:
                flow = flow + self._flow_loss(out, canon, skin, n, m)
            if ac.outline_weight > 0:
                outline = outline + self._outline_loss(out["screen"], n)
            if ac.ground_weight > 0 and self.has_ground:
                ground = ground + self._ground_loss(world)
        k = len(picks)
        terms = {"photo": ac.photo_weight * photo / k, "silhouette": ac.silhouette_weight * sil / k}
        if torch.is_tensor(flow):
            terms["flow"] = ac.flow_weight * flow / k
        if torch.is_tensor(outline):
            terms["outline"] = ac.outline_weight * outline / k
        if torch.is_tensor(ground):
            terms["ground"] = ac.ground_weight * ground / k
        terms.update(self._regularisers(canon, generator))
        mse = float(torch.stack(se).mean())
        return terms, {"psnr": -10 * math.log10(max(mse, 1e-10)), "stage": float(self.stage)}

    def _flow_loss(self, out: dict, canon: Tensor, skin: Tensor | None, n: int, m: int) -> Tensor:
        """Mean |rendered flow - DIS flow| (in pixels / image side) where the observed flow is trusted
        (``out``: frame n's render; ``skin``: the canonical vertices' weights, None before the bones move)."""
        fs = self.frames
        world_m = self.pose(canon, self.pose_params(int(fs.slot[m])), skin)
        moved = screen_vertices(world_m, fs.cams_np, m)[:, :2] - out["screen"][:, :2]  # (V, 2)
        ok = fs.flow_ok[n] & (out["fid"] >= 0)
        if not bool(ok.any()):
            return torch.zeros(())
        f = out["fid"][ok]
        pred = (out["bary"][ok][..., None] * moved[self.faces[f]]).sum(1)
        return (pred - fs.flow[n][ok]).abs().sum(-1).mean() / max(fs.size)

    def _outline_loss(self, screen: Tensor, n: int) -> Tensor:
        """Chamfer, in image sides, between the surface's rim (vertices where it turns from facing the camera
        to facing away, projected; ``screen`` (V, 3)) and the mask's outline: every outline point pulls
        its nearest rim vertex, every rim vertex outside the mask is pulled in. Unlike the silhouette's
        one-pixel edge, it reaches parts the surface lacks (a leg carved away) from afar."""
        fs = self.frames
        s, f = screen[:, :2], self.faces
        e1, e2 = s[f[:, 1]] - s[f[:, 0]], s[f[:, 2]] - s[f[:, 0]]
        front = ((e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]) > 0).detach().float().repeat_interleave(3)
        facing = torch.zeros(len(s)).index_add_(0, f.reshape(-1), front)
        touching = torch.zeros(len(s)).index_add_(0, f.reshape(-1), torch.ones_like(front))
        rim = s[(facing > 0) & (facing < touching)]
        target = fs.outline[n]
        if len(rim) == 0 or len(target) == 0:
            return torch.zeros(())
        H, W = fs.size
        reach = torch.cdist(target, rim).min(1).values.mean()
        grid = torch.stack([rim[:, 0] / W * 2 - 1, rim[:, 1] / H * 2 - 1], -1)[None, None]
        out = torch.nn.functional.grid_sample(fs.outside[n][None, None], grid, align_corners=False,
                                              padding_mode="border")
        return (reach + out.mean()) / max(H, W)

    def _ground_loss(self, world: Tensor) -> Tensor:
        """The posed surface (V, 3) stands on the floor: its lowest point (a soft minimum) at height 0 and
        no vertex below it, in subject box units squared."""
        h = (world @ self.ground[:3] + self.ground[3]) / self.bound
        lowest = -0.01 * torch.logsumexp(-h / 0.01, 0)
        return lowest.pow(2) + torch.relu(-h).pow(2).mean()

    def _regularisers(self, canon: Tensor, generator: torch.Generator) -> dict[str, Tensor]:
        ac = self.cfg.articulated
        b = self.bound
        terms = {}
        # the root moves steadily: its acceleration costs (the same prior that placed it, ``root_translations``;
        # with one camera it is what pins the subject's depth, and with it its size)
        root, motion = self.trajectories(self.instants)  # every training instant's poses, once per step
        acc = root[2:] - 2 * root[1:-1] + root[:-2]
        terms["root_acceleration"] = ac.acceleration_weight * (acc[:, :3].pow(2).sum() + acc[:, 3:].pow(2).sum() / b ** 2)
        # it stays upright: the canonical up (the world's, as first carved) keeps pointing up
        tilt = 1.0 - rotation(root[:, :3]) @ self.up @ self.up
        terms["upright"] = ac.upright_weight * tilt.mean()
        off = (canon - self.verts) / b
        _, lap = self.topology()
        terms["offset"] = ac.offset_weight * off.pow(2).sum(-1).mean() + \
            ac.laplacian_weight * lap(off).pow(2).sum(-1).mean()
        if self.articulated:
            fr = torch.arange(self.n_bone, dtype=torch.float32) / max(self.n_bone - 1, 1)  # high frequencies cost
            bone = self.bone_coef * torch.tensor([1.0, 1.0, 1.0, 1 / b, 1 / b, 1 / b])
            terms["smooth_bones"] = ac.smooth_weight * (fr[:, None, None] ** 2 * bone.pow(2)).sum((0, 2)).mean()
            scaled = motion * torch.tensor([1.0, 1.0, 1.0, 1 / b, 1 / b, 1 / b])
            terms["bone_motion"] = ac.bone_motion_weight * scaled.pow(2).sum(-1).mean()
            k = int(torch.randint(len(self.instants), (1,), generator=generator))
            pts = canon.detach()[torch.randint(len(canon), (min(512, len(canon)),), generator=generator)]
            R, t = self.bone_motion(motion[k, :, :3], motion[k, :, 3:])
            terms["cycle"] = ac.cycle_weight * cycle_error(self.bones, pts, R, t).mean() / b ** 2
        return terms

    # -- evaluation ---------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, cap: Capture, indices: np.ndarray, save_dir: Path | None = None, n_save: int = 3) -> dict:
        """Each frame posed at its instant (held-out instants from their neighbours) and rendered at the
        capture's size: silhouette IoU against the mask, PSNR over white (full frame for synthetic
        captures, inside the mask for real photos)."""
        from ..eval.metrics import mask_iou, psnr, ssim

        inst = instants_of(cap)
        canon = self.canonical_vertices()
        composite = self.mask_mode == "composite"
        region = "full frame over white" if composite else "inside the masks"
        views = []
        for j, i in enumerate(indices):
            H, W = cap.images[i].shape[:2]
            world = self.pose(canon, self.params_at(int(inst[i])))
            out = self.render(cap.cameras[[i]], 0, world, canon, H, W)
            pred = out["rgb"].clamp(0, 1).numpy()
            m = cap.masks[i].astype(np.float32)[..., None] / 255
            gt = cap.images[i].astype(np.float32) / 255 * m + (1 - m)
            inside = cap.masks[i] > 127
            rec = {"frame": cap.frames[i].name, "instant": int(inst[i]),
                   "mask_iou": mask_iou(out["alpha"].numpy() > 0.5, inside)}
            rec["psnr"] = psnr(pred, gt) if composite else psnr(pred, gt, inside)
            rec["ssim"] = ssim(pred, gt)
            views.append(rec)
            if save_dir is not None and j < n_save:
                from ..core.imageio import write_image

                write_image(Path(save_dir) / f"{cap.frames[i].name}.png", np.concatenate([pred, gt], axis=1))
        mean = lambda k: float(np.mean([v[k] for v in views])) if views else float("nan")  # noqa: E731
        trained = set(self.instants.tolist())
        held = sum(v["instant"] not in trained for v in views)
        return {"n_views": len(views), "psnr": mean("psnr"), "ssim": mean("ssim"), "mask_iou": mean("mask_iou"),
                "region": region, "poses": f"{len(views) - held} at trained instants, {held} interpolated from "
                                            "the neighbouring instants", "views": views}

    def log_record(self) -> dict:
        return {"stage": int(self.stage), "verts": len(self.verts)}

    def describe(self) -> dict:
        return {"model": "skinned mesh (rasterized) + hash-grid colour", "bones": self.bones.n_bones,
                "instants": len(self.instants), "mask_mode": self.mask_mode, "motion": self.motion()}

    @torch.no_grad()
    def motion(self) -> dict:
        """How much the fitted subject moves over the clip: root travel (in subject radii), root turn and
        the bones' largest turn (degrees, 95th percentile over instants); ``moves`` is False when all
        stay below 5% of a radius and 3 degrees (a subject that holds still)."""
        root, bone = self.trajectories(self.instants)
        radius = float(self.bound) / self.cfg.articulated.box_margin
        travel = float((root[:, 3:] - root[:1, 3:]).norm(dim=-1).max()) / radius
        R0 = rotation(root[0, :3])
        rel = rotation(root[:, :3]) @ R0.T
        turn = float(torch.rad2deg(torch.acos(((rel.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2).clamp(-1, 1))).max())
        bones = float(torch.quantile(torch.rad2deg(bone[..., :3].norm(dim=-1)).max(-1).values, 0.95)) \
            if self.articulated else 0.0
        return {"root_travel_radii": round(travel, 4), "root_turn_deg": round(turn, 2),
                "bone_turn_deg_p95": round(bones, 2), "moves": travel > 0.05 or turn > 3 or bones > 3}

    # -- what the bake asks ------------------------------------------------------------------------
    @torch.no_grad()
    def skeleton(self) -> dict:
        """The fitted rig in the normalised world at every training instant (numpy):

        order/parents: joint tree (joint 0 is the root, whose global is the root pose; joints 1..B are
        the bones in ``order`` with ``parents`` into the joint list); bind (J, 4, 4): rest globals (the
        root pose of the first instant, bones at their centres); pose (K, J, 4, 4): per-instant globals.
        """
        B = self.bones.n_bones
        order, parents = self.chain_order.numpy(), self.chain_parents.numpy()
        first = self._root_matrix(0)
        J = B + 1
        bind = np.tile(np.eye(4), (J, 1, 1))
        bind[0] = first
        for j, b in enumerate(order, start=1):
            local = np.eye(4)
            local[:3, 3] = self.bones.centers[b].numpy()
            bind[j] = first @ local
        pose = np.tile(np.eye(4), (len(self.instants), J, 1, 1))
        for k in range(len(self.instants)):
            root = self._root_matrix(k)
            pose[k, 0] = root
            _, _, br, bt = self.pose_params(k)
            R, t = self.bone_motion(br, bt)
            for j, b in enumerate(order, start=1):
                M = np.eye(4)
                M[:3, :3] = R[b].numpy()
                M[:3, 3] = t[b].numpy()
                local = np.eye(4)
                local[:3, 3] = self.bones.centers[b].numpy()
                pose[k, j] = root @ M @ local
        return {"order": order, "parents": np.concatenate([[-1], np.where(parents < 0, 0, parents + 1)]),
                "bind": bind, "pose": pose, "instants": self.instants.numpy(),
                "names": ["root"] + [f"bone_{j:02d}" for j in range(B)]}

    def _root_matrix(self, k: int) -> np.ndarray:
        R, T, _, _ = self.pose_params(k)
        M = np.eye(4)
        M[:3, :3] = R.numpy()
        M[:3, 3] = T.numpy()
        return M

    @torch.no_grad()
    def rest_mesh(self):
        """The canonical surface placed at the first instant's root pose (normalised world), a trimesh."""
        import trimesh

        canon = self.canonical_vertices()
        R, T, _, _ = self.pose_params(0)
        world = canon @ R.T + T
        return trimesh.Trimesh(world.numpy(), self.faces.numpy(), process=False)

    @torch.no_grad()
    def rest_to_canonical(self, x: Tensor) -> Tensor:
        """Rest-mesh points (normalised world, (N, 3)) -> canonical space."""
        R, T, _, _ = self.pose_params(0)
        return (x - T) @ R

    def sdf(self, x: Tensor) -> Tensor:
        """Zero: the bake is handed the rest mesh itself (``rest_mesh``) and only asks for the colour of
        points on it, which lie on the surface (the baker's ``SurfaceField`` protocol)."""
        return torch.zeros(len(x))

    @torch.no_grad()
    def albedo(self, x: Tensor) -> Tensor:
        """(N, 3) colour at rest-mesh points (normalised world)."""
        return self.color(self.rest_to_canonical(x))

    @torch.no_grad()
    def skin(self, x: Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Joint indices (N, k) into ``skeleton()``'s joints and weights (N, k) at rest-mesh points."""
        order = self.chain_order.numpy()
        joint_of_bone = np.empty(len(order), np.int64)
        joint_of_bone[order] = np.arange(1, len(order) + 1)
        idx, w = self.bones.weights(self.rest_to_canonical(x), dense=False)
        return joint_of_bone[idx.numpy()], w.numpy()
