"""``recon library ls|show|find|add|export|rm|gc|verify`` (SQLite and PostgreSQL)."""
from __future__ import annotations

import json

import pytest

from recon.cli import main


def run(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_library_commands(catalog_url, store_dir, make_asset, tmp_path, capsys):
    lib = ["--library", catalog_url, "--store", str(store_dir)]
    rc, out, _ = run(capsys, "library", "add", str(make_asset("mug", seed=1)), "--tag", "kitchen", *lib, "-q")
    assert rc == 0 and out.split()[1:] == ["mug", "v1"]
    mug_id = out.split()[0]
    run(capsys, "library", "add", str(make_asset("bust", seed=2, kind="head", psnr=20.0)), *lib, "-q")

    rc, out, _ = run(capsys, "library", "ls", *lib)
    assert rc == 0 and "2 assets" in out and "mug" in out and "bust" in out and mug_id[:8] in out
    rc, out, _ = run(capsys, "library", "ls", "--json", *lib)
    assert sorted(a["name"] for a in json.loads(out)) == ["bust", "mug"]
    rc, out, _ = run(capsys, "library", "find", "--min-psnr", "25", "--json", *lib)
    assert [a["name"] for a in json.loads(out)] == ["mug"]
    rc, out, _ = run(capsys, "library", "find", "--kind", "head", "--tag", "kitchen", "--json", *lib)
    assert json.loads(out) == []
    rc, out, _ = run(capsys, "library", "show", "mug", *lib)
    assert rc == 0 and mug_id in out and "CC-BY-4.0" in out and "mug.glb" in out and "textures/albedo.png" in out
    rc, out, _ = run(capsys, "library", "show", mug_id[:6], "--json", *lib)
    shown = json.loads(out)
    assert shown["id"] == mug_id and shown["tags"] == ["kitchen"] and shown["metrics"]["psnr_heldout_baked"] == 30.0

    for fmt in ("obj", "glb", "ply"):
        dest = tmp_path / "out" / f"m.{fmt}"
        rc, out, _ = run(capsys, "library", "export", "mug", "--format", fmt, "--out", str(dest), *lib)
        assert rc == 0 and out.strip() == str(dest) and dest.stat().st_size > 0
    assert (tmp_path / "out" / "m.mtl").is_file() and (tmp_path / "out" / "textures" / "albedo.png").is_file()

    rc, out, _ = run(capsys, "library", "verify", *lib)
    assert rc == 0 and "verify: ok: 2 assets" in out
    rc, out, _ = run(capsys, "library", "rm", "bust", *lib)
    assert rc == 0 and "removed" in out
    rc, out, _ = run(capsys, "library", "gc", *lib)
    assert rc == 0 and "deleted 0 unreferenced blobs" in out

    # Corruption makes verify fail (exit 1) and name the damaged file.
    glb = json.loads(run(capsys, "library", "show", "mug", "--json", *lib)[1])
    blob = next(f["hash"] for f in glb["files"] if f["role"] == "glb")
    (store_dir / blob[:2] / blob).write_bytes(b"garbage")
    rc, out, _ = run(capsys, "library", "verify", *lib)
    assert rc == 1 and "CORRUPT" in out and "mug@1:mug.glb" in out
    rc, out, _ = run(capsys, "library", "verify", "--json", *lib)
    report = json.loads(out)
    assert rc == 1 and not report["ok"] and report["problems"][0]["problem"] == "corrupt"


def test_user_mistakes_are_one_line_errors(catalog_url, store_dir, make_asset, tmp_path, capsys):
    lib = ["--library", catalog_url, "--store", str(store_dir)]
    rc, _, err = run(capsys, "library", "add", str(tmp_path / "missing"), *lib)  # creates the library
    assert rc == 2 and "asset folder not found" in err and len(err.strip().splitlines()) == 1
    rc, out, err = run(capsys, "library", "show", "nothing-here", *lib)
    assert rc == 2 and err.strip().splitlines() == ["recon: error: no asset 'nothing-here' in the library "
                                                    "(try: recon library ls)"]
    fitted_object = make_asset("bust", seed=3, kind="object", requested_subject="head")
    rc, out, err = run(capsys, "library", "add", str(fitted_object), "--kind", "head", *lib)
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "kind 'head' contradicts the kind this asset was fitted as ('object')" in err


READ_ONLY_COMMANDS = [["library", "ls"], ["library", "show", "mug"], ["library", "find", "--kind", "object"],
                      ["library", "export", "mug", "--out", "mug.glb"], ["library", "verify"], ["ingest", "status"]]


@pytest.mark.parametrize("argv", READ_ONLY_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_reading_commands_refuse_a_missing_library_and_create_nothing(argv, tmp_path, capsys):
    where = tmp_path / "no" / "such" / "dir"
    rc, out, err = run(capsys, *argv, "--library", str(where / "lib.db"))
    assert rc == 2 and out == "" and err.strip().splitlines() == [
        f"recon: error: no library at {where / 'lib.db'}; `recon library add` or `recon ingest` creates one"]
    assert not (tmp_path / "no").exists()


def test_kinds_materials_and_psnr_say_what_they_are(catalog_url, store_dir, make_asset, capsys):
    lib = ["--library", catalog_url, "--store", str(store_dir)]
    run(capsys, "library", "add", str(make_asset("bust", seed=1, requested_subject="head")), *lib)
    run(capsys, "library", "add", str(make_asset("vase", seed=2, material="pbr", psnr=None,
                                                 metrics={"psnr_heldout_field": 35.0})), *lib)

    def found(*filters):
        return [a["name"] for a in json.loads(run(capsys, "library", "find", *filters, "--json", *lib)[1])]

    assert found("--kind", "object") == ["bust", "vase"] and found("--kind", "head") == []
    assert found("--material", "pbr") == ["vase"] and found("--min-psnr", "25") == ["bust"]
    rc, out, _ = run(capsys, "library", "show", "bust", *lib)
    assert rc == 0 and "requested subject" in out and "head" in out and "radiance" in out
    shown = json.loads(run(capsys, "library", "show", "bust", "--json", *lib)[1])
    assert (shown["kind"], shown["requested_subject"], shown["material"]) == ("object", "head", "radiance")
