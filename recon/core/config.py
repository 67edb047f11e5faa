"""Validated configuration: pydantic models, YAML presets, ``--set a.b=c`` overrides.

Each field's docstring (``description``) is its help text. Presets live in
``configs/<name>.yaml`` (the package folder ``recon/configs``); a preset may
name a ``base:`` preset it extends.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import ConfigError

PRESET_DIR = Path(__file__).resolve().parents[1] / "configs"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SfMConfig(_Section):
    matcher: Literal["auto", "sequential", "exhaustive"] = Field(
        "auto", description="Feature matching: sequential for video, exhaustive for small image sets (auto picks).")
    max_image_size: int = Field(1024, ge=64, description="Longest image side fed to SIFT.")
    max_features: int = Field(4096, ge=128, description="SIFT features per image.")
    min_registered_fraction: float = Field(
        0.5, gt=0, le=1, description="Fail if fewer than this fraction of frames register.")
    min_registered: int = Field(3, ge=2, description="Fail if fewer than this many frames register.")
    overlap: int = Field(10, ge=1, description="Sequential matching: neighbours matched per frame.")


class CaptureConfig(_Section):
    max_frames: int = Field(100, ge=1, description="Frames kept from a video (evenly spread, sharpest picked).")
    blur_drop: float = Field(
        0.25, ge=0, lt=1, description="Fraction of the blurriest video frames dropped (variance of Laplacian).")
    dedup_threshold: float = Field(
        0.02, ge=0, description="Drop a video frame whose mean abs difference to the last kept one is below this.")
    max_size: int | None = Field(None, ge=16, description="Downscale images so the longest side is at most this.")
    test_every: int = Field(10, ge=0, description="Hold out every k-th frame as test when the source has no split (0: none).")
    masks: Literal["auto", "none"] = Field("auto", description="Use masks from the source (alpha, mask files).")
    segmenter: Literal["auto", "none", "static", "motion", "folder", "prompt", "onnx", "people"] = Field(
        "auto", description="Subject masks (recon.capture.segment): auto (default: the source's own masks; without "
                            "any, motion when the subject moves against the background, else static, and the run "
                            "says why), none (no masks), static (a still subject: what the cameras converge on), "
                            "motion (flow that the background's motion does not explain), folder (your masks: "
                            "capture.masks_path), prompt (capture.subject_box in frame capture.prompt_frame, "
                            "GrabCut + optical flow), onnx (an ONNX segmentation model: capture.onnx_model), "
                            "people (MediaPipe, extra recon[humans]: capture.people_mode).")
    masks_path: str | None = Field(None, description="segmenter folder: a folder of masks named like the frames, "
                                                     "or a mask video.")
    subject_box: tuple[float, float, float, float] | None = Field(
        None, description="segmenter prompt: the subject's box x0,y0,x1,y1 in pixels of the prompt frame.")
    subject_points: list[tuple[float, float, int]] = Field(
        default_factory=list, description="segmenter prompt: clicks (x, y, label) in pixels of the prompt frame, "
                                          "label 1 = subject, 0 = background (a part GrabCut missed or took).")
    prompt_frame: int = Field(0, ge=0, description="segmenter prompt: the frame the box is drawn in.")
    onnx_model: str | None = Field(None, description="segmenter onnx: path of the ONNX segmentation model "
                                                     "(NCHW float input; subject = probability > threshold or class != 0).")
    onnx_threshold: float = Field(0.5, gt=0, lt=1, description="segmenter onnx: probability threshold.")
    onnx_mean: tuple[float, float, float] | None = Field(None, description="segmenter onnx: input mean per channel ([0, 1] scale).")
    onnx_std: tuple[float, float, float] | None = Field(None, description="segmenter onnx: input std per channel ([0, 1] scale).")
    people_mode: Literal["selfie", "pose"] = Field("selfie", description="segmenter people: MediaPipe selfie "
                                                                        "segmentation or pose segmentation.")
    sfm_region: Literal["auto", "all", "subject", "background"] = Field(
        "auto", description="Where SfM looks for features when the capture has masks: auto (all; for a moving "
                            "subject, the subject alone (object-centric cameras), else the background alone "
                            "(scene cameras) when the subject does not register, or registers but does "
                            "not hold still in its own cameras: see rigid_hull_iou).")
    rigid_hull_iou: float = Field(
        0.85, ge=0, le=1, description="sfm_region auto, a moving subject that registers on its own: its cameras are "
                                      "kept when one visual hull explains its masks in them this well (mean "
                                      "silhouette IoU; a car on a turntable 0.89, a walking cat 0.79); below, it "
                                      "bends, and the background's cameras are taken. Checked where the caller "
                                      "supplies the hull (recon fit, recon capture).")
    up: Literal["auto", "x", "y", "z", "-x", "-y", "-z"] = Field(
        "auto", description="The subject's up axis in the source's world (auto: the source's convention, "
                            "else estimated from the cameras); assets are written with it along +Y.")
    sfm: SfMConfig = Field(default_factory=SfMConfig)


class HashGridConfig(_Section):
    n_levels: int = Field(16, ge=1, le=32, description="Hash-grid levels L.")
    n_features: int = Field(2, ge=1, le=8, description="Features per level F.")
    log2_hashmap_size: int = Field(19, ge=8, le=24, description="log2 of the table rows per level T.")
    base_resolution: int = Field(16, ge=2, description="Coarsest level resolution (cells per axis).")
    max_resolution: int = Field(2048, ge=2, description="Finest level resolution; growth follows from L.")


class FieldConfig(_Section):
    """The neural field: a density NeRF or a NeuS-style SDF, both on a hash grid."""

    kind: Literal["density", "sdf"] = Field("density", description="density (NeRF) or sdf (NeuS).")
    grid: HashGridConfig = Field(default_factory=HashGridConfig)
    hidden_dim: int = Field(64, ge=8, description="Hidden width of the geometry MLP.")
    geo_feat_dim: int = Field(15, ge=0, description="Geometric features passed from geometry to colour MLP.")
    color_hidden_dim: int = Field(64, ge=8, description="Hidden width of the colour MLP.")
    color_layers: int = Field(1, ge=1, le=4, description="Hidden layers of the colour MLP.")
    sh_degree: int = Field(4, ge=1, le=4, description="Spherical-harmonics degree of the view-direction encoding.")
    appearance_dim: int = Field(0, ge=0, description="Per-frame appearance code size (0: off); for exposure changes.")
    sdf_init_radius: float = Field(0.5, gt=0, description="SDF: radius of the initial sphere (geometric init).")
    init_variance: float = Field(0.3, description="SDF: initial log inverse-variance / 10 (inv_s = exp(10*v)).")
    fd_step: float = Field(0.0, ge=0, description="SDF: finite-difference step (0: the finest active level's cell).")
    coarse_to_fine_start: int = Field(4, ge=1, description="SDF: hash levels active at the start (Neuralangelo).")
    coarse_to_fine: float = Field(
        0.3, ge=0, le=1, description="SDF: fraction of training after which all levels are active (0: all from the start).")


class RenderConfig(_Section):
    bound: float = Field(1.0, gt=0, description="Half side of the cube [-b,b]^3 the field lives in.")
    grid_resolution: int = Field(128, ge=8, le=512, description="Occupancy grid cells per axis.")
    samples_per_ray: int = Field(256, ge=8, description="Marching steps across the cube's diagonal (step = 2*sqrt(3)*b/N).")
    occ_threshold: float = Field(0.01, ge=0, description="Occupancy: a cell is kept when its EMA density*step alpha exceeds this.")
    occ_ema: float = Field(0.95, gt=0, lt=1, description="Occupancy: EMA decay of the cell values.")
    occ_update_every: int = Field(16, ge=1, description="Occupancy: update the grid every N iterations.")
    occ_warmup: int = Field(
        256, ge=0, description="Occupancy: iterations (at most 10% of the training) before cells are pruned.")
    visual_hull: bool = Field(True, description="Initialise the occupancy grid from the masks' visual hull when masks exist.")
    background: Literal["auto", "white", "black", "random"] = Field(
        "auto", description="Training background behind the subject (auto: random for masked synthetic data).")
    eval_background: Literal["white", "black"] = Field("white", description="Background for evaluation renders.")
    chunk_rays: int = Field(8192, ge=64, description="Rays per chunk when rendering whole images.")


class BackgroundConfig(_Section):
    """The background model behind the subject (``recon.fields.background_field``): an unbounded,
    contracted field that explains the room around a subject so the whole frame is fitted and scored."""

    model: Literal["auto", "none", "field"] = Field(
        "auto", description="auto: a background field when the masks came from a segmenter (a real capture "
                            "without its own masks, so the score is full-frame); none: colour loss inside the "
                            "masks only; field: always (needs masks).")
    samples_per_ray: int = Field(32, ge=4, description="Samples per ray in the background field (half in distance "
                                                       "up to the inner ball, half in disparity beyond).")
    near: float = Field(0.05, gt=0, description="Distance from the camera where background samples start.")
    far: float = Field(1000.0, gt=0, description="Distance of the last background sample.")
    inner_radius: float = Field(3.0, gt=0, description="Radius of the ball kept linear by the contraction (normalised units).")
    grid: HashGridConfig = Field(
        default_factory=lambda: HashGridConfig(n_levels=12, log2_hashmap_size=17, max_resolution=1024),
        description="Its hash grid, over the contracted ball (smaller than the subject's).")
    hidden_dim: int = Field(32, ge=8, description="Hidden width of its MLPs.")
    sh_degree: int = Field(2, ge=1, le=4, description="SH degree of its view dependence.")
    distortion_weight: float = Field(
        0.001, ge=0, description="Weight of mip-NeRF 360's distortion loss on its ray weights (compact surfaces, "
                                "fewer floaters).")


class ArticulatedConfig(_Section):
    """The articulated model (``recon.models.articulated_model``): a skinned canonical mesh fitted to a clip."""

    bones: int = Field(16, ge=1, le=64, description="Gaussian bones B (k-means over the canonical hull).")
    skeleton: Literal["chain", "free"] = Field(
        "chain", description="Bone motions: chain (each bone turns about its joint with its parent in the skeleton's "
                             "tree and carries its children; limbs cannot stretch) or free (each bone turns and "
                             "shifts on its own).")
    influences: int = Field(4, ge=1, le=4, description="Skin weights kept per point (a glTF skin plays 4).")
    min_frames: int = Field(8, ge=2, description="Fewest training instants the model accepts.")
    still_iou: float = Field(0.7, ge=0, le=1, description="A subject whose masks one motionless visual hull explains "
                                                         "this well (mean silhouette IoU over the training frames) "
                                                         "holds still: it is fitted as a static object, and the run "
                                                         "says so. 0: never.")
    iterations: int = Field(12000, ge=1, description="Its fit budget in iterations (replaces fit.iterations when "
                                                    "the pipeline picks this model, unless fit.iterations is set).")
    minutes: float = Field(20.0, gt=0, description="Its fit budget in minutes (replaces fit.minutes likewise).")
    train_size: int = Field(160, ge=32, description="Longer side, in pixels, of the frames it renders in training.")
    frames_per_step: int = Field(4, ge=1, description="Frames rendered per training iteration.")
    box_margin: float = Field(1.6, gt=0, description="Canonical box half side, in subject radii (from the masks).")
    track_rounds: int = Field(1, ge=0, description="Rounds of root rotations tracked from the optical flow (PnP on "
                                                   "the current hull) and positions centred on the masks, each "
                                                   "followed by a new hull.")
    floor_rounds: int = Field(2, ge=0, description="Rounds of sliding each instant's root along the camera's rays "
                                                   "until the hull stands on the floor, each followed by a new "
                                                   "hull (only where a floor was found).")
    carve_resolution: int = Field(48, ge=16, le=160, description="Voxels per axis of the canonical hull.")
    carve_consensus: float = Field(0.9, gt=0, le=1, description="Fraction of frames whose mask must hold a voxel.")
    recarve: bool = Field(True, description="Carve the hull again during the fit (with the fitted root poses, "
                                            "then through the articulated warps); else only at the start.")
    rigid_until: float = Field(0.3, ge=0, lt=1, description="Training progress fitting root poses only.")
    recarve_at: float = Field(0.5, ge=0, le=1, description="Progress at which the hull is carved through the "
                                                           "articulated warps (the posed visual hull).")
    root_frequencies: int = Field(8, ge=1, description="Cosine terms of the root's trajectory over the clip.")
    bone_frequencies: int = Field(40, ge=1, description="Cosine terms of each bone's motion over the clip.")
    lr_root: float = Field(0.002, gt=0, description="Learning rate of the root poses (after tracking places them).")
    lr_bones: float = Field(0.01, gt=0, description="Learning rate of the bone motions.")
    lr_shape: float = Field(0.003, gt=0, description="Learning rate of the bones' rest shape, skin MLP and offsets.")
    photo_weight: float = Field(1.0, ge=0, description="Weight of the L1 photo loss.")
    photo_geometry: bool = Field(True, description="Let the photo loss move the surface (colour differentiated in "
                                                   "position), not only fit the colour.")
    silhouette_weight: float = Field(5.0, ge=0, description="Weight of the silhouette loss.")
    outline_weight: float = Field(0.5, ge=0, description="Weight of the outline chamfer (the surface's rim against "
                                                         "the mask's outline; reaches parts the hull lacks).")
    flow_weight: float = Field(1.0, ge=0, description="Weight of the optical-flow loss (0: no flow).")
    smooth_weight: float = Field(0.05, ge=0, description="Weight of the bones' high-frequency motion.")
    acceleration_weight: float = Field(10.0, ge=0, description="Weight of the root's acceleration (summed over "
                                                               "instants): pins the depth a single camera leaves open.")
    upright_weight: float = Field(1.0, ge=0, description="Weight of the root's tilt away from the world's up "
                                                         "(subjects that walk on the ground stay upright).")
    ground_weight: float = Field(10.0, ge=0, description="Weight of the floor contact (the subject's lowest point on "
                                                         "the floor found among the scene's points, none below it; "
                                                         "0: ignore the floor). Without a floor, nothing.")
    bone_motion_weight: float = Field(1e-3, ge=0, description="Weight of the bone motions' size.")
    offset_weight: float = Field(0.01, ge=0, description="Weight of the offsets' size.")
    laplacian_weight: float = Field(10.0, ge=0, description="Weight of the offsets' Laplacian over the mesh.")
    cycle_weight: float = Field(0.1, ge=0, description="Weight of the forward/backward warp cycle.")
    lr_offset_grid: float = Field(0.003, gt=0, description="Learning rate of the offset field's hash grid.")
    offset_grid: HashGridConfig = Field(
        default_factory=lambda: HashGridConfig(n_levels=6, n_features=2, log2_hashmap_size=15, base_resolution=8,
                                               max_resolution=96),
        description="Hash grid of the canonical shape's offset field.")
    color_grid: HashGridConfig = Field(
        default_factory=lambda: HashGridConfig(n_levels=10, n_features=2, log2_hashmap_size=16, base_resolution=8,
                                               max_resolution=256),
        description="Hash grid of the canonical colour field.")


class FitConfig(_Section):
    iterations: int = Field(20000, ge=1, description="Training iterations (the wall-time budget may stop earlier).")
    minutes: float | None = Field(None, gt=0, description="Wall-time budget in minutes (None: iterations only).")
    batch_rays: int = Field(4096, ge=16, description="Rays per training batch.")
    lr_grid: float = Field(1e-2, gt=0, description="Learning rate of the hash-grid tables.")
    lr_mlp: float = Field(1e-2, gt=0, description="Learning rate of the MLPs and appearance codes.")
    lr_variance: float = Field(1e-3, gt=0, description="SDF: learning rate of the inverse variance.")
    warmup: int = Field(100, ge=0, description="Linear learning-rate warm-up iterations.")
    lr_final_factor: float = Field(0.1, gt=0, le=1, description="Learning rate at the end as a fraction of the start (exponential decay).")
    weight_decay_mlp: float = Field(1e-6, ge=0, description="L2 weight decay on the MLPs.")
    eikonal_weight: float = Field(0.1, ge=0, description="SDF: eikonal loss weight.")
    curvature_weight: float = Field(5e-4, ge=0, description="SDF: curvature (Laplacian) loss weight.")
    mask_weight: float = Field(0.1, ge=0, description="Weight of the opacity-vs-mask loss when masks exist.")
    free_space_weight: float = Field(
        1.0, ge=0, description="SDF with a visual hull: weight of the loss keeping the SDF positive outside the hull.")
    mixed_precision: bool = Field(True, description="Use autocast (fp16) on CUDA; ignored on CPU.")
    num_threads: int = Field(2, ge=0, description="torch CPU threads (0: leave torch's default).")
    eval_every: int = Field(0, ge=0, description="Evaluate on held-out views every N iterations (0: only at the end).")
    eval_views: int = Field(0, ge=0, description="Held-out views used for periodic eval (0: all); the final eval uses all.")
    checkpoint_every: int = Field(1000, ge=0, description="Save a checkpoint every N iterations (0: only at the end).")
    log_every: int = Field(50, ge=1, description="Write a log.jsonl record every N iterations.")


class BakeConfig(_Section):
    """Mesh extraction, clean-up, UV unwrap and texture baking (recon.bake)."""

    resolution: int = Field(384, ge=16, le=1024, description="Marching-cubes grid samples per axis over [-bound, bound]^3.")
    bound: float = Field(1.0, gt=0, description="Half side of the normalised cube the surface is extracted from.")
    narrow_band: bool = Field(
        True, description="SDF fields: evaluate the grid only in blocks near the surface (a coarse pass finds them).")
    level: float = Field(0.0, description="Iso level of the SDF extracted (0: the surface).")
    density_threshold: float = Field(
        10.0, gt=0, description="Density fields: the surface is the level set density == this.")
    density_surface: Literal["depth_fusion", "level_set"] = Field(
        "depth_fusion", description="Density fields: the surface from the fused depth maps of the training views "
                                    "(recon.bake.depth_fusion), or the level set density == density_threshold.")
    fusion_views: int = Field(60, ge=1, description="Training views whose rendered depth is fused (depth_fusion).")
    fusion_trunc_voxels: float = Field(12.0, gt=0, description="TSDF truncation in extraction-grid cells (depth_fusion).")
    chunk_points: int = Field(1 << 18, ge=1024, description="Field queries per batch (bounds memory).")
    min_component_fraction: float = Field(
        0.05, gt=0, le=1, description="Keep connected components with at least this fraction of the largest's faces (1: largest only).")
    target_triangles: int = Field(50000, ge=100, description="Triangles after quadric decimation.")
    texture_size: int = Field(1024, ge=64, le=8192, description="Side of the square textures in texels.")
    uv_padding: int = Field(4, ge=0, description="Texels between UV charts.")
    normal_map: bool = Field(True, description="Bake a tangent-space normal map from the fine SDF.")
    fd_step: float = Field(
        0.0, ge=0, description="Finite-difference step for SDF normals in normalised units (0: half a grid cell).")
    texture_fit_steps: int = Field(
        300, ge=0, description="Adam steps fitting the base colour alone to the training photos when the mesh "
                                 "refinement did not run (0: the field's colour only).")
    texture_fit_lr: float = Field(0.01, gt=0, description="Learning rate of the base colour in that fit and in the "
                                                               "mesh refinement (texture values in [0, 1]).")
    refine_steps: int = Field(
        1500, ge=0, description="Adam steps fitting the mesh's vertices and base colour to the training photos by "
                                "differentiable rasterization (recon.bake.mesh_refine; 0: keep the extracted mesh).")
    refine_lr: float = Field(0.07, gt=0, description="Vertex step of that fit, in mean edge lengths.")
    refine_smoothness: float = Field(60.0, ge=0, description="Weight of the vertex offsets' Laplacian in that fit.")
    roughness: float = Field(0.8, ge=0, le=1, description="Default roughness until materials are fitted.")
    metallic: float = Field(0.0, ge=0, le=1, description="Default metallic until materials are fitted.")
    fscore_threshold: float = Field(
        0.01, gt=0, description="F-score distance threshold, in normalised units (unit-sphere radius 1).")
    posed_meshes: bool = Field(False, description="A rigged asset: also write the mesh posed at every animation "
                                                  "key (posed/frame_<key>.ply).")
    preview_size: int = Field(384, ge=64, description="Side of thumb.png and the turntable frames in pixels.")
    turntable_frames: int = Field(36, ge=2, description="Frames in turntable.mp4 (one revolution, 24 fps).")


class MaterialsConfig(_Section):
    """Materials and light fitted on the baked mesh (recon.materials): PBR textures, or the captured radiance."""

    mode: Literal["pbr", "radiance"] = Field(
        "radiance", description="pbr: albedo, roughness and metallic textures plus the capture's environment light, "
                           "fitted to the training photos (a relightable asset); radiance: the captured colour, "
                           "lighting included, written unlit.")
    steps: int = Field(600, ge=1, description="Adam steps of the materials and light fit.")
    batch: int = Field(1 << 15, ge=256, description="Photo pixels per step.")
    max_samples: int = Field(1 << 21, ge=1024, description="Training pixels kept for the fit (a random subset).")
    lr: float = Field(0.01, gt=0, description="Albedo learning rate (linear texture values; roughness/metallic 2x).")
    light_lr: float = Field(0.003, gt=0, description="Learning rate of the light's SH coefficients and the exposures.")
    light_height: int = Field(16, ge=4, le=64, description="Rows of the map the fitted SH light is drawn on (2x as wide).")
    orm_downscale: int = Field(4, ge=1, description="Roughness/metallic are fitted at the texture size / this.")
    init_roughness: float = Field(1.0, gt=0, le=1, description="Roughness before the fit (from 1, the matte end, "
                                                               "glossy texels come down where the photos show highlights).")
    albedo_smoothness: float = Field(0.0, ge=0, description="Weight of the albedo's piecewise-smoothness prior "
                                                            "(off by default: it cost held-out PSNR on the lego; "
                                                            "neutral on the avocado).")
    orm_smoothness: float = Field(0.05, ge=0, description="Weight of roughness/metallic piecewise smoothness.")
    normal_detail: float = Field(
        0.001, ge=0, description="Fit a normal-detail texture (slopes along the mesh's tangent frame, written into "
                                 "its normal map): the weight pulling the slopes to 0; 0: no detail fitted.")
    smoothness_texels: float = Field(
        2.0, gt=0, description="Reach of those smoothness priors in texels of each texture (a point against a random "
                               "neighbour up to about this far; small: a baked atlas has many small charts).")
    metallic_prior: float = Field(0.01, ge=0, description="Weight pulling metallic to 0 (dielectric).")
    light_neutrality: float = Field(0.01, ge=0, description="Weight pulling the light's colour to its luminance.")
    chroma_sigma: float = Field(
        0.01, gt=0, description="Light estimate: surface-point pairs count by how alike their colours' "
                                "chromaticities are (a neutral light does not change chromaticity, a new material does).")
    exposure: bool = Field(False, description="Fit a per-photo exposure and white balance (phone videos).")
    procedural: bool = Field(True, description="After a PBR fit, explain each region of like material with a "
                                               "procedural material (stripes, plaid, wood, noise, cells, brushed "
                                               "metal or uniform; recon.materials.procedural), stored in "
                                               "materials.json and regenerated by `recon export --texture-size N`.")
    procedural_regions: int = Field(4, ge=1, le=8, description="Procedural material regions at most.")


class HeadConfig(_Section):
    """The head model (``recon.heads``): ICT-FaceKit fitted to MediaPipe's face-mesh landmarks."""

    frames: int = Field(30, ge=1, description="Video frames fitted together (evenly spread over the video).")
    face_index: int | None = Field(None, ge=0, description="Which face to fit when a frame holds several "
                                                           "(0 = the largest; default: the largest, with a warning).")
    fov_deg: float = Field(40.0, gt=5, lt=150, description="Field of view across the longer side assumed for a "
                                                           "photo or video without intrinsics.")
    max_yaw_deg: float = Field(70.0, gt=0, le=90, description="A face turned further than this from the camera "
                                                             "is past the landmarker's range: a photo is refused, "
                                                             "a video frame dropped.")
    steps: int = Field(1000, ge=1, description="L-BFGS-B iterations of the fit at most.")
    texture_tile: int = Field(512, ge=64, le=4096, description="Texels per side of each UV tile of the atlas.")
    texture_frames: int = Field(8, ge=1, description="Video: frames whose views are blended into the texture "
                                                     "(the most frontal first).")
    detail_steps: int = Field(300, ge=0, description="Steps fitting the shape beyond the model (hair, a hat, "
                                                     "ears: offsets off the face region) to the person's "
                                                     "silhouettes (MediaPipe selfie segmentation); 0: none.")


