"""Input distributions and designs: scipy.stats marginals, Monte Carlo / LHS / Sobol' points."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats
from scipy.stats import qmc

__all__ = ["make_distribution", "sample_inputs"]

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
