"""Forward uncertainty propagation and Sobol' sensitivity indices.

Push input distributions (scipy.stats frozen distributions) through a batched torch
surrogate or a plain Python simulator, in-process or on a Dask cluster, and summarise the
output: moments with Monte Carlo standard errors, quantiles, a KDE density, a comparison
against a reference model on the *same* input samples, and Saltelli/Jansen Sobol' indices
with bootstrap confidence intervals.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats
from scipy.stats import qmc

__all__ = [
    "PropagationResult",
    "SobolResult",
    "ishigami",
    "ishigami_indices",
    "make_distribution",
    "propagate",
    "sample_inputs",
    "sobol_indices",
]

_METHODS = ("mc", "lhs", "sobol")


# ---------------------------------------------------------------------------- inputs
def make_distribution(spec: Mapping[str, Any], *, name: str = "input"):
    """Build a scipy.stats frozen distribution from a plain mapping (e.g. a TOML table).

    Supported ``dist`` values and their keys:

    * ``"uniform"``: ``low``, ``high``;
    * ``"normal"`` / ``"gaussian"``: ``mean``, ``std``;
    * ``"lognormal"``: ``mean``, ``std`` of the *logarithm*;
    * ``"truncnormal"``: ``mean``, ``std``, ``low``, ``high``;
    * ``"triangular"``: ``low``, ``mode``, ``high``;
    * ``"beta"``: ``a``, ``b``, optional ``low`` (0), ``high`` (1).

    Examples
    --------
    >>> make_distribution({"dist": "uniform", "low": 0.0, "high": 2.0}).mean()
    np.float64(1.0)
    """
    if not isinstance(spec, Mapping) or "dist" not in spec:
        raise ValueError(f"{name}: a distribution needs a 'dist' key, got {spec!r}")
    kind = str(spec["dist"]).lower()
    keys = {k: v for k, v in spec.items() if k != "dist"}

    def need(*ks):
        missing = [k for k in ks if k not in keys]
        if missing:
            raise ValueError(f"{name}: dist={kind!r} needs {', '.join(missing)}")
        extra = set(keys) - set(ks) - {"low", "high", "units", "description"}
        if extra:
            raise ValueError(f"{name}: unknown key(s) {sorted(extra)} for dist={kind!r}")
        vals = [float(keys[k]) for k in ks]
        if not all(math.isfinite(v) for v in vals):
            raise ValueError(f"{name}: parameters must be finite numbers, got {keys}")
        return vals

    if kind == "uniform":
        lo, hi = need("low", "high")
        if not hi > lo:
            raise ValueError(f"{name}: uniform needs high > low, got [{lo}, {hi}]")
        return stats.uniform(loc=lo, scale=hi - lo)
    if kind in ("normal", "gaussian"):
        mu, sd = need("mean", "std")
        if not sd > 0:
            raise ValueError(f"{name}: std must be positive, got {sd}")
        return stats.norm(loc=mu, scale=sd)
    if kind == "lognormal":
        mu, sd = need("mean", "std")
        if not sd > 0:
            raise ValueError(f"{name}: std must be positive, got {sd}")
        return stats.lognorm(s=sd, scale=math.exp(mu))
    if kind == "truncnormal":
        mu, sd, lo, hi = need("mean", "std", "low", "high")
        if not (sd > 0 and hi > lo):
            raise ValueError(f"{name}: truncnormal needs std > 0 and high > low")
        return stats.truncnorm((lo - mu) / sd, (hi - mu) / sd, loc=mu, scale=sd)
    if kind == "triangular":
        lo, mode, hi = need("low", "mode", "high")
        if not lo <= mode <= hi or not hi > lo:
            raise ValueError(f"{name}: triangular needs low <= mode <= high, low < high")
        return stats.triang(c=(mode - lo) / (hi - lo), loc=lo, scale=hi - lo)
    if kind == "beta":
        a, b = need("a", "b")
        lo = float(keys.get("low", 0.0))
        hi = float(keys.get("high", 1.0))
        if not (a > 0 and b > 0 and hi > lo):
            raise ValueError(f"{name}: beta needs a > 0, b > 0 and high > low")
        return stats.beta(a, b, loc=lo, scale=hi - lo)
    raise ValueError(
        f"{name}: unknown distribution {kind!r}; use one of uniform, normal, lognormal, "
        "truncnormal, triangular, beta"
    )


def _check_inputs(inputs: Mapping[str, Any]) -> tuple[list[str], list[Any]]:
    if not isinstance(inputs, Mapping) or not inputs:
        raise ValueError("inputs must be a non-empty mapping of name -> scipy.stats distribution")
    names, dists = [], []
    for k, d in inputs.items():
        if isinstance(d, Mapping):
            d = make_distribution(d, name=f"inputs[{k!r}]")
        if not isinstance(d, stats.distributions.rv_frozen) or not hasattr(d, "ppf"):
            raise ValueError(
                f"inputs[{k!r}] must be a frozen scipy.stats distribution such as "
                f"scipy.stats.uniform(0, 1) or scipy.stats.norm(0, 1); got {d!r}"
            )
        if not isinstance(d.dist, stats.rv_continuous):
            raise ValueError(f"inputs[{k!r}] must be a continuous distribution, got {d.dist.name}")
        names.append(str(k))
        dists.append(d)
    return names, dists


def _check_n(n: Any, name: str, minimum: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {n!r}")
    return int(n)


def _unit_samples(n: int, d: int, method: str, rng: np.random.Generator) -> np.ndarray:
    if method == "mc":
        return rng.random((n, d))
    if method == "lhs":
        return qmc.LatinHypercube(d=d, seed=rng).random(n)
    if method == "sobol":
        m = round(math.log2(n))
        if 2**m != n:
            raise ValueError(
                f"n_samples={n}: method='sobol' needs a power of 2 (e.g. {2 ** max(m, 1)}) "
                "to keep the balance properties of the sequence"
            )
        return qmc.Sobol(d=d, scramble=True, seed=rng).random_base2(m)
    raise ValueError(f"method must be one of {', '.join(map(repr, _METHODS))}, got {method!r}")


def sample_inputs(
    inputs: Mapping[str, Any], n_samples: int, *, method: str = "mc", seed: int | None = 0
) -> np.ndarray:
    """Draw ``(n_samples, D)`` input samples (columns in the order of ``inputs``).

    Unit-cube points (plain Monte Carlo, Latin hypercube or scrambled Sobol') are mapped
    through each marginal's inverse CDF; the inputs are independent.
    """
    names, dists = _check_inputs(inputs)
    n = _check_n(n_samples, "n_samples", 2)
    u = _unit_samples(n, len(names), method, np.random.default_rng(seed))
    return _to_inputs(u, dists)


def _to_inputs(u: np.ndarray, dists: Sequence[Any]) -> np.ndarray:
    x = np.empty_like(u)
    for j, d in enumerate(dists):
        x[:, j] = d.ppf(u[:, j])
    if not np.all(np.isfinite(x)):
        raise ValueError("an input distribution produced non-finite samples (unbounded ppf at 0/1)")
    return x


# ---------------------------------------------------------------------------- evaluation
class _Caller:
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


def _progress(total: int, description: str, enabled: bool):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        disable=not enabled,
        transient=True,
    )


def _run_model(
    caller: _Caller,
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

    with _progress(len(slices), description, progress) as bar:
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


def _remote_call(caller: _Caller, x: np.ndarray) -> np.ndarray:
    return caller(x)


# ---------------------------------------------------------------------------- moments
class _Moments:
    """Streaming central moments up to order 4 (Chan / Pébay pairwise updates)."""

    def __init__(self) -> None:
        self.n = 0
        self.mean = self.m2 = self.m3 = self.m4 = None

    def update(self, y: np.ndarray) -> None:
        nb = y.shape[0]
        mb = y.mean(0)
        c = y - mb
        c2 = c * c
        m2b, m3b, m4b = c2.sum(0), (c2 * c).sum(0), (c2 * c2).sum(0)
        if self.n == 0:
            self.n, self.mean, self.m2, self.m3, self.m4 = nb, mb, m2b, m3b, m4b
            return
        na, n = self.n, self.n + nb
        d = mb - self.mean
        m2a, m3a, m4a = self.m2, self.m3, self.m4
        self.mean = self.mean + d * nb / n
        self.m4 = (
            m4a
            + m4b
            + d**4 * na * nb * (na * na - na * nb + nb * nb) / n**3
            + 6 * d**2 * (na * na * m2b + nb * nb * m2a) / n**2
            + 4 * d * (na * m3b - nb * m3a) / n
        )
        self.m3 = m3a + m3b + d**3 * na * nb * (na - nb) / n**2 + 3 * d * (na * m2b - nb * m2a) / n
        self.m2 = m2a + m2b + d**2 * na * nb / n
        self.n = n

    def summary(self) -> dict[str, np.ndarray]:
        n = self.n
        var = self.m2 / (n - 1)
        std = np.sqrt(var)
        with np.errstate(divide="ignore", invalid="ignore"):
            g1 = np.where(self.m2 > 0, math.sqrt(n) * self.m3 / self.m2**1.5, 0.0)
            g2 = np.where(self.m2 > 0, n * self.m4 / self.m2**2 - 3.0, 0.0)
            m4 = self.m4 / n
            var_se = np.sqrt(np.maximum(m4 - var**2 * (n - 3) / (n - 1), 0.0) / n)
            std_se = np.where(std > 0, var_se / (2 * std), 0.0)
        se_skew = (
            math.sqrt(6.0 * n * (n - 1) / ((n - 2) * (n + 1) * (n + 3))) if n > 3 else math.nan
        )
        se_kurt = 2 * se_skew * math.sqrt((n * n - 1) / ((n - 3) * (n + 5))) if n > 3 else math.nan
        return {
            "mean": self.mean,
            "std": std,
            "skewness": g1,
            "kurtosis": g2,
            "se_mean": std / math.sqrt(n),
            "se_std": std_se,
            "se_skewness": np.full_like(std, se_skew),
            "se_kurtosis": np.full_like(std, se_kurt),
        }


# ---------------------------------------------------------------------------- results
def _jsonable(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return _jsonable(v.tolist())
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, float | np.floating):
        f = float(v)
        return f if math.isfinite(f) else None
    if isinstance(v, np.integer):
        return int(v)
    return v


@dataclass
class PropagationResult:
    """Output statistics of :func:`propagate`.

    Moments have the shape of one output (``()`` for a scalar QoI). Standard errors are the
    Monte Carlo ones (``s/√N`` for the mean, the 4th-moment formula for the std, the normal
    theory values for skewness and excess kurtosis); for ``"lhs"``/``"sobol"`` designs they
    are conservative.
    """

    names: list[str]
    method: str
    n_samples: int
    mean: np.ndarray
    std: np.ndarray
    skewness: np.ndarray
    kurtosis: np.ndarray
    se_mean: np.ndarray
    se_std: np.ndarray
    se_skewness: np.ndarray
    se_kurtosis: np.ndarray
    quantile_levels: np.ndarray
    quantiles: np.ndarray | None = None
    kde_x: np.ndarray | None = None
    kde_density: np.ndarray | None = None
    kde_bandwidth: float | None = None
    inputs: np.ndarray | None = None
    outputs: np.ndarray | None = None
    reference: dict[str, Any] | None = None
    reference_outputs: np.ndarray | None = None
    seconds: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def samples_per_second(self) -> float:
        """Model evaluations per second (wall clock, sampling included)."""
        return self.n_samples / self.seconds if self.seconds > 0 else math.inf

    def to_dict(self, *, include_samples: bool = False) -> dict[str, Any]:
        """JSON-ready dictionary; raw input/output samples only if ``include_samples``."""
        d = {
            "format": "pdesurrogates-propagation",
            "version": 1,
            "names": self.names,
            "method": self.method,
            "n_samples": self.n_samples,
            "seconds": self.seconds,
            "samples_per_second": self.samples_per_second,
            "moments": {
                k: getattr(self, k)
                for k in (
                    "mean",
                    "std",
                    "skewness",
                    "kurtosis",
                    "se_mean",
                    "se_std",
                    "se_skewness",
                    "se_kurtosis",
                )
            },
            "quantile_levels": self.quantile_levels,
            "quantiles": self.quantiles,
            "kde": {"x": self.kde_x, "density": self.kde_density, "bandwidth": self.kde_bandwidth},
            "reference": self.reference,
            "meta": self.meta,
        }
        if include_samples:
            d["inputs"] = self.inputs
            d["outputs"] = self.outputs
            d["reference_outputs"] = self.reference_outputs
        return _jsonable(d)

    def to_json(self, path: str | os.PathLike | None = None, **kwargs: Any) -> str:
        """Serialise (see :meth:`to_dict`); also write atomically to ``path`` when given."""
        text = json.dumps(self.to_dict(**kwargs), indent=2)
        if path is not None:
            from pdesurrogates.io import atomic_write_text

            atomic_write_text(Path(path), text + "\n")
        return text

    def summary(self) -> str:
        """Printable table of the output statistics (first 8 outputs for vector QoIs)."""
        mean = np.atleast_1d(self.mean).ravel()
        cols = min(mean.size, 8)
        lines = [
            f"Propagation: {self.n_samples} samples ({self.method}) of {', '.join(self.names)}"
            f" in {self.seconds:.3g} s ({self.samples_per_second:.4g} samples/s)"
        ]

        def row(label, arr, se=None):
            a = np.atleast_1d(arr).ravel()[:cols]
            if se is None:
                cells = [f"{v:>14.6g}" for v in a]
            else:
                s = np.atleast_1d(se).ravel()[:cols]
                cells = [f"{v:>10.5g}±{e:<8.2g}" for v, e in zip(a, s, strict=True)]
            lines.append(f"{label:<12}" + " ".join(cells))

        row("mean", self.mean, self.se_mean)
        row("std", self.std, self.se_std)
        row("skewness", self.skewness, self.se_skewness)
        row("kurtosis", self.kurtosis, self.se_kurtosis)
        if self.quantiles is not None:
            for lv, q in zip(self.quantile_levels, self.quantiles, strict=True):
                row(f"q{lv:g}", q)
        if self.reference:
            lines.append("vs reference (same input samples):")
            for k, v in self.reference.items():
                if k.startswith("kde_"):
                    continue
                if isinstance(v, int | float | np.floating):
                    lines.append(f"  {k:<26}{float(v):.6g}")
                else:
                    a = np.atleast_1d(np.asarray(v, dtype=float)).ravel()[:cols]
                    lines.append(f"  {k:<26}" + " ".join(f"{x:.4g}" for x in a))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def _kde(y: np.ndarray, n_points: int, bw_factor: float | None = None):
    if y.size < 3 or np.ptp(y) == 0:
        return None, None, None
    k = stats.gaussian_kde(y, bw_method=bw_factor)
    bw = float(k.factor * np.std(y, ddof=1))
    lo, hi = y.min() - 3 * bw, y.max() + 3 * bw
    grid = np.linspace(lo, hi, n_points)
    return grid, k(grid), bw


def _compare(y: np.ndarray, r: np.ndarray, mom_s: dict, mom_r: dict, bw: float | None):
    out: dict[str, Any] = {}
    out["mean"] = mom_r["mean"]
    out["std"] = mom_r["std"]
    out["mean_error"] = mom_s["mean"] - mom_r["mean"]
    with np.errstate(divide="ignore", invalid="ignore"):
        out["std_rel_error"] = np.where(
            mom_r["std"] > 0, (mom_s["std"] - mom_r["std"]) / mom_r["std"], np.nan
        )
    out["skewness_error"] = mom_s["skewness"] - mom_r["skewness"]
    out["kurtosis_error"] = mom_s["kurtosis"] - mom_r["kurtosis"]
    yf, rf = y.reshape(y.shape[0], -1), r.reshape(r.shape[0], -1)
    w1 = np.array([stats.wasserstein_distance(yf[:, j], rf[:, j]) for j in range(yf.shape[1])])
    ks = np.array([stats.ks_2samp(yf[:, j], rf[:, j]).statistic for j in range(yf.shape[1])])
    out["wasserstein1"] = w1.reshape(y.shape[1:]) if y.ndim > 1 else float(w1[0])
    out["ks"] = ks.reshape(y.shape[1:]) if y.ndim > 1 else float(ks[0])
    out["rmse_same_samples"] = np.sqrt(np.mean((y - r) ** 2, axis=0))
    if bw is not None and y.ndim == 1 and np.ptp(r) > 0:
        kr = stats.gaussian_kde(r, bw_method=bw / np.std(r, ddof=1))
        out["kde_density"] = kr
    return out


def propagate(
    fn: Callable,
    inputs: Mapping[str, Any],
    n_samples: int,
    *,
    method: str = "mc",
    seed: int | None = 0,
    batch_size: int = 4096,
    scheduler: Any = None,
    batched: bool = True,
    call: str = "array",
    reference: Callable | None = None,
    quantile_levels: Sequence[float] = (0.025, 0.05, 0.25, 0.5, 0.75, 0.95, 0.975),
    kde_points: int = 256,
    keep_samples: bool = True,
    progress: bool = False,
) -> PropagationResult:
    """Propagate input uncertainty through ``fn``.

    Parameters
    ----------
    fn : callable or torch.nn.Module
        The model. A torch module receives a tensor ``(B, D)`` (its parameters' dtype and
        device) under ``no_grad``; a batched callable receives a float64 array ``(B, D)``
        (or keyword arrays with ``call="kwargs"``); with ``batched=False`` it is called
        once per sample with a ``(D,)`` array (or scalar keywords). It returns one output
        per input, scalar or array.
    inputs : mapping of str to scipy.stats frozen distribution
        Independent input distributions (or mappings accepted by :func:`make_distribution`).
    n_samples : int
        Number of model evaluations (a power of 2 for ``method="sobol"``).
    method : {"mc", "lhs", "sobol"}
        Plain Monte Carlo, Latin hypercube or scrambled Sobol' points.
    seed : int or None
        Seed of the input design.
    batch_size : int
        Inputs per call (per Dask task with ``scheduler``).
    scheduler : str or distributed.Client, optional
        Address of a Dask scheduler (``"tcp://host:8786"``) or a client: batches then run
        as tasks on the cluster and are merged in input order (results do not depend on
        the cluster). Default: in-process.
    reference : callable, optional
        A reference model (e.g. the simulator) with the same calling convention, run on the
        **same** input samples; the result then holds moment errors, the Wasserstein-1 and
        KS distances and the RMSE between the two outputs.
    quantile_levels : sequence of float
        Output quantiles to report.
    kde_points : int
        Grid size of the KDE density (scalar outputs only; Scott's bandwidth, and the same
        bandwidth for the reference density).
    keep_samples : bool
        Keep the input and output samples in the result (quantiles and the KDE need them).
    progress : bool
        Show a progress bar.

    Returns
    -------
    PropagationResult

    Examples
    --------
    >>> from scipy import stats
    >>> r = propagate(lambda x: x[:, 0] + 2 * x[:, 1],
    ...               {"a": stats.norm(0, 1), "b": stats.uniform(0, 1)}, 4096, seed=1)
    >>> abs(float(r.mean) - 1.0) < 0.05, abs(float(r.std) - (1 + 4 / 12) ** 0.5) < 0.05
    (True, True)
    """
    names, _ = _check_inputs(inputs)
    n = _check_n(n_samples, "n_samples", 4)
    bs = _check_n(batch_size, "batch_size", 1)
    if call not in ("array", "kwargs"):
        raise ValueError(f"call must be 'array' or 'kwargs', got {call!r}")
    if not callable(fn):
        raise ValueError(f"fn must be callable (a torch module or a function), got {fn!r}")
    lv = np.atleast_1d(np.asarray(quantile_levels, dtype=np.float64))
    if lv.size and (np.any(lv <= 0) or np.any(lv >= 1) or not np.all(np.isfinite(lv))):
        raise ValueError(f"quantile_levels must lie in (0, 1), got {lv.tolist()}")
    t0 = time.perf_counter()
    x = sample_inputs(inputs, n, method=method, seed=seed)
    mom = _Moments()
    caller = _Caller(fn, names, batched, call)
    y = _run_model(caller, x, bs, scheduler, progress, "propagating", lambda sl, yb: mom.update(yb))
    seconds = time.perf_counter() - t0
    ms = mom.summary()
    res = PropagationResult(
        names=names,
        method=method,
        n_samples=n,
        quantile_levels=lv,
        seconds=seconds,
        **ms,
    )
    if keep_samples:
        res.inputs, res.outputs = x, y
        res.quantiles = np.quantile(y, lv, axis=0) if lv.size else None
        if y.ndim == 1:
            res.kde_x, res.kde_density, res.kde_bandwidth = _kde(y, kde_points)
    if reference is not None:
        rmom = _Moments()
        rcaller = _Caller(reference, names, batched, call)
        r = _run_model(
            rcaller, x, bs, scheduler, progress, "reference", lambda sl, rb: rmom.update(rb)
        )
        if r.shape != y.shape:
            raise ValueError(f"reference returned outputs of shape {r.shape[1:]}, fn {y.shape[1:]}")
        cmp = _compare(y, r, ms, rmom.summary(), res.kde_bandwidth)
        kr = cmp.pop("kde_density", None)
        if kr is not None and res.kde_x is not None:
            cmp["kde_x"] = res.kde_x
            cmp["kde_density"] = kr(res.kde_x)
        res.reference = cmp
        if keep_samples:
            res.reference_outputs = r
    return res


# ---------------------------------------------------------------------------- Sobol'
@dataclass
class SobolResult:
    """First-order (S1) and total (ST) Sobol' indices with bootstrap confidence intervals.

    ``S1``/``ST`` have shape ``(D, *output_shape)``; ``S1_ci``/``ST_ci`` are
    ``(2, D, *output_shape)`` percentile intervals at ``conf_level``; ``S1_conf``/``ST_conf``
    are the half-widths ``z · bootstrap std`` (SALib's convention).
    """

    names: list[str]
    n_base: int
    n_evaluations: int
    S1: np.ndarray
    ST: np.ndarray
    S1_conf: np.ndarray
    ST_conf: np.ndarray
    S1_ci: np.ndarray
    ST_ci: np.ndarray
    variance: np.ndarray
    conf_level: float
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return _jsonable(
            {
                "format": "pdesurrogates-sobol",
                "version": 1,
                **{k: getattr(self, k) for k in self.__dataclass_fields__},
            }
        )

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """Serialise; also write atomically to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            from pdesurrogates.io import atomic_write_text

            atomic_write_text(Path(path), text + "\n")
        return text

    def summary(self) -> str:
        """Printable table (scalar outputs; the first output component otherwise)."""
        lines = [
            f"Sobol' indices: {self.n_base} base samples, {self.n_evaluations} evaluations, "
            f"{int(self.conf_level * 100)}% bootstrap intervals"
        ]
        lines.append(f"{'input':<12}{'S1':>10}{'± conf':>10}{'ST':>10}{'± conf':>10}")
        for i, nm in enumerate(self.names):

            def first(a, i=i):
                return float(np.asarray(a[i]).ravel()[0])

            lines.append(
                f"{nm:<12}{first(self.S1):>10.4f}{first(self.S1_conf):>10.4f}"
                f"{first(self.ST):>10.4f}{first(self.ST_conf):>10.4f}"
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def _sobol_estimates(fa, fb, fab):
    """Saltelli (2010) S1 and Jansen ST from f(A) (N, Q), f(B) (N, Q), f(AB_i) (D, N, Q)."""
    var = np.var(np.concatenate([fa, fb], 0), axis=0, ddof=1)
    safe = np.where(var > 0, var, np.nan)
    s1 = np.mean(fb[None] * (fab - fa[None]), axis=1) / safe
    st = 0.5 * np.mean((fa[None] - fab) ** 2, axis=1) / safe
    return s1, st, var


def sobol_indices(
    fn: Callable,
    inputs: Mapping[str, Any],
    n_base: int,
    *,
    seed: int | None = 0,
    batch_size: int = 8192,
    scheduler: Any = None,
    batched: bool = True,
    call: str = "array",
    n_bootstrap: int = 200,
    conf_level: float = 0.95,
    progress: bool = False,
) -> SobolResult:
    """First-order and total Sobol' indices by the Saltelli design.

    ``N = n_base`` rows of two matrices A and B (scrambled Sobol' points of dimension 2D
    mapped through the input marginals) and the D matrices AB_i (A with column i from B):
    ``N (D + 2)`` model runs. Estimators: ``S1_i = mean(f_B (f_ABi - f_A)) / V`` (Saltelli
    2010) and ``ST_i = mean((f_A - f_ABi)²) / (2V)`` (Jansen 1999), ``V`` the variance of
    ``[f_A, f_B]``. Confidence intervals come from ``n_bootstrap`` resamples of the rows.

    ``n_base`` must be a power of 2 (at least 16). The model calling convention is that of
    :func:`propagate`. Indices are computed per output component for array outputs.

    Examples
    --------
    >>> from scipy import stats
    >>> r = sobol_indices(lambda x: x[:, 0] + 0.5 * x[:, 1],
    ...                   {"a": stats.uniform(0, 1), "b": stats.uniform(0, 1)}, 1024)
    >>> [round(float(v), 2) for v in r.S1]
    [0.8, 0.2]
    """
    names, dists = _check_inputs(inputs)
    n = _check_n(n_base, "n_base", 16)
    m = round(math.log2(n))
    if 2**m != n:
        raise ValueError(f"n_base={n} must be a power of 2 (e.g. {2**m})")
    nb = _check_n(n_bootstrap, "n_bootstrap", 0)
    if not 0 < conf_level < 1:
        raise ValueError(f"conf_level must be in (0, 1), got {conf_level}")
    d = len(names)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    u = qmc.Sobol(d=2 * d, scramble=True, seed=rng).random_base2(m)
    a = _to_inputs(u[:, :d], dists)
    b = _to_inputs(u[:, d:], dists)
    ab = np.repeat(a[None], d, 0)
    for i in range(d):
        ab[i, :, i] = b[:, i]
    x = np.concatenate([a, b, ab.reshape(d * n, d)], 0)
    caller = _Caller(fn, names, batched, call)
    y = _run_model(caller, x, _check_n(batch_size, "batch_size", 1), scheduler, progress, "sobol")
    out_shape = y.shape[1:]
    yf = y.reshape(y.shape[0], -1)
    fa, fb, fab = yf[:n], yf[n : 2 * n], yf[2 * n :].reshape(d, n, -1)
    s1, st, var = _sobol_estimates(fa, fb, fab)
    if np.any(var == 0):
        raise ValueError("the model output has zero variance; Sobol' indices are undefined")
    s1_bs = np.empty((nb, *s1.shape))
    st_bs = np.empty((nb, *st.shape))
    for r in range(nb):
        idx = rng.integers(0, n, n)
        s1_bs[r], st_bs[r], _ = _sobol_estimates(fa[idx], fb[idx], fab[:, idx])
    z = stats.norm.ppf(0.5 + conf_level / 2)
    alpha = (1 - conf_level) / 2
    if nb >= 2:
        s1_conf, st_conf = z * s1_bs.std(0, ddof=1), z * st_bs.std(0, ddof=1)
        s1_ci = np.quantile(s1_bs, [alpha, 1 - alpha], axis=0)
        st_ci = np.quantile(st_bs, [alpha, 1 - alpha], axis=0)
    else:
        s1_conf = st_conf = np.full_like(s1, np.nan)
        s1_ci = st_ci = np.full((2, *s1.shape), np.nan)

    def shp(v, lead=()):
        return v.reshape(*lead, d, *out_shape)

    return SobolResult(
        names=names,
        n_base=n,
        n_evaluations=int(x.shape[0]),
        S1=shp(s1),
        ST=shp(st),
        S1_conf=shp(s1_conf),
        ST_conf=shp(st_conf),
        S1_ci=shp(s1_ci, (2,)),
        ST_ci=shp(st_ci, (2,)),
        variance=var.reshape(out_shape),
        conf_level=float(conf_level),
        seconds=time.perf_counter() - t0,
    )


# ---------------------------------------------------------------------------- test function
def ishigami(x: np.ndarray, a: float = 7.0, b: float = 0.1) -> np.ndarray:
    """Ishigami function ``sin x1 + a sin² x2 + b x3⁴ sin x1`` for ``x`` of shape (N, 3).

    The standard inputs are independent U(-π, π).
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 3:
        raise ValueError(f"x must have shape (N, 3), got {x.shape}")
    s1 = np.sin(x[:, 0])
    return s1 + a * np.sin(x[:, 1]) ** 2 + b * x[:, 2] ** 4 * s1


def ishigami_indices(a: float = 7.0, b: float = 0.1) -> dict[str, np.ndarray]:
    """Exact variance and Sobol' indices of :func:`ishigami` with U(-π, π) inputs."""
    pi = math.pi
    v1 = 0.5 * (1 + b * pi**4 / 5) ** 2
    v2 = a * a / 8
    v13 = b * b * pi**8 * (1 / 18 - 1 / 50)
    v = v1 + v2 + v13
    s1 = np.array([v1, v2, 0.0]) / v
    st = np.array([v1 + v13, v2, v13]) / v
    return {"variance": np.array(v), "S1": s1, "ST": st}
