"""Exports of results tables as CSV, JSON or Parquet."""

from __future__ import annotations

import io
import json

import pandas as pd

from results.experiment import plain

__all__ = ["FORMATS", "table_bytes"]

FORMATS = ("csv", "json", "parquet")


def table_bytes(df: pd.DataFrame, fmt: str) -> bytes:
    """``df`` as ``fmt`` (one of :data:`FORMATS`): CSV with a header, JSON as a list of records
    (NaN as null), or Parquet."""
    if fmt == "csv":
        return df.to_csv(index=False).encode()
    if fmt == "json":  # not DataFrame.to_json, which writes every "/" in a name as "\/"
        records = [{k: plain(v) for k, v in row.items()} for row in df.to_dict("records")]
        return json.dumps(records, indent=1, default=str).encode()
    if fmt == "parquet":
        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        return buf.getvalue()
    raise ValueError(f"--format is {fmt!r}, but must be one of {', '.join(FORMATS)}.")