class Config(_Section):
    """The whole run configuration. Later stages add their sections here."""

    seed: int = Field(0, description="Random seed: same seed, inputs and backend give the same output.")
    backend: Literal["auto", "cuda", "cpp", "torch"] = Field(
        "auto", description="Kernel backend: auto (cuda > cpp > torch), or force one.")
    capture: CaptureConfig = Field(default_factory=CaptureConfig)
    bake: BakeConfig = Field(default_factory=BakeConfig)
    field: FieldConfig = Field(default_factory=FieldConfig)
    render: RenderConfig = Field(default_factory=RenderConfig)
    background: BackgroundConfig = Field(default_factory=BackgroundConfig)
    articulated: ArticulatedConfig = Field(default_factory=ArticulatedConfig)
    head: HeadConfig = Field(default_factory=HeadConfig)
    fit: FitConfig = Field(default_factory=FitConfig)
    materials: MaterialsConfig = Field(default_factory=MaterialsConfig)


def _deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must hold a mapping")
    return data


def list_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def preset_dict(name: str, _seen: tuple[str, ...] = ()) -> dict:
    """The merged mapping of a preset (following ``base:`` chains)."""
    path = PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown preset '{name}' (known: {', '.join(list_presets())})")
    if name in _seen:
        raise ConfigError(f"{path}: preset base cycle {' -> '.join(_seen + (name,))}")
    data = _read_yaml(path)
    base = data.pop("base", None)
    return _deep_merge(preset_dict(base, _seen + (name,)), data) if base else data


