"""Batch scoring from files: streamed, chunk by chunk, with one global rank and one rename.

See :func:`score_files`; :mod:`cx_models.serving.batch` re-exports it.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pandas as pd
from cx_models.serving.batch_output import write_ranked
from cx_models.serving.file_chunks import chunk_starts, scan_input, split_by_chunk
from cx_models.serving.predictors import (
    BatchResult,
    as_predictor,
    count_unseen,
    prepare_attributes,
)
from cx_models.serving.predictors import (
    extras as _extras,
)
from cx_models.serving.predictors import (
    settings_for as _settings,
)
from cx_models.serving.predictors import (
    trained_spec as _trained_spec,
)

from cx_models.contract import require_columns
from cx_models.errors import CXDataError
from cx_models.features import features_from_validated, to_pandas_features
from cx_models.nco import rank_arrays
from cx_models.schemas import (
    validate_surveys,
    validate_transactions,
)
from cx_models.settings import FeatureSpec, ScoreParams
from cx_models.sources import EventInputs
from cx_models.threads import thread_count
from cx_models.timeutil import parse_as_of

__all__ = ["score_files"]


def score_files(
    model,
    inputs: EventInputs | str | os.PathLike,
    *,
    as_of,
    out,
    params: ScoreParams | None = None,
    chunk_customers: int = 200_000,
    metadata: dict | None = None,
    progress: Callable[[int, int], None] | None = None,
    **keywords,
) -> BatchResult:
    """Score CSV/Parquet inputs chunk by chunk, reading only one chunk's events at a time.

    The customer id column is read once to decide the id type and cut the
    customers into chunks of ``chunk_customers``; each input is then split in one
    pass into a temporary Arrow file per chunk next to ``out`` (disk: about the
    inputs' uncompressed size). Each chunk's transactions and survey answers are
    read (rows keep their numbers in the whole file), validated, turned into
    features and scored, and the scores are appended to a temporary Arrow file.
    The priority rank is computed over the whole base at the end, and the scores
    are copied into ``out`` (Parquet or CSV) with one rename: a failed job leaves
    nothing at ``out``. Memory holds a few chunks plus three numbers per customer
    for the ranking.

    ``inputs`` names the transactions and survey files and how to read them
    (:class:`~cx_models.sources.EventInputs`; a single path is a transactions file
    read the default way). The features are built the way the model was trained
    (its :class:`~cx_models.settings.FeatureSpec`); ``params`` (or its fields as
    keywords) override the trained scoring settings.

    ``model`` may also be a :class:`concurrent.futures.Future` of one, still
    loading: scanning ids and validating the first chunks go on meanwhile (their
    features wait for the model's feature definition).
    ``metadata`` may be a callable taking the model and returning the dict.

    Returns a :class:`BatchResult` whose ``scored`` is ``None`` (the scores are
    in ``out``) and whose reports add up every chunk.

    Databases: an input may be a :class:`~cx_models.database.DatabaseSource`
    (streamed once, in record batches, into the job's scratch folder and then
    chunked as a file is) and ``out`` a :class:`~cx_models.database.DatabaseTarget`
    (the ranked scores are staged as Parquet, then replace the table's rows in
    one transaction, ``metadata`` going to ``<table>_meta``).
    """
    from cx_models.io import table_format
    from cx_models.outputs import job_scratch

    if chunk_customers < 1:
        raise CXDataError(f"chunk_customers must be at least 1, got {chunk_customers}")
    # a database output is staged in a scratch folder of the system's temporary directory
    anchor = out if table_format(out, what="output") != "database" else _database_anchor(out)
    with job_scratch(anchor) as scratch:
        return _score_files(
            model,
            inputs,
            as_of=as_of,
            out=out,
            anchor=anchor,
            scratch=scratch,
            params=params,
            chunk_customers=chunk_customers,
            metadata=metadata,
            progress=progress,
            keywords=keywords,
        )


def _database_anchor(target):
    import tempfile
    from pathlib import Path

    return Path(tempfile.gettempdir()) / "cx-models" / f"{target.table}.parquet"


def _score_files(
    model, inputs, *, as_of, out, anchor, scratch, params, chunk_customers, metadata, progress,
    keywords,
) -> BatchResult:
    """Run :func:`score_files` inside the job's scratch folder."""
    from pathlib import Path

    import pyarrow as pa

    from cx_models.cells import canonical_id_expr, decide_scan_id_dtype, require_scalar_columns
    from cx_models.io import table_format
    from cx_models.outputs import check_distinct, job_scratch, write_errno, write_failure
    from cx_models.quarantine import merge_reports, require_usable
    from cx_models.sources import source_name

    # a bare path takes the format from the keywords of earlier releases, if any
    fmt = inputs.fmt if isinstance(inputs, EventInputs) else None
    inputs = EventInputs.of(inputs)
    transactions, surveys = inputs.transactions, inputs.surveys
    params, fmt, asked = _settings("score_files", params, fmt, keywords)
    as_of = parse_as_of(as_of)
    out_format = table_format(out, what="output")
    out = Path(out) if out_format != "database" else out
    check_distinct(inputs.sources(), {"out": out})
    attributes = inputs.attributes
    tcols, scols = fmt.transactions, fmt.surveys
    tx_scan, tx_source = scan_input(
        transactions, "transactions", spool=scratch / "transactions.parquet"
    )
    schema = tx_scan.collect_schema()
    require_columns(schema.names(), tx_source, tcols.roles())
    require_scalar_columns(schema, tx_source, tcols.roles())
    # 1. ids: decide the id type on the whole column, cut customers into chunks
    id_dtype = decide_scan_id_dtype(tx_scan, tcols.customer, schema[tcols.customer], tx_source)
    ids = (
        tx_scan.select(canonical_id_expr(tcols.customer, schema[tcols.customer], id_dtype))
        .drop_nulls()
        .unique()
        .collect(engine="streaming")
        .to_series()
        .sort()
    )
    starts = chunk_starts(ids, chunk_customers) if ids.len() else [None]
    n_chunks = len(starts)
    tx_id = canonical_id_expr(tcols.customer, schema[tcols.customer], id_dtype)
    sv_scan = sv_id = None
    if surveys is not None:
        sv_scan, sv_source = scan_input(surveys, "surveys", spool=scratch / "surveys.parquet")
        sv_schema = sv_scan.collect_schema()
        id_role = {"customer_id": scols.roles()["customer_id"]}
        require_columns(sv_schema.names(), sv_source, id_role)
        require_scalar_columns(sv_schema, sv_source, scols.roles())
        sv_id = canonical_id_expr(scols.customer, sv_schema[scols.customer], id_dtype)

    # a Future: the model is still loading (the CLI loads it while the ids are scanned)
    loading = model if isinstance(model, Future) else None
    predictor = None if loading is not None else as_predictor(model)
    params = params.to_pyfunc()

    def trained_spec() -> FeatureSpec:  # waits for a model still loading
        return _trained_spec(loading.result() if loading is not None else model, asked)

    if loading is None:
        trained_spec()  # a look-back that differs fails before any work
    validated_attributes: list = []
    attributes_lock = threading.Lock()

    def customer_attributes():
        """Return the attributes validated for the model (once; waits for it to load)."""
        if attributes is None:
            return None
        with attributes_lock:
            if not validated_attributes:
                loaded = loading.result() if loading is not None else model
                validated_attributes.append(prepare_attributes(loaded, attributes, id_dtype))
        return validated_attributes[0]

    unseen: dict = {}
    tx_reports, sv_reports = [], []
    rank_parts = []
    done = 0
    orphans = 0
    # every temporary file of the job lives in its scratch folder, removed at its end
    with job_scratch(anchor) as scratch:
        tmp = scratch / "scores.arrow"
        writer = scores_schema = None
        try:
            # each input split once into one file per chunk (plus one for rows without an
            # id): filtering the whole input for every chunk read it n_chunks times
            parts = scratch / "parts"
            tx_parts = split_by_chunk(tx_scan, tx_id, starts, parts / "transactions")
            sv_parts = (
                [None] * len(tx_parts)
                if sv_scan is None
                else split_by_chunk(sv_scan, sv_id, starts, parts / "surveys")
            )
            # the last piece holds the rows whose id is missing: they belong to no chunk and
            # only add to the counts and the quarantine (which is sorted by row number)
            last = len(tx_parts) - 1
            pieces = [(tx_parts[k], sv_parts[k], k < last) for k in range(last + 1)]

            def prepare(piece):
                """Read, validate and featurise one chunk (polars: mostly outside the GIL)."""
                tx_lazy, sv_lazy, has_ids = piece
                spec = trained_spec()  # its extra transaction columns are validated too
                tx_v = validate_transactions(
                    tx_lazy.collect(), as_of=as_of, fmt=fmt, id_dtype=id_dtype,
                    require_usable=False, extras=spec.extras,
                )
                tx_v.report.source = tx_source
                sv_v = sv_data = None
                if sv_lazy is not None:
                    sv_v = validate_surveys(
                        sv_lazy.collect(), as_of=as_of, fmt=fmt, id_dtype=id_dtype
                    )
                    sv_v.report.source = source_name(surveys)
                    sv_data = sv_v.data
                if not has_ids or tx_v.data.height == 0:
                    lost = 0
                    if sv_data is not None and sv_data.height:
                        lost = sv_data["customer_id"].drop_nulls().n_unique()
                    return tx_v.report, sv_v and sv_v.report, None, lost
                attrs = customer_attributes()
                feats, chunk_orphans = features_from_validated(
                    tx_v.data, sv_data, as_of=as_of, spec=spec,
                    attributes=None if attrs is None else attrs.data,
                )
                frame = to_pandas_features(feats, as_of=as_of, spec=spec)
                if attrs is not None:
                    frame.attrs["attributes"] = dict(attrs.kinds)
                return tx_v.report, sv_v and sv_v.report, frame, chunk_orphans

            def write(scored: pd.DataFrame, drivers=None) -> None:
                nonlocal writer, scores_schema
                table = pa.Table.from_pandas(scored, preserve_index=False)
                if drivers is not None:
                    where = table.schema.get_field_index("drivers")
                    table = table.set_column(where, "drivers", drivers())
                if writer is None:
                    # the temporary file is read once more, memory-mapped: Arrow IPC, no
                    # encoding (a third of the time of an uncompressed Parquet file)
                    scores_schema = table.schema
                    writer = pa.ipc.new_file(tmp, scores_schema)
                writer.write_table(table.cast(scores_schema))

            # a pipeline: the next chunk is read and featurised, and the last one written,
            # while this one is scored (polars, pyarrow and XGBoost work outside the GIL)
            with (
                ThreadPoolExecutor(
                    max_workers=min(2, thread_count()), thread_name_prefix="cx-prefetch"
                ) as pool,
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="cx-write") as writes,
            ):
                written = []

                def still_loading() -> bool:
                    return loading is not None and not loading.done()

                for tx_rep, sv_rep, frame, chunk_orphans in _ahead(
                    pool, prepare, pieces, still_loading
                ):
                    tx_reports.append(tx_rep)
                    if sv_rep is not None:
                        sv_reports.append(sv_rep)
                    orphans += chunk_orphans
                    if frame is None:
                        continue
                    if predictor is None:
                        predictor = as_predictor(loading.result())
                    drivers = None
                    if hasattr(predictor, "predict_deferred"):
                        # driver texts are made in the writer thread, beside the next chunk
                        scored, drivers = predictor.predict_deferred(frame, params=params)
                    else:
                        scored = pd.DataFrame(predictor.predict(frame, params=params))
                    extras = _extras(frame)
                    for col in extras.columns:  # survey answers, then any attributes
                        scored[col] = extras[col].to_numpy()
                    if attributes is not None:
                        count_unseen(loading.result() if loading else model, frame, unseen)
                    rank_parts.append(_rank_part(scored, rank_parts))
                    if len(written) >= 2:  # at most two chunks wait for the writer
                        written[-2].result()
                    written.append(writes.submit(write, scored, drivers))
                    done += len(frame)
                    if progress is not None:
                        progress(done, ids.len())
                # 2. one global rank (while the last chunk is written)
                ranks = (
                    rank_arrays(  # rows in id order: a row's position ranks its id
                        *(np.concatenate([part[i] for part in rank_parts]) for i in (0, 1)), None
                    )
                    if rank_parts
                    else np.empty(0, dtype=np.int64)
                )
                for future in written:  # in order; re-raises a failed write
                    future.result()
            tx_report = merge_reports(tx_reports)
            require_usable(tx_report, as_of, fmt.time_format)
            sv_report = merge_reports(sv_reports) if sv_reports else None
            if writer is not None:
                writer.close()
                writer = None
            # 3. the final file in one rename
            if callable(metadata):
                metadata = metadata(model.result() if loading is not None else model)
            if out_format == "database":
                from cx_models.database import write_target

                staged = scratch / "scored.parquet"
                write_ranked(tmp, staged, "parquet", ranks, metadata or {})
                write_target(staged, out, metadata=metadata or {})
            else:
                write_ranked(tmp, out, out_format, ranks, metadata or {})
        except OSError as exc:
            if write_errno(exc) is None:
                raise
            raise write_failure(out, exc) from None
        finally:
            if writer is not None:
                with contextlib.suppress(OSError):  # a full disk fails the close too
                    writer.close()
    return BatchResult(
        scored=None,
        transactions=tx_report,
        surveys=sv_report,
        survey_customers_without_purchase=int(orphans),
        chunks=n_chunks,
        customers=done,
        attributes=validated_attributes[0].report if validated_attributes else None,
        unseen_levels=unseen,
    )


def _rank_part(scored: pd.DataFrame, parts: list) -> tuple:
    """Keep what the global rank needs of a scored chunk: value at risk, NCO, last id.

    Chunks hold ascending ranges of ids, each sorted, so the rows of the scored
    table are in id order and the rank's last tie-break is a row's position: no
    id is kept for the rank (4 M text ids cost more than the scores themselves).
    """
    ids = scored["customer_id"]
    after = parts[-1][2] if parts else None
    first = ids.iloc[0] if len(ids) else None
    if not ids.is_monotonic_increasing or not (after is None or first is None or first > after):
        raise RuntimeError("scored chunks out of customer-id order: the global rank needs them so")
    values = (scored[col].to_numpy(dtype=float, copy=True) for col in ("value_at_risk", "nco"))
    return (*values, ids.iloc[-1] if len(ids) else after)


def _ahead(pool, prepare, pieces: list, busy: Callable[[], bool]):
    """Yield ``prepare(piece)`` for each piece in order, prepared ahead in ``pool``.

    One piece ahead of the consumer; once the first is ready, up to three (on the
    pool's workers) while ``busy()`` — the model still loading, mostly one core of
    Python, leaves the other core to preparing chunks. The first piece is prepared
    alone: it is the one the consumer waits for.
    """
    ahead: deque[Future] = deque()
    submitted = 0

    def top_up(depth: int) -> None:
        nonlocal submitted
        while len(ahead) < depth and submitted < len(pieces):
            ahead.append(pool.submit(prepare, pieces[submitted]))
            submitted += 1

    top_up(1)
    while ahead:
        result = ahead.popleft().result()
        top_up(3 if busy() else 1)  # the next piece is prepared while this one is used
        yield result
