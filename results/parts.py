"""An append-only Parquet dataset: a folder of part files that ``pd.read_parquet`` reads whole.

``iterations.parquet/`` grows by one part file per flush, so writing a report never rewrites the
rows before it. Part files are written atomically (see :meth:`results.storage.Location.write_bytes`)
and named ``part-NNNNNN.parquet`` in order. The first, ``part-000000.parquet``, holds no rows, only
the union schema of every part (rewritten when a new column or a wider type appears): Arrow's
dataset reader takes the schema from the first file it finds, so every column of every part is
read, missing cells as null. When there are :data:`MAX_PARTS` parts they are merged into one
(and at the end of an experiment), so the number of files stays small and each row is rewritten
only a few times however long the experiment runs.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from results.storage import Location

__all__ = ["MAX_PARTS", "PartedTable"]

MAX_PARTS = 64
_HEAD = "part-000000.parquet"


def _parquet_bytes(table: pa.Table, metadata: dict[bytes, bytes]) -> bytes:
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


class PartedTable:
    """A Parquet dataset folder written by appending parts (see the module docstring).

    Args:
        where: the folder (``iterations.parquet`` of an experiment, a path or URI).
        metadata: key/values stored in every part's schema (the schema version).
    """

    def __init__(self, where: Location, *, metadata: dict[bytes, bytes] | None = None) -> None:
        self.where = where
        self.metadata = metadata or {}
        self.schema: pa.Schema | None = None
        self.next_part = 1
        self.count = 0  # parts with rows

    def part_names(self) -> list[str]:
        """The part files with rows, in order."""
        try:
            infos = self.where.fs.get_file_info(pafs.FileSelector(self.where.path))
        except (FileNotFoundError, OSError):
            return []
        return sorted(i.base_name for i in infos if i.base_name.startswith("part-")
                      and i.base_name.endswith(".parquet") and i.base_name != _HEAD)

    def open(self) -> None:
        """Start from what the folder holds (a resumed experiment's rows)."""
        names = self.part_names()
        self.count = len(names)
        self.next_part = int(names[-1][5:11]) + 1 if names else 1
        head = self.where / _HEAD
        self.schema = pq.read_schema(pa.BufferReader(head.read_bytes())) \
            if head.is_file() else None

    def append(self, table: pa.Table) -> None:
        """Write ``table``'s rows as the next part (and the schema head if it grew)."""
        if table.num_rows == 0:
            return
        grown = table.schema if self.schema is None else pa.unify_schemas(
            [self.schema, table.schema], promote_options="permissive")
        grown = grown.remove_metadata()
        if self.schema is None or not grown.equals(self.schema):
            self.schema = grown
            self.where.mkdir()
            (self.where / _HEAD).write_bytes(
                _parquet_bytes(pa.Table.from_pylist([], schema=grown), self.metadata))
        columns = [f.name for f in self.schema if f.name in table.column_names]
        table = table.select(columns).cast(pa.schema([self.schema.field(c) for c in columns]))
        (self.where / f"part-{self.next_part:06d}.parquet").write_bytes(
            _parquet_bytes(table, self.metadata))
        self.next_part += 1
        self.count += 1
        if self.count >= MAX_PARTS:
            self.compact()

    def read(self, columns: list[str] | None = None) -> pa.Table | None:
        """Every row (the union of the parts' columns), or None when there is none."""
        tables = []
        for name in self.part_names():
            data = pq.read_table(pa.BufferReader((self.where / name).read_bytes()))
            if columns is not None:
                data = data.select([c for c in columns if c in data.column_names])
            tables.append(data)
        if not tables:
            return None
        return pa.concat_tables(tables, promote_options="permissive")

    def rewrite(self, table: pa.Table | None) -> None:
        """Replace every part by ``table`` (one part): a merge, or rows taken out. The new part
        is written before the old ones go, so a reader never misses a row (it may see a row
        twice for a moment; :meth:`results.ExperimentDir.load` drops such repeats)."""
        old = self.part_names()
        self.count = 0
        if table is not None and table.num_rows:
            self.append(table)
        for name in old:
            try:
                self.where.fs.delete_file((self.where / name).path)
            except FileNotFoundError:
                pass
        self.count = 1 if table is not None and table.num_rows else 0

    def compact(self) -> None:
        """Merge every part into one."""
        if self.count > 1:
            self.rewrite(self.read())
