"""The library as people read it in a terminal (rich tables) and as scripts read it (JSON)."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .library import Asset, GcReport, VerifyReport


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _metric(v) -> str:
    return "" if v is None else f"{v:.2f}" if isinstance(v, float) else str(v)


def _console():
    from rich.console import Console

    return Console()


def print_assets(assets: list["Asset"], title: str, as_json: bool = False) -> None:
    if as_json:
        print(json.dumps([a.to_dict() for a in assets], indent=2))
        return
    from rich.table import Table

    table = Table(title=f"{title}: {len(assets)} asset{'s' if len(assets) != 1 else ''}", title_justify="left")
    for col in ("id", "name", "ver", "kind", "material", "baked psnr", "triangles", "size", "tags", "created"):
        table.add_column(col, no_wrap=col in ("id", "name", "created"),
                         justify="right" if col in ("ver", "baked psnr", "triangles", "size") else "left")
    for a in assets:
        table.add_row(a.id[:8], a.name, str(a.version), a.kind, a.material, _metric(a.psnr),
                      _metric(a.metrics.get("triangles")), _size(a.size), ", ".join(a.tags),
                      f"{a.created:%Y-%m-%d %H:%M}")
    _console().print(table)


def print_asset(a: "Asset", as_json: bool = False) -> None:
    if as_json:
        print(json.dumps(a.to_dict(), indent=2))
        return
    from rich.table import Table

    info = Table(show_header=False, title=f"{a.name} v{a.version}", title_justify="left")
    info.add_column(style="bold")
    info.add_column(overflow="fold")
    p = a.provenance
    for k, v in (("id", a.id), ("kind", a.kind), ("requested subject", a.requested_subject),
                 ("material", a.material), ("created", a.created.isoformat(timespec="seconds")),
                 ("tags", ", ".join(a.tags)), ("licence", a.licence), ("source", p.get("source_path")),
                 ("source hash", a.source_hash or "unknown"), ("config hash", a.config_hash or "unknown"),
                 ("recon version", a.recon_version), ("operator", p.get("operator")), ("notes", p.get("notes"))):
        info.add_row(k, "" if v is None else str(v))
    for k, v in a.metrics.items():
        if isinstance(v, (dict, list)):
            text = json.dumps(v)
            v = text if len(text) <= 60 else f"{text[:57]}... (--json shows all)"
        info.add_row(f"metric {k}", _metric(v))
    files = Table(title="files", title_justify="left")
    for col in ("path", "role", "size", "blob"):
        files.add_column(col, justify="right" if col == "size" else "left")
    for f in a.files:
        files.add_row(f.path, f.role, _size(f.size), f.hash[:12])
    con = _console()
    con.print(info)
    con.print(files)


def print_verify(report: "VerifyReport", as_json: bool = False) -> None:
    if as_json:
        print(json.dumps({"ok": report.ok, "assets": report.assets, "blobs_checked": report.blobs_checked,
                          "bytes_checked": report.bytes_checked, "orphans": report.orphans,
                          "problems": [vars(p) for p in report.problems]}, indent=2))
        return
    con = _console()
    if report.problems:
        from rich.table import Table

        table = Table(title=f"{len(report.problems)} damaged blobs", title_justify="left")
        for col in ("blob", "problem", "used by"):
            table.add_column(col, overflow="fold")
        for p in report.problems:
            table.add_row(p.hash[:16], f"[red]{p.problem}[/]", "\n".join(p.refs))
        con.print(table)
    state = "[green]ok[/]" if report.ok else "[red]CORRUPT[/]"
    con.print(f"verify: {state}: {report.assets} assets, {report.blobs_checked} blobs re-hashed "
              f"({_size(report.bytes_checked)}), {len(report.problems)} problems, "
              f"{len(report.orphans)} unreferenced blobs (recon library gc removes them)")


def print_gc(report: "GcReport") -> None:
    _console().print(f"gc: deleted {report.blobs_deleted} unreferenced blobs ({_size(report.bytes_freed)}) "
                     f"and {report.temp_files_deleted} temp files")
