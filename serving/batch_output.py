"""The last step of a batch job from files: the ranked scores copied into the output.

See :func:`write_ranked`; used by :func:`cx_models.serving.batch_files.score_files`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["write_ranked"]


def _parquet_options(schema) -> dict:
    """Parquet writer options for scored tables.

    Scores are nearly all distinct: dictionary encoding only costs time (and
    makes a slightly larger file); no statistics for the long driver texts.
    """
    return {
        "use_dictionary": False,
        "write_statistics": [name for name in schema.names if name != "drivers"],
    }


def write_ranked(tmp, out, out_format: str, ranks: np.ndarray, metadata: dict) -> None:
    """Copy the scores batch by batch, setting the global rank, then rename into place."""
    import json
    from pathlib import Path

    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from cx_models.io import METADATA_KEY
    from cx_models.outputs import atomic_output

    # read, not memory-mapped: a mapped file's pages count in the job's resident memory
    mapped = pa.OSFile(str(tmp), "rb")
    source = pa.ipc.open_file(mapped)
    schema = source.schema
    position = schema.get_field_index("priority_rank")
    meta_text = json.dumps(metadata, default=str, sort_keys=True)
    try:
        with atomic_output(out) as final:
            if out_format == "parquet":
                meta = dict(schema.metadata or {})
                meta[METADATA_KEY.encode()] = meta_text.encode()
                writer = pq.ParquetWriter(
                    final, schema.with_metadata(meta), **_parquet_options(schema)
                )
            else:
                writer = pacsv.CSVWriter(final, schema)
            done = 0
            for batch in range(source.num_record_batches):  # a scored chunk at a time
                table = pa.Table.from_batches([source.get_batch(batch)])
                rank = pa.array(ranks[done : done + table.num_rows], type=pa.int64())
                table = table.set_column(position, "priority_rank", rank)
                writer.write_table(table.cast(writer.schema) if out_format == "parquet" else table)
                done += table.num_rows
            writer.close()
        if out_format == "csv":
            Path(str(out) + ".meta.json").write_text(meta_text + "\n")
    finally:
        mapped.close()
