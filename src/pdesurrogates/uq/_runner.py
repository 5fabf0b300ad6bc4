"""Run a model over many input rows: batched, in-process or on a Dask cluster, with progress."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from pdesurrogates._progress import ProgressBar

__all__ = ["Caller", "jsonable", "run_model"]


class Caller:
    """Turns ``fn`` into ``f(X: (B, D) float64) -> ndarray (B, ...)``; picklable for Dask."""

    def __init__(self, fn: Callable, names: list[str], batched: bool, call: str):
        self.fn = fn
        self.names = names
        self.batched = batched
        self.call = call

    def __call__(self, x: np.ndarray) -> np.ndarray:
        import torch

        fn = self.fn
        if isinstance(fn, torch.nn.Module):
            p = next(iter(fn.parameters()), None)
            dtype = p.dtype if p is not None else torch.float32
            device = p.device if p is not None else torch.device("cpu")
            with torch.no_grad():
                out = fn(torch.as_tensor(x, dtype=dtype, device=device))
            return np.asarray(out.detach().cpu().double().numpy())
        if self.batched:
            arg = {k: x[:, j] for j, k in enumerate(self.names)} if self.call == "kwargs" else x
            out = fn(**arg) if self.call == "kwargs" else fn(arg)
            if isinstance(out, torch.Tensor):
                out = out.detach().cpu().double().numpy()
            return np.asarray(out, dtype=np.float64)
        rows = []
        for xi in x:
            if self.call == "kwargs":
                r = fn(**{k: float(v) for k, v in zip(self.names, xi, strict=True)})
            else:
                r = fn(xi)
            if isinstance(r, torch.Tensor):
                r = r.detach().cpu().double().numpy()
            rows.append(np.asarray(r, dtype=np.float64))
        return np.stack(rows, 0)


def _batches(n: int, size: int) -> Iterator[slice]:
    for i in range(0, n, size):
        yield slice(i, min(i + size, n))


def run_model(
    caller: Caller,
    x: np.ndarray,
    batch_size: int,
    scheduler: Any,
    progress: bool,
    description: str,
    on_batch: Callable[[slice, np.ndarray], None] | None = None,
) -> np.ndarray:
    """Evaluate ``caller`` on all rows of ``x`` in batches; returns (N, ...) float64."""
    n = x.shape[0]
    slices = list(_batches(n, batch_size))
    out: np.ndarray | None = None

    def store(sl: slice, y: np.ndarray) -> None:
        nonlocal out
        y = np.asarray(y, dtype=np.float64)
        if y.ndim == 0 or y.shape[0] != sl.stop - sl.start:
            raise ValueError(
                f"fn returned shape {y.shape} for a batch of {sl.stop - sl.start} inputs; it "
                "must return one output per input row (set batched=False for a simulator "
                "that takes one sample at a time)"
            )
        if not np.all(np.isfinite(y)):
            raise ValueError(f"fn returned non-finite values for input rows {sl.start}..{sl.stop}")
        if out is None:
            out = np.empty((n, *y.shape[1:]), dtype=np.float64)
        out[sl] = y
        if on_batch is not None:
            on_batch(sl, y)

    with ProgressBar(enabled=progress, transient=True) as bar:
        task = bar.add_task(description, total=len(slices))
        if scheduler is None:
            for sl in slices:
                store(sl, caller(x[sl]))
                bar.advance(task)
        else:
            from distributed import Client, as_completed

            own = not isinstance(scheduler, Client)
            client = Client(scheduler, set_as_default=False) if own else scheduler
            try:
                fut_caller = client.scatter(caller, broadcast=True)
                futures = {}
                for sl in slices:
                    f = client.submit(_remote_call, fut_caller, x[sl], pure=False)
                    futures[f] = sl
                done: dict[int, np.ndarray] = {}
                for f in as_completed(list(futures), loop=client.loop):
                    done[futures[f].start] = f.result()
                    bar.advance(task)
                for sl in slices:  # merge in input order: results do not depend on timing
                    store(sl, done.pop(sl.start))
            finally:
                if own:
                    client.close()
    assert out is not None
    return out


def _remote_call(caller: Caller, x: np.ndarray) -> np.ndarray:
    return caller(x)


def jsonable(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return jsonable(v.tolist())
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [jsonable(x) for x in v]
    if isinstance(v, float | np.floating):
        f = float(v)
        return f if math.isfinite(f) else None
    if isinstance(v, np.integer):
        return int(v)
    return v
