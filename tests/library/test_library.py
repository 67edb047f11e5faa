"""recon.library.Library on SQLite and PostgreSQL (the ``library`` fixture runs each test on both)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from recon.core.errors import InputError
from recon.library import AssetNotFound, Library
from recon.library.blob_store import hash_file


def test_add_records_files_roles_metrics_and_provenance(library, make_asset):
    folder = make_asset("mug", seed=1)
    a = library.add(folder, tags=["kitchen", "batch-1", "kitchen"])
    assert (a.name, a.version, a.kind) == ("mug", 1, "object")
    assert a.tags == ("batch-1", "kitchen")
    roles = {f.path: f.role for f in a.files}
    assert roles == {"mug.glb": "glb", "mug.obj": "obj", "mug.mtl": "mtl", "mug.ply": "ply",
                     "textures/albedo.png": "texture", "thumb.png": "thumb", "turntable.mp4": "turntable",
                     "report.html": "report", "metrics.json": "metrics", "provenance.json": "provenance"}
    for f in a.files:  # each file is its blob, byte for byte
        assert (f.hash, f.size) == hash_file(folder / f.path)
        assert library.store.read_bytes(f.hash) == (folder / f.path).read_bytes()
    assert a.psnr == a.metrics["psnr_heldout_baked"] == 30.0 and a.metrics["triangles"] == 4
    assert (a.material, a.requested_subject) == ("radiance", "object")
    assert a.licence == "CC-BY-4.0" and a.recon_version == "0.1.0"
    assert a.provenance["operator"] == "tester" and a.provenance["source_path"] == "/captures/mug.mp4"
    assert a.source_hash and a.config_hash
    again = library.get(a.id)
    assert again == a and again.created.tzinfo is not None


def test_same_capture_and_config_is_a_noop_other_config_is_a_new_version(library, make_asset):
    first = library.add(make_asset("cat", seed=2, config_hash="cfgA"))
    blobs_before = set(library.store.hashes())
    # Same capture, same config, even baked again (other bytes): the existing asset comes back.
    same = library.add(make_asset("cat", seed=3, source_hash=first.source_hash, config_hash="cfgA"))
    assert same.id == first.id and len(library) == 1
    assert set(library.store.hashes()) == blobs_before
    # Another config of the same capture: version 2 of the same name.
    v2 = library.add(make_asset("cat", seed=4, source_hash=first.source_hash, config_hash="cfgB"))
    assert (v2.name, v2.version) == ("cat", 2) and v2.id != first.id
    assert [a.version for a in library.find(name="cat")] == [1, 2]


def test_identity_from_content_when_capture_and_config_are_unknown(library, make_asset):
    folder = make_asset("rock", seed=5, provenance=False)
    a = library.add(folder)
    assert a.source_hash is None and a.config_hash is None
    assert a.licence == "unknown" and a.provenance["operator"] == "unknown"
    assert library.add(folder).id == a.id  # same bytes: same asset
    (folder / "report.html").write_text("<html>rebaked</html>")
    b = library.add(folder)
    assert b.id != a.id and b.version == 2


def test_provenance_derived_from_the_job_folder(library, make_asset, tmp_path):
    asset_dir = make_asset("shoe", seed=6, provenance=False)
    job = asset_dir.parent
    (job / "capture").mkdir()
    (job / "capture" / "capture.json").write_text(json.dumps(
        {"recon_version": "0.1.0", "source": {"path": "/videos/shoe.mp4", "kind": "video", "hash": "f" * 64}}))
    (job / "fit").mkdir()
    from recon.core.config import config_hash, load_config, write_config

    cfg = load_config("object-fast")
    write_config(cfg, job / "fit" / "config.yaml")
    a = library.add(asset_dir, licence="CC0", operator="ana")
    assert a.source_hash == "f" * 64
    assert a.config_hash == config_hash(cfg)  # the same hash the fit stage records
    assert a.provenance["source_path"] == "/videos/shoe.mp4" and a.recon_version == "0.1.0"
    assert a.licence == "CC0" and a.provenance["operator"] == "ana"
    assert yaml.safe_load((job / "fit" / "config.yaml").read_text())  # untouched


def test_get_by_id_prefix_name_and_version(library, make_asset):
    a1 = library.add(make_asset("lamp", seed=7, config_hash="c1"))
    a2 = library.add(make_asset("lamp", seed=8, source_hash=a1.source_hash, config_hash="c2"))
    assert library.get(a1.id).version == 1
    assert library.get(a2.id[:8]).id == a2.id
    assert library.get("lamp").id == a2.id  # latest
    assert library.get("lamp@1").id == a1.id and library.get("lamp@v2").id == a2.id
    with pytest.raises(AssetNotFound):
        library.get("nope")
    with pytest.raises(AssetNotFound):
        library.get("lamp@3")


def test_find_filters(library, make_asset):
    library.add(make_asset("chair", seed=10, kind="object", psnr=31.0), tags=["furniture"])
    library.add(make_asset("chair", seed=11, source_hash=f"src{10:061d}", config_hash="x", psnr=33.0),
                tags=["furniture", "v2"])
    library.add(make_asset("bob", seed=12, kind="head", psnr=25.0), tags=["person"])
    library.add(make_asset("tee", seed=13, kind="garment", psnr=None))
    names = lambda xs: [(a.name, a.version) for a in xs]  # noqa: E731
    assert names(library.find()) == [("bob", 1), ("chair", 1), ("chair", 2), ("tee", 1)]
    assert names(library.find(kind="head")) == [("bob", 1)]
    assert names(library.find(tag="furniture")) == [("chair", 1), ("chair", 2)]
    assert names(library.find(tag="v2")) == [("chair", 2)]
    assert names(library.find(min_psnr=30)) == [("chair", 1), ("chair", 2)]
    assert names(library.find(min_psnr=32.5)) == [("chair", 2)]
    assert names(library.find(name="ch*")) == [("chair", 1), ("chair", 2)]
    assert names(library.find(name="c_air")) == []  # '_' is literal, not a wildcard
    assert names(library.find(latest=True)) == [("bob", 1), ("chair", 2), ("tee", 1)]
    assert names(library.find(kind="object", tag="furniture", latest=True)) == [("chair", 2)]


def test_export_formats(library, make_asset, tmp_path):
    import trimesh

    folder = make_asset("vase", seed=14)
    a = library.add(folder)
    out = tmp_path / "export"
    glb = library.export(a.id, out / "v.glb")
    assert glb.read_bytes() == (folder / "vase.glb").read_bytes()
    obj = a.export(out / "obj" / "thing.obj")  # Asset.export: the record knows its library
    assert obj == out / "obj" / "thing.obj"
    assert "mtllib thing.mtl" in obj.read_text()
    assert (out / "obj" / "thing.mtl").read_text() == (folder / "vase.mtl").read_text()
    assert (out / "obj" / "textures" / "albedo.png").read_bytes() == (folder / "textures" / "albedo.png").read_bytes()
    assert len(trimesh.load(obj, force="mesh").faces) == 4
    ply = library.export("vase", out / "v.ply")
    assert ply.read_bytes() == (folder / "vase.ply").read_bytes()
    whole = library.export("vase@1", out / "all", format="folder")
    assert sorted(p.relative_to(whole).as_posix() for p in whole.rglob("*") if p.is_file()) == \
        sorted(f.path for f in a.files)
    with pytest.raises(InputError, match="unknown export format"):
        library.export(a.id, out / "v.fbx")


def test_export_converts_a_format_the_asset_lacks(library, make_asset, tmp_path):
    import trimesh

    folder = make_asset("pear", seed=15)
    (folder / "pear.ply").unlink()
    a = library.add(folder)
    assert a.file("ply") is None
    ply = library.export(a.id, tmp_path / "pear.ply")
    mesh = trimesh.load(ply)
    assert len(mesh.faces) == 4 and mesh.vertices.max() == pytest.approx(16.0)


def test_remove_deletes_only_unshared_blobs(library, make_asset):
    a = library.add(make_asset("a", seed=16))
    b = library.add(make_asset("b", seed=17))
    shared = {f.hash for f in a.files} & {f.hash for f in b.files}
    assert shared  # e.g. the same mtl and metrics in both
    library.remove(a.id)
    with pytest.raises(AssetNotFound):
        library.get(a.id)
    present = set(library.store.hashes())
    assert {f.hash for f in b.files} <= present
    assert not ({f.hash for f in a.files} - shared) & present
    assert library.verify().ok and not library.verify().orphans
    library.remove("b")
    assert list(library.store.hashes()) == [] and len(library) == 0


def test_verify_reports_corrupt_and_missing_blobs_and_gc_clears_leftovers(library, make_asset):
    a = library.add(make_asset("tile", seed=18))
    report = library.verify()
    assert report.ok and report.assets == 1 and report.blobs_checked == len({f.hash for f in a.files})
    glb, thumb = a.file("glb"), a.file("thumb")
    library.store.path(glb.hash).write_bytes(b"not the glb")
    library.store.delete(thumb.hash)
    report = library.verify()
    assert not report.ok
    assert {(p.hash, p.problem) for p in report.problems} == {(glb.hash, "corrupt"), (thumb.hash, "missing")}
    assert report.problems[0].refs and "tile@1:" in report.problems[0].refs[0]
    # Leftovers of an interrupted add: an unreferenced blob and a temp file; gc removes both.
    digest, _ = library.store.put(Path(__file__))
    (library.store.root / "tmp" / "x.part").write_bytes(b"half")
    assert digest in library.verify().orphans
    gc = library.gc()
    assert gc.blobs_deleted == 1 and gc.temp_files_deleted == 1
    assert not library.store.exists(digest) and library.store.exists(a.file("obj").hash)


def test_store_is_recorded_with_the_first_asset(catalog_url, store_dir, make_asset, tmp_path):
    with Library(catalog_url, store=tmp_path / "elsewhere") as lib:  # reading records nothing
        assert lib.find() == []
    with Library(catalog_url, store=store_dir) as lib:
        a = lib.add(make_asset("jar", seed=19))
    with Library(catalog_url) as lib:  # no store given: the recorded one
        assert Path(lib.store.url) == store_dir.resolve()
        assert lib.get(a.id).name == "jar" and lib.verify().ok
    with Library(catalog_url, store=tmp_path / "elsewhere") as lib:
        with pytest.raises(InputError, match="keeps its blobs in"):
            lib.add(make_asset("lid", seed=24))
        assert len(lib) == 1 and list(lib.store.hashes()) == []  # nothing written there


def test_sqlite_default_store_is_beside_the_database(tmp_path, make_asset):
    with Library(tmp_path / "lib" / "assets.db") as lib:
        lib.add(make_asset("cup", seed=20))
        assert Path(lib.store.url) == (tmp_path / "lib" / "assets.blobs").resolve()


def test_bad_asset_folders_are_one_line_input_errors(library, make_asset, tmp_path):
    with pytest.raises(InputError, match="asset folder not found"):
        library.add(tmp_path / "missing")
    folder = make_asset("x", seed=21)
    for f in ("x.glb", "x.obj", "x.ply"):
        (folder / f).unlink()
    with pytest.raises(InputError, match="no mesh"):
        library.add(folder)
    with pytest.raises(InputError, match="unknown asset kind"):
        library.add(make_asset("y", seed=22), kind="spaceship")
    (folder.parent / "broken").mkdir()
    shutil.copy(make_asset("z", seed=23) / "z.glb", folder.parent / "broken" / "z.glb")
    (folder.parent / "broken" / "metrics.json").write_text("{not json")
    with pytest.raises(InputError, match="metrics.json: unreadable JSON"):
        library.add(folder.parent / "broken")
    assert len(library) == 0 and list(library.store.hashes()) == []


def test_unreachable_database_is_a_clear_error(tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once closed
    with pytest.raises(InputError, match="library database does not answer"):
        Library(f"postgresql://nobody@127.0.0.1:{port}/nothing", store=tmp_path / "blobs")
    with pytest.raises(InputError, match="unsupported library backend"):
        Library("mysql://x@127.0.0.1/db", store=tmp_path / "blobs")


def test_browsing_needs_no_store_adding_does(catalog_url, make_asset):
    with Library(catalog_url) as lib:  # a new catalogue, no store given or recorded
        assert lib.find() == [] and len(lib) == 0
        if catalog_url.startswith("postgresql"):
            with pytest.raises(InputError, match="no blob store yet"):
                lib.add(make_asset("a", seed=25))
        else:  # SQLite: the folder beside the database file
            assert lib.add(make_asset("a", seed=25)).version == 1


def test_reading_never_creates_a_library(catalog_url, store_dir, make_asset, tmp_path):
    from sqlalchemy import create_engine, inspect

    from recon.library.catalog.engine import normalize_url

    with pytest.raises(InputError, match="no library at .*`recon library add` or `recon ingest` creates one"):
        Library(catalog_url, store=store_dir, create=False)
    if catalog_url.startswith("postgresql"):  # the database exists: no tables were made in it
        engine = create_engine(normalize_url(catalog_url))
        assert inspect(engine).get_table_names() == []
        engine.dispose()
    else:
        assert not (tmp_path / "catalog").exists()
    assert not store_dir.exists()
    with Library(catalog_url, store=store_dir) as lib:
        lib.add(make_asset("cup", seed=26))
    with Library(catalog_url, create=False) as lib:
        assert [a.name for a in lib.find()] == ["cup"]


def test_kind_is_the_model_fitted_and_the_requested_subject_is_kept(library, make_asset):
    folder = make_asset("bust", seed=27, kind="object", requested_subject="head")
    with pytest.raises(InputError, match="kind 'head' contradicts the kind this asset was fitted as"):
        library.add(folder, kind="head")  # a fitted object cannot be filed as a head
    a = library.add(folder, kind="object")
    assert (a.kind, a.requested_subject) == ("object", "head") and a.to_dict()["requested_subject"] == "head"
    assert [x.id for x in library.find(kind="object")] == [a.id] and library.find(kind="head") == []
    b = library.add(make_asset("hat", seed=28, provenance=False), kind="garment")  # nothing recorded: accepted
    assert (b.kind, b.requested_subject) == ("garment", None)


def test_min_psnr_is_the_baked_held_out_psnr_only(library, make_asset):
    field_only = {"psnr_heldout_field": 40.0, "psnr_train_field": 41.0}
    library.add(make_asset("baked", seed=29, psnr=31.0, metrics=field_only))
    library.add(make_asset("legacy", seed=30, psnr=None, metrics={"psnr_heldout": 28.0}))
    library.add(make_asset("field", seed=31, psnr=None, metrics=field_only))
    library.add(make_asset("old", seed=32, psnr=None, metrics={"psnr": 39.0}))  # the removed key: ambiguous
    assert {a.name: a.psnr for a in library.find()} == {"baked": 31.0, "legacy": 28.0, "field": None, "old": None}
    assert [a.name for a in library.find(min_psnr=20)] == ["baked", "legacy"]
    assert [a.name for a in library.find(min_psnr=30)] == ["baked"]


def test_material_is_recorded_and_searchable(library, make_asset):
    library.add(make_asset("rough", seed=33, material="pbr"))
    library.add(make_asset("plain", seed=34, metrics={"material": None}))  # absent: radiance
    assert {a.name: a.material for a in library.find()} == {"plain": "radiance", "rough": "pbr"}
    assert [a.name for a in library.find(material="pbr")] == ["rough"]
    with pytest.raises(InputError, match="metrics.json: unknown material 'chalk'"):
        library.add(make_asset("odd", seed=35, material="chalk"))
