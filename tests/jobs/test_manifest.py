"""Ingestion manifests: YAML and CSV, defaults, stable job keys, one-line errors."""
from __future__ import annotations

import pytest

from recon.core.errors import InputError
from recon.jobs.manifest import JobSpec, load_manifest


@pytest.fixture
def sources(tmp_path):
    (tmp_path / "caps" / "shoe").mkdir(parents=True)
    (tmp_path / "caps" / "mug.mp4").write_bytes(b"not really a video")
    return tmp_path


def test_yaml_with_defaults(sources):
    m = sources / "batch.yaml"
    m.write_text("""
defaults: {kind: object, tags: [batch-7], set: ["fit.iterations=100"]}
captures:
  - video: caps/mug.mp4
    tags: [kitchen]
  - {source: caps/shoe, name: left-shoe, kind: garment, set: {fit.minutes: 2}, licence: CC0, operator: ana}
""")
    mug, shoe = load_manifest(m)
    assert mug.source == str(sources / "caps" / "mug.mp4") and mug.name == "mug"
    assert (mug.kind, mug.preset) == ("object", "object-fast")
    assert mug.tags == ("batch-7", "kitchen") and mug.overrides == ("fit.iterations=100",)
    assert (shoe.name, shoe.kind, shoe.preset) == ("left-shoe", "garment", "object-fast")  # no garment preset yet
    assert shoe.overrides == ("fit.iterations=100", "fit.minutes=2")
    assert (shoe.licence, shoe.operator) == ("CC0", "ana")
    assert JobSpec.from_dict(shoe.to_dict()) == shoe and JobSpec.from_dict(shoe.to_dict()).key == shoe.key


def test_csv_gives_the_same_jobs_as_yaml(sources):
    y = sources / "a.yaml"
    y.write_text("- {source: caps/mug.mp4, name: mug, tags: [a, b], set: [fit.iterations=5]}\n")
    c = sources / "a.csv"
    c.write_text("source,name,tags,set\ncaps/mug.mp4,mug,b;a,fit.iterations=5\n")
    [from_yaml], [from_csv] = load_manifest(y), load_manifest(c)
    assert from_yaml == from_csv and from_yaml.key == from_csv.key


def test_key_depends_on_what_decides_the_output_only(sources):
    base = JobSpec(source="/x", name="n")
    assert JobSpec(source="/x", name="n", tags=("t",), notes="hi").key == base.key
    for other in (JobSpec(source="/y", name="n"), JobSpec(source="/x", name="m"),
                  JobSpec(source="/x", name="n", preset="object-quality"),
                  JobSpec(source="/x", name="n", overrides=("seed=1",))):
        assert other.key != base.key


@pytest.mark.parametrize("text, message", [
    ("- {name: x}\n", "missing 'source'"),
    ("- {source: caps/nope.mp4}\n", "source not found"),
    ("- {source: caps/shoe, kind: spaceship}\n", "unknown kind 'spaceship'"),
    ("- {source: caps/shoe, colour: red}\n", "unknown field 'colour'"),
    ("- {source: caps/shoe, preset: nope}\n", "unknown preset 'nope'"),
    ("- {source: caps/shoe, set: [fit.iterations=-3]}\n", "fit.iterations"),
    ("- {source: caps/shoe}\n- {source: caps/shoe}\n", "captures 1 and 2 are the same job"),
    ("[]\n", "no captures listed"),
    ("captures: {a: 1}\n", "expected a list of captures"),
    ("- [unclosed\n", "invalid YAML"),
])
def test_errors_name_the_file_and_entry(sources, text, message):
    m = sources / "bad.yaml"
    m.write_text(text)
    with pytest.raises(InputError, match=message) as err:
        load_manifest(m)
    assert str(m) in str(err.value) and "\n" not in str(err.value)
