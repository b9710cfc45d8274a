"""The engines that run the scorer over the files: :mod:`~cecli.engines.local` (this process,
streaming) and :mod:`~cecli.engines.dask` (a Dask cluster, reached through
:mod:`~cecli.engines.dask_cluster`). Both import :mod:`cecli.files` (the loop over files
around :mod:`cecli.scoring`), never each other; :func:`cecli.pipeline.compute` chooses one.
"""
