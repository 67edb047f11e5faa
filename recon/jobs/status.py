"""Progress of ingestion jobs for people (a rich table) and machines (JSON)."""
from __future__ import annotations

import json
from datetime import datetime, timezone

from .state import JobState

_STYLE = {"done": "green", "failed": "red", "running": "yellow", "queued": "dim"}


def summary(states: list[JobState]) -> dict[str, int]:
    out = {s: 0 for s in ("queued", "running", "done", "failed")}
    for st in states:
        out[st.status] = out.get(st.status, 0) + 1
    out["total"] = len(states)
    return out


def status_json(states: list[JobState]) -> str:
    return json.dumps({"summary": summary(states), "jobs": [s.to_dict() for s in states]}, indent=2)


def _ago(t: datetime | None) -> str:
    if t is None:
        return ""
    s = (datetime.now(timezone.utc) - t).total_seconds()
    return f"{s:.0f}s ago" if s < 120 else f"{s / 60:.0f}m ago" if s < 7200 else f"{s / 3600:.0f}h ago"


def status_table(states: list[JobState], title: str = "ingest jobs"):
    from rich.table import Table

    c = summary(states)
    done = c["done"]
    table = Table(title=f"{title}: {done}/{c['total']} done, {c['running']} running, {c['failed']} failed, "
                        f"{c['queued']} queued", title_justify="left")
    for col in ("name", "status", "attempts", "asset", "updated", "error"):
        table.add_column(col, overflow="fold", no_wrap=col in ("name", "status", "asset"))
    for st in states:
        err = (st.error or "").splitlines()[0][:80] if st.error else ""
        table.add_row(st.name, f"[{_STYLE.get(st.status, '')}]{st.status}[/]", str(st.attempts),
                      (st.asset_id or "")[:8], _ago(st.updated_at), err)
    return table


def print_status(states: list[JobState], as_json: bool = False) -> None:
    if as_json:
        print(status_json(states))
        return
    from rich.console import Console

    Console().print(status_table(states))
