"""Forward uncertainty propagation: moments with Monte Carlo errors, quantiles, KDE, and a
comparison against a reference model on the same input samples."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from pdesurrogates.uq._runner import Caller, jsonable, run_model
from pdesurrogates.uq._sampling import _check_inputs, _check_n, sample_inputs

__all__ = ["MOMENTS", "PropagationResult", "propagate"]

#: the moments a propagation reports (attribute name -> printed name); each has a Monte
#: Carlo standard error ``se_<name>``. Kurtosis is the excess kurtosis (0 for a normal).
MOMENTS = {
    "mean": "mean",
    "std": "std",
    "skewness": "skewness",
    "excess_kurtosis": "excess kurtosis",
}


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
            "excess_kurtosis": g2,
            "se_mean": std / math.sqrt(n),
            "se_std": std_se,
            "se_skewness": np.full_like(std, se_skew),
            "se_excess_kurtosis": np.full_like(std, se_kurt),
        }


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
    excess_kurtosis: np.ndarray
    se_mean: np.ndarray
    se_std: np.ndarray
    se_skewness: np.ndarray
    se_excess_kurtosis: np.ndarray
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
            "version": 2,  # 2: kurtosis is named excess_kurtosis
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
                    "excess_kurtosis",
                    "se_mean",
                    "se_std",
                    "se_skewness",
                    "se_excess_kurtosis",
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
        return jsonable(d)

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
            lines.append(f"{label:<16}" + " ".join(cells))

        for name, label in MOMENTS.items():
            row(label, getattr(self, name), getattr(self, f"se_{name}"))
        if self.quantiles is not None:
            for lv, q in zip(self.quantile_levels, self.quantiles, strict=True):
                row(f"q{lv:g}", q)
        if self.reference:
            lines.append("vs reference (same input samples):")
            for k, v in self.reference.items():
                if k.startswith("kde_"):
                    continue
                if isinstance(v, int | float | np.floating):
                    lines.append(f"  {k:<30}{float(v):.6g}")
                else:
                    a = np.atleast_1d(np.asarray(v, dtype=float)).ravel()[:cols]
                    lines.append(f"  {k:<30}" + " ".join(f"{x:.4g}" for x in a))
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
    out: dict[str, Any] = {k: mom_r[k] for k in MOMENTS}
    out.update({f"se_{k}": mom_r[f"se_{k}"] for k in MOMENTS})
    out["mean_error"] = mom_s["mean"] - mom_r["mean"]
    with np.errstate(divide="ignore", invalid="ignore"):
        out["std_rel_error"] = np.where(
            mom_r["std"] > 0, (mom_s["std"] - mom_r["std"]) / mom_r["std"], np.nan
        )
    out["skewness_error"] = mom_s["skewness"] - mom_r["skewness"]
    out["excess_kurtosis_error"] = mom_s["excess_kurtosis"] - mom_r["excess_kurtosis"]
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
    caller = Caller(fn, names, batched, call)
    y = run_model(caller, x, bs, scheduler, progress, "propagating", lambda sl, yb: mom.update(yb))
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
        rcaller = Caller(reference, names, batched, call)
        r = run_model(
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