def parse_override(text: str) -> dict:
    """``a.b.c=value`` -> {"a": {"b": {"c": value}}} with value parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like key.sub=value")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    out: dict = {}
    cur = out
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"override '{text}' has an empty key")
    for p in parts[:-1]:
        cur = cur.setdefault(p, {})
    cur[parts[-1]] = value
    return out


def load_config(preset: str | None = None, config_file: str | Path | None = None,
                overrides: list[str] | tuple[str, ...] = (), config_cls: type[Config] | None = None) -> Config:
    """Preset, then config file, then ``--set`` overrides, validated into a Config."""
    data: dict[str, Any] = {}
    if preset:
        data = _deep_merge(data, preset_dict(preset))
    if config_file:
        extra = _read_yaml(Path(config_file))
        base = extra.pop("base", None)
        if base:
            data = _deep_merge(data, preset_dict(base))
        data = _deep_merge(data, extra)
    for o in overrides:
        data = _deep_merge(data, parse_override(o))
    cls = config_cls or Config
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"]) or "config"
        raise ConfigError(f"invalid config value for '{loc}': {err['msg']}") from None


def config_to_dict(cfg: BaseModel) -> dict:
    return cfg.model_dump(mode="json")


def config_hash(cfg: BaseModel) -> str:
    """Stable hash of a resolved config (sorted JSON)."""
    return hashlib.sha256(json.dumps(config_to_dict(cfg), sort_keys=True).encode()).hexdigest()[:16]


def write_config(cfg: BaseModel, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
