"""Tables and files shared by the workbench pages: an AG Grid of a frame, a Parquet reader
that turns an unreadable file into None."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

MAX_ROWS = 5000


def grid(df: pd.DataFrame, id: str, *, height: int = 420, link: str = "") -> Any:
    """A sortable, filterable AG Grid of ``df`` (first MAX_ROWS rows)."""
    import dash_ag_grid as dag

    df = df.head(MAX_ROWS)
    records = df.astype(object).where(df.notna(), None).to_dict("records")
    cols: list[dict[str, Any]] = [{"field": str(c), "headerName": str(c)} for c in df.columns]
    return dag.AgGrid(
        id=id,
        rowData=records,
        columnDefs=cols,
        defaultColDef={"sortable": True, "filter": True, "resizable": True, "floatingFilter": True},
        dashGridOptions={"pagination": True, "paginationPageSize": 50, "quickFilterText": ""},
        style={"height": f"{height}px"},
    )


def _read_parquet(path: Path) -> pd.DataFrame | None:
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError):
        return None
