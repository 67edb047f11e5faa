"""recon.synth: render known meshes into captures with perfect ground truth.

    from recon.synth import synth_capture
    cap = synth_capture("bunny.ply", "out/bunny", views=60, test_views=10, size=256)
    cap = synth_articulated("out/critter", frames=60, size=128)  # walking rigged quadruped
    truth = load_posed_truth("out/critter")  # instant -> posed trimesh (mesh units)

Pieces: ``load_mesh`` (trimesh, texture / vertex colours / procedural pattern),
``sphere_cameras`` / ``train_test_cameras`` (views around the mesh),
``render_views`` (``recon.render.mesh_render``: exact rasterized visibility, supersampled colour).
"""
from ..render.mesh_render import render_views
from .articulated import load_posed_truth, synth_articulated
from .cameras import sphere_cameras, train_test_cameras
from .mesh import Mesh, load_mesh
from .synthetic_capture import synth_capture

__all__ = ["synth_capture", "synth_articulated", "load_posed_truth", "load_mesh", "Mesh", "render_views",
           "sphere_cameras", "train_test_cameras"]
