"""Reading and writing files: byte sources, one module per format, Arrow to NumPy, column selection, writers.

From the bottom up: :mod:`~cecli.io.base` (settings, :class:`~cecli.io.base.Batch`,
:class:`~cecli.io.base.CellError`), :mod:`~cecli.io.streams` (bytes, decompression),
:mod:`~cecli.io.convert` (Arrow arrays to NumPy), :mod:`~cecli.io.inputs` (the
:class:`~cecli.io.inputs.Input` every format extends, and :func:`~cecli.io.inputs.aligned`),
:mod:`~cecli.io.csv`, :mod:`~cecli.io.json` (with :mod:`~cecli.io.ndjson`, :mod:`~cecli.io.json_array`,
:mod:`~cecli.io.json_columns` and :mod:`~cecli.io.json_values`), :mod:`~cecli.io.parquet`, :mod:`~cecli.io.ipc`
(Arrow IPC), :mod:`~cecli.io.npy` (NumPy),
:mod:`~cecli.io.remote` (URLs), :mod:`~cecli.io.expand` (folders and patterns to files) and
:mod:`~cecli.io.sources` (:func:`~cecli.io.sources.open_input`: sniffing and dispatch).
:mod:`~cecli.io.columns` chooses the columns, :mod:`~cecli.io.writers` writes per-sample files.
"""
