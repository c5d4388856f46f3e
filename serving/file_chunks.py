"""Streamed inputs cut into chunks of whole customers: scan, chunk ids, split in one pass.

:func:`cx_models.serving.batch.score_files` reads each input once to split it
into one Arrow file per chunk of customers, then reads a chunk at a time.
"""

from __future__ import annotations

import polars as pl

from cx_models.errors import CXDataError

__all__ = ["chunk_starts", "scan_input", "split_by_chunk"]

# the chunk-number column of split inputs
_CHUNK = "__cx_chunk"


def scan_input(path, what: str, *, spool=None) -> tuple[pl.LazyFrame, str]:
    """Return a lazy scan of an input, with each row's number in it.

    A CSV or Parquet file is scanned where it is; a database table or query
    (:class:`~cx_models.database.DatabaseSource`) is first streamed, batch by
    batch, into the Parquet file ``spool`` (in the job's scratch folder), its rows
    numbered in the order the database returned them.
    """
    from pathlib import Path

    from cx_models.io import check_csv_header, read_input, table_format
    from cx_models.schemas import ROW_INDEX

    if type(path).__name__ == "DatabaseSource":
        from cx_models.database import spool_source

        if spool is None:
            raise CXDataError(f"{path.name}: a database input needs a spool file to be scanned")
        spool_source(path, spool, what=what)
        return pl.scan_parquet(spool).with_row_index(ROW_INDEX), path.name
    path = Path(path)
    fmt = table_format(path, what=what)
    if not path.exists() or path.is_dir() or path.stat().st_size == 0:
        read_input(path, what=what)  # raises the clear missing / empty file error
    if fmt == "csv":
        check_csv_header(path, what=what)
    try:
        if fmt == "csv":
            lazy = pl.scan_csv(path, infer_schema=False)
        else:
            lazy = pl.scan_parquet(path)
        lazy.collect_schema()
    except Exception as exc:  # noqa: BLE001 - reader errors vary by engine and version
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CXDataError(
            f"{path}: cannot read the {what} file as {fmt.upper()} ({first})"
        ) from None
    return lazy.with_row_index(ROW_INDEX), str(path)


def chunk_starts(ids: pl.Series, chunk_customers: int) -> list:
    """First id of each chunk; chunk k holds ids from starts[k] up to starts[k + 1]."""
    return ids.gather(list(range(0, ids.len(), chunk_customers))).to_list()


def split_by_chunk(
    scan: pl.LazyFrame, id_expr: pl.Expr, starts: list, directory
) -> list[pl.LazyFrame]:
    """Split an input by chunk in one streamed pass: a lazy frame per chunk, then one for no id.

    Rows keep their order (and their row-number column). Chunk k holds the ids
    from ``starts[k]`` up to ``starts[k + 1]``; ``starts == [None]`` means no id
    at all. The pieces are Arrow IPC files under ``directory`` (read memory-mapped).
    polars' partitioned sink is marked unstable: should this polars not split as
    expected, or the files not fit on the disk, each chunk filters the input instead
    (the same rows, read once per chunk).
    """
    from pathlib import Path

    n_chunks = 0 if starts[0] is None else len(starts)
    chunk = (
        id_expr.bin_intervals(starts[1:], labels=False).cast(pl.UInt32)
        if n_chunks > 1
        else pl.lit(0, dtype=pl.UInt32)
    )
    key = pl.when(id_expr.is_null()).then(pl.lit(n_chunks, dtype=pl.UInt32)).otherwise(chunk)
    directory = Path(directory)
    try:
        scan.with_columns(key.alias(_CHUNK)).sink_ipc(
            pl.PartitionBy(directory, key=_CHUNK, include_key=False), mkdir=True
        )
        files: dict[int, list[str]] = {}
        for path in sorted(directory.rglob("*.ipc")):
            name, _, value = path.parent.name.partition("=")
            if name != _CHUNK or path.parent.parent != directory:
                raise ValueError(f"unexpected partition layout: {path}")
            files.setdefault(int(value), []).append(str(path))
        if set(files) - set(range(n_chunks + 1)):
            raise ValueError(f"unexpected partitions: {sorted(files)}")
    except (AttributeError, TypeError, ValueError, OSError, pl.exceptions.PolarsError):
        import shutil

        shutil.rmtree(directory, ignore_errors=True)
        return [scan.filter(_id_filter(id_expr, starts, k)) for k in range(n_chunks)] + [
            scan.filter(id_expr.is_null())
        ]
    schema = scan.collect_schema()
    empty = pl.LazyFrame(schema=schema)
    return [
        pl.scan_ipc(files[k]).select(schema.names()) if k in files else empty
        for k in range(n_chunks + 1)
    ]


def _id_filter(expr: pl.Expr, starts: list, k: int) -> pl.Expr:
    cond = expr.is_not_null()
    if k > 0:
        cond = cond & (expr >= starts[k])
    if k + 1 < len(starts):
        cond = cond & (expr < starts[k + 1])
    return cond
