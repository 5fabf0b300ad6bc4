"""Run a per-sample simulator into a dataset file: in-process or on a dask cluster.

The simulator is a function ``sample_fn(index, seed) -> (fields, params)`` that draws
all its randomness from ``(seed, index)``, so the file's values do not depend on how
many workers computed it, nor on the order results arrive in (its bytes may: HDF5 lays
chunks out in the order they are written). Output goes through :class:`DatasetWriter`:
locked against a second writer, atomic, and resumable after an interruption.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from pdesurrogates._files import DeferredInterrupt
from pdesurrogates._progress import ProgressBar, logger
from pdesurrogates.datasets._schema import FieldSpec, ParamSpec
from pdesurrogates.datasets._writer import DatasetWriter

__all__ = ["generate_dataset"]

SampleFn = Callable[[int, int], tuple[Mapping[str, Any], Mapping[str, float]]]


def _run_chunk(sample_fn: SampleFn, indices: Sequence[int], seed: int) -> list[tuple]:
    return [(int(i), *sample_fn(int(i), seed)) for i in indices]


def generate_dataset(
    path: str | os.PathLike,
    sample_fn: SampleFn,
    *,
    n_samples: int,
    coords: Mapping[str, Any],
    fields: Mapping[str, FieldSpec],
    params: Mapping[str, ParamSpec] | None = None,
    seed: int = 0,
    workers: int = 1,
    scheduler: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    chunk_size: int | None = None,
    split: Sequence[float] = (0.8, 0.1, 0.1),
    dataset_name: str = "",
    pde: str = "",
    source: str | dict = "",
    units: Mapping[str, str] | None = None,
    periodic: Mapping[str, bool] | None = None,
    compression: str | None = None,
    extra_attrs: Mapping[str, Any] | None = None,
) -> Path:
    """Generate ``n_samples`` samples with ``sample_fn`` and write a complete dataset.

    Parameters
    ----------
    path : path-like
        Output file (written as ``<path>.partial`` and renamed when complete).
    sample_fn : callable
        ``sample_fn(index, seed) -> (fields, params)``; must be picklable (a module-level
        function or a ``functools.partial`` of one) when ``workers > 1`` or ``scheduler``.
    n_samples, coords, fields, params
        As for :class:`DatasetWriter`.
    seed : int
        Base seed passed to every call; per-sample streams come from ``(seed, index)``.
    workers : int
        ``1`` runs in this process; ``K > 1`` starts a dask ``LocalCluster`` of K
        single-threaded worker processes.
    scheduler : str, optional
        Address of an existing dask scheduler (``tcp://host:8786``); overrides ``workers``.
    resume : bool
        Continue ``<path>.partial`` from an interrupted run with the same arguments; if
        ``path`` is already complete with the same arguments, do nothing. Ctrl-C stops a
        run after the sample being written (:class:`KeyboardInterrupt`) and keeps the
        partial file, logging how many samples it holds.
    progress : bool
        Show a progress bar.
    chunk_size : int, optional
        Samples per dask task (default: enough for about 4 tasks per worker in flight).
    split : 3 floats
        Fractions of the contiguous train / valid / test blocks.

    Returns
    -------
    pathlib.Path
        The complete file.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    writer = DatasetWriter(
        path,
        n_samples=n_samples,
        coords=coords,
        fields=fields,
        params=params,
        dataset_name=dataset_name,
        pde=pde,
        source=source,
        units=units,
        periodic=periodic,
        compression=compression,
        resume=resume,
        overwrite=overwrite,
    )
    done = [0]  # samples in the partial file
    try:
        with writer:
            if writer.already_complete:
                logger.info("%s is already complete (same arguments); nothing to do", path)
                return writer.finalize()
            todo = writer.missing()
            done[0] = n_samples - len(todo)
            with ProgressBar(enabled=progress) as bar:
                task = bar.add_task(
                    f"generating {Path(path).name}", total=n_samples, completed=done[0]
                )

                def store(results: list[tuple]) -> None:
                    with DeferredInterrupt():  # Ctrl-C in an HDF5 write is raised after it
                        for index, sample_fields, sample_params in results:
                            writer.write(index, sample_fields, sample_params)
                            done[0] += 1
                    bar.advance(task, len(results))

                if scheduler is None and workers == 1:
                    for i in todo:
                        store(_run_chunk(sample_fn, [i], seed))
                else:
                    _run_distributed(sample_fn, todo, seed, workers, scheduler, chunk_size, store)
            return writer.finalize(split=split, extra_attrs=extra_attrs)
    except KeyboardInterrupt:
        if writer.partial.exists():
            logger.warning(
                "interrupted: %d of %d samples are kept in %s; run again with resume=True "
                "(--resume) to continue",
                done[0],
                n_samples,
                writer.partial,
            )
        raise


def _run_distributed(sample_fn, todo, seed, workers, scheduler, chunk_size, store) -> None:
    from distributed import Client, LocalCluster, as_completed

    with ExitStack() as stack:
        if scheduler is not None:
            client = stack.enter_context(Client(scheduler, timeout="30s"))
            n_workers = max(1, len(client.scheduler_info().get("workers", {})))
        else:
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    silence_logs=logging.ERROR,
                )
            )
            client = stack.enter_context(Client(cluster))
            n_workers = workers
        size = chunk_size or max(1, min(16, len(todo) // (4 * n_workers) or 1))
        chunks = [todo[k : k + size] for k in range(0, len(todo), size)]
        in_flight = 2 * n_workers
        pending = iter(chunks)
        futures = as_completed()
        for chunk in [next(pending, None) for _ in range(in_flight)]:
            if chunk is not None:
                futures.add(client.submit(_run_chunk, sample_fn, np.asarray(chunk), seed))
        for fut in futures:
            store(fut.result())
            fut.release()
            nxt = next(pending, None)
            if nxt is not None:
                futures.add(client.submit(_run_chunk, sample_fn, np.asarray(nxt), seed))
