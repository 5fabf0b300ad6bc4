"""Multi-fidelity benchmark problems: cheap and expensive versions of the same function.

Each problem is a :class:`MultiFidelityProblem`: an ordered tuple of level functions (lowest
fidelity first, the highest last), the box of admissible inputs, a nominal cost per level
and, where a closed form is known, the exact mean and standard deviation of the highest
level under a uniform input on the box.

All functions take ``x`` of shape ``(n, d)`` (a 1-D array is read as ``n`` points when
``d == 1``) and return ``y`` of shape ``(n,)`` in float64.

Definitions
-----------
* ``forrester``: f_H = (6x − 2)² sin(12x − 4), f_L = A f_H + B (x − 0.5) + C with A = 0.5,
  B = 10, C = −5, on [0, 1].
* ``nonlinear_sin``: f_L = sin(8πx), f_H = (x − √2) f_L², on [0, 1].
* ``nonlinear_sin_wide``: the same pair on [−5, 10] (emukit's
  ``multi_fidelity_non_linear_sin`` domain: 120 periods of f_L over the box).
* ``currin`` (2-D, [0, 1]²), ``park`` (4-D, [0, 1]⁴, Park 1991 with x₂ + x₃²),
  ``borehole`` (8-D, the usual physical ranges): the two-level versions of the
  Virtual Library of Simulation Experiments.
* ``branin``: f₃ = Branin on [−5, 10] × [0, 15], f₂ = 10 √f₃(x − 2) + 2(x₁ − 0.5)
  − 3(3x₂ − 1) − 1, f₁ = f₂(1.2 (x + 2)) − 3x₂ + 1; ``levels=2`` uses (f₂, f₃),
  ``levels=3`` uses (f₁, f₂, f₃).
* ``hartmann3``: −Σᵢ αᵢ exp(−Σⱼ Aᵢⱼ (xⱼ − Pᵢⱼ)²) with α = (1, 1.2, 3, 3.2) at the
  highest level and α + δ, α + 2δ, δ = (0.01, −0.01, −0.1, 0.1), below; [0, 1]³.
* ``highdim(d)``: f_H = x₁² + Σ_{i=2..d} (2xᵢ² − x_{i−1})²,
  f_L = 0.8 f_H − Σ_{i=1..d−1} 0.4 xᵢ x_{i+1} − 50, on [−3, 3]^d (the Meng & Karniadakis
  20-D pair, generalised to any d ≥ 2).

Examples
--------
>>> import numpy as np
>>> p = forrester()
>>> p.n_levels, p.dim
(2, 1)
>>> round(float(p.high(np.array([[0.75]]))[0]), 6)
-5.993277
>>> m = p.exact_moments()
>>> round(m["mean"], 6), round(m["std"], 6)
(0.453211, 4.4562)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "MF_PROBLEMS",
    "MultiFidelityProblem",
    "borehole",
    "branin",
    "currin",
    "forrester",
    "get_mf_problem",
    "hartmann3",
    "highdim",
    "nonlinear_sin",
    "nonlinear_sin_wide",
    "park",
]

LevelFn = Callable[[np.ndarray], np.ndarray]


def _as_points(x, dim: int, name: str = "x") -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1 and dim == 1:
        arr = arr[:, None]
    if arr.ndim == 1 and arr.shape[0] == dim:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise ValueError(
            f"{name} must have shape (n, {dim}) for this {dim}-D problem; got shape {arr.shape}"
        )
    return arr


@dataclass(frozen=True)
class MultiFidelityProblem:
    """A benchmark function available at several levels of fidelity.

    Parameters
    ----------
    name : str
        Short identifier (used by the CLI and the benchmark).
    bounds : ndarray, shape (d, 2)
        Lower and upper bound of each input.
    levels : tuple of callables
        ``f(x: (n, d)) -> (n,)``, lowest fidelity first, highest last.
    costs : tuple of float
        Nominal cost of one evaluation at each level (same order as ``levels``).
    moments : dict, optional
        Exact ``{"mean", "std"}`` of the highest level for ``x ~ U(bounds)``.
    description : str
        One line on what the problem is.
    """

    name: str
    bounds: np.ndarray
    levels: tuple[LevelFn, ...]
    costs: tuple[float, ...]
    moments: dict | None = None
    description: str = ""
    _extra: dict = field(default_factory=dict, repr=False)

    @property
    def dim(self) -> int:
        """Number of inputs d."""
        return int(self.bounds.shape[0])

    @property
    def n_levels(self) -> int:
        """Number of fidelity levels."""
        return len(self.levels)

    @property
    def lower(self) -> np.ndarray:
        return self.bounds[:, 0].copy()

    @property
    def upper(self) -> np.ndarray:
        return self.bounds[:, 1].copy()

    def check_inputs(self, x, *, name: str = "x", tol: float = 1e-12) -> np.ndarray:
        """Return ``x`` as float64 ``(n, d)``; raise ``ValueError`` on NaN or points off the box."""
        arr = _as_points(x, self.dim, name)
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or infinite values; remove those points")
        span = self.upper - self.lower
        bad = (arr < self.lower - tol * span) | (arr > self.upper + tol * span)
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise ValueError(
                f"{name}[{i}, {j}] = {arr[i, j]:g} is outside the declared bounds "
                f"[{self.lower[j]:g}, {self.upper[j]:g}] of input {j} of problem {self.name!r}"
            )
        return arr

    def __call__(self, x, level: int = -1) -> np.ndarray:
        """Evaluate fidelity ``level`` (0 = lowest, -1 = highest) at ``x`` of shape (n, d)."""
        if not -self.n_levels <= level < self.n_levels:
            raise ValueError(
                f"level must be in [{-self.n_levels}, {self.n_levels - 1}] for problem "
                f"{self.name!r} with {self.n_levels} levels; got {level}"
            )
        arr = self.check_inputs(x)
        return np.asarray(self.levels[level](arr), dtype=np.float64).reshape(-1)

    def high(self, x) -> np.ndarray:
        """Highest-fidelity values, shape (n,)."""
        return self(x, -1)

    def low(self, x) -> np.ndarray:
        """Lowest-fidelity values, shape (n,)."""
        return self(x, 0)

    def from_unit(self, u) -> np.ndarray:
        """Map points of the unit cube, shape (n, d), onto the box."""
        u = np.asarray(u, dtype=np.float64)
        return self.lower + u * (self.upper - self.lower)

    def sample(self, n: int, *, seed: int | None = 0, method: str = "lhs") -> np.ndarray:
        """``n`` points in the box: Latin hypercube (``"lhs"``), ``"uniform"`` or ``"sobol"``."""
        from scipy.stats import qmc

        if not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"n must be a positive integer; got {n!r}")
        if method == "lhs":
            u = qmc.LatinHypercube(d=self.dim, seed=seed).random(n)
        elif method == "sobol":
            u = qmc.Sobol(d=self.dim, scramble=True, seed=seed).random(n)
        elif method == "uniform":
            u = np.random.default_rng(seed).random((n, self.dim))
        else:
            raise ValueError(f"method must be 'lhs', 'sobol' or 'uniform'; got {method!r}")
        return self.from_unit(u)

    def nested_design(
        self, counts: Sequence[int], *, seed: int | None = 0, method: str = "lhs"
    ) -> list[np.ndarray]:
        """Nested designs X_0 ⊇ X_1 ⊇ … (lowest fidelity first) of the given sizes.

        The lowest level is sampled by ``method``; each higher level keeps a space-filling
        subset of the level below (greedy maximin in the unit cube, started at the point
        nearest the centre).
        """
        counts = [int(c) for c in counts]
        if len(counts) != self.n_levels:
            raise ValueError(
                f"counts must give one size per level ({self.n_levels}); got {len(counts)}"
            )
        if any(c < 1 for c in counts) or any(a < b for a, b in itertools.pairwise(counts)):
            raise ValueError(
                f"counts must be positive and non-increasing (lowest fidelity first); got {counts}"
            )
        designs = [self.sample(counts[0], seed=seed, method=method)]
        for c in counts[1:]:
            prev = designs[-1]
            u = (prev - self.lower) / (self.upper - self.lower)
            chosen = [int(np.argmin(((u - 0.5) ** 2).sum(1)))]
            dmin = ((u - u[chosen[0]]) ** 2).sum(1)
            for _ in range(c - 1):
                nxt = int(np.argmax(dmin))
                chosen.append(nxt)
                dmin = np.minimum(dmin, ((u - u[nxt]) ** 2).sum(1))
            designs.append(prev[np.sort(chosen)])
        return designs

    def exact_moments(self) -> dict | None:
        """Exact ``{"mean": ..., "std": ...}`` of the highest level for x ~ U(bounds), or None."""
        return None if self.moments is None else dict(self.moments)


# ----------------------------------------------------------------------------- 1-D pairs


def forrester(*, a: float = 0.5, b: float = 10.0, c: float = -5.0) -> MultiFidelityProblem:
    """Forrester et al. (2007) pair on [0, 1]: f_L = a f_H + b (x − 0.5) + c."""

    def high(x):
        t = x[:, 0]
        return (6.0 * t - 2.0) ** 2 * np.sin(12.0 * t - 4.0)

    def low(x):
        return a * high(x) + b * (x[:, 0] - 0.5) + c

    mean = 7 * math.cos(4) / 24 - math.sin(4) / 6 - 31 * math.cos(8) / 24 + math.sin(8) / 3
    second = (
        -419 * math.sin(8) / 1536
        - 29 * math.cos(8) / 192
        - 125 * math.cos(16) / 96
        - 7811 * math.sin(16) / 1536
        + 88 / 5
    )
    return MultiFidelityProblem(
        name="forrester",
        bounds=np.array([[0.0, 1.0]]),
        levels=(low, high),
        costs=(1.0, 10.0),
        moments={"mean": mean, "std": math.sqrt(second - mean**2)},
        description=f"Forrester pair, linear correlation (A={a:g}, B={b:g}, C={c:g})",
    )


def nonlinear_sin() -> MultiFidelityProblem:
    """The nonlinearly correlated pair f_L = sin(8πx), f_H = (x − √2) sin²(8πx) on [0, 1]."""

    def low(x):
        return np.sin(8.0 * np.pi * x[:, 0])

    def high(x):
        return (x[:, 0] - math.sqrt(2.0)) * low(x) ** 2

    mean = 0.25 - math.sqrt(2.0) / 2.0
    second = -3 * math.sqrt(2.0) / 8 - 15 / (4096 * math.pi**2) + 7 / 8
    return MultiFidelityProblem(
        name="nonlinear_sin",
        bounds=np.array([[0.0, 1.0]]),
        levels=(low, high),
        costs=(1.0, 10.0),
        moments={"mean": mean, "std": math.sqrt(second - mean**2)},
        description="(x − √2)·sin²(8πx) versus sin(8πx): nonlinear correlation",
    )


def nonlinear_sin_wide() -> MultiFidelityProblem:
    """The pair of :func:`nonlinear_sin` on [−5, 10], the domain emukit uses for it.

    Exact moments: with ``sin² = (1 − cos 16πx)/2``, ``sin⁴ = 3/8 − cos(16πx)/2 + cos(32πx)/8``
    and whole periods on the box, ``E f_H = (2.5 − √2)/2`` and
    ``E f_H² = [3/8 ∫(x − √2)² dx − 15/(16π)² + 15/(4 (32π)²)] / 15``
    (``∫_{−5}^{10} (x − √2)² cos(kx) dx = 30/k²`` for k = 16π, 32π).
    """
    base = nonlinear_sin()
    r2 = math.sqrt(2.0)
    mean = (2.5 - r2) / 2.0
    poly = ((10.0 - r2) ** 3 - (-5.0 - r2) ** 3) / 3.0
    second = (3.0 / 8.0 * poly - 15.0 / (16 * math.pi) ** 2 + 15.0 / (4 * (32 * math.pi) ** 2)) / 15
    return MultiFidelityProblem(
        name="nonlinear_sin_wide",
        bounds=np.array([[-5.0, 10.0]]),
        levels=base.levels,
        costs=base.costs,
        moments={"mean": mean, "std": math.sqrt(second - mean**2)},
        description="(x − √2)·sin²(8πx) versus sin(8πx) on [−5, 10] (emukit's domain)",
    )


# ----------------------------------------------------------------------------- low-D classics


def _currin_high(x):
    x1, x2 = x[:, 0], x[:, 1]
    with np.errstate(divide="ignore", over="ignore"):
        fac = np.where(x2 > 0, 1.0 - np.exp(-1.0 / (2.0 * np.where(x2 > 0, x2, 1.0))), 1.0)
    num = 2300 * x1**3 + 1900 * x1**2 + 2092 * x1 + 60
    den = 100 * x1**3 + 500 * x1**2 + 4 * x1 + 20
    return fac * num / den


def currin() -> MultiFidelityProblem:
    """Currin et al. (1988) exponential pair on [0, 1]²."""

    def low(x):
        x1, x2 = x[:, 0], x[:, 1]
        acc = np.zeros(x.shape[0])
        for s1 in (0.05, -0.05):
            for s2 in (0.05, -0.05):
                pts = np.stack([x1 + s1, np.maximum(0.0, x2 + s2)], axis=1)
                acc += _currin_high(pts)
        return acc / 4.0

    return MultiFidelityProblem(
        name="currin",
        bounds=np.array([[0.0, 1.0], [0.0, 1.0]]),
        levels=(low, _currin_high),
        costs=(1.0, 10.0),
        description="Currin exponential function, 2-D",
    )


def _park_high(x):
    x1, x2, x3, x4 = x.T
    c = (x2 + x3**2) * x4
    # (x1/2)(sqrt(1 + c/x1²) − 1) written so that x1 = 0 is finite
    return 0.5 * (np.sqrt(x1**2 + c) - x1) + (x1 + 3.0 * x4) * np.exp(1.0 + np.sin(x3))


def park() -> MultiFidelityProblem:
    """Park (1991) pair on [0, 1]⁴."""

    def low(x):
        x1, x2, x3 = x[:, 0], x[:, 1], x[:, 2]
        return (1.0 + np.sin(x1) / 10.0) * _park_high(x) - 2.0 * x1 + x2**2 + x3**2 + 0.5

    return MultiFidelityProblem(
        name="park",
        bounds=np.array([[0.0, 1.0]] * 4),
        levels=(low, _park_high),
        costs=(1.0, 10.0),
        description="Park (1991) function, 4-D",
    )


def _borehole(x, a: float, b: float):
    rw, r, tu, hu, tl, hl, length, kw = x.T
    lg = np.log(r / rw)
    return a * tu * (hu - hl) / (lg * (b + 2.0 * length * tu / (lg * rw**2 * kw) + tu / tl))


def borehole() -> MultiFidelityProblem:
    """Borehole water-flow pair, 8-D (r_w, r, T_u, H_u, T_l, H_l, L, K_w); output in m³/yr."""
    bounds = np.array(
        [
            [0.05, 0.15],
            [100.0, 50000.0],
            [63070.0, 115600.0],
            [990.0, 1110.0],
            [63.1, 116.0],
            [700.0, 820.0],
            [1120.0, 1680.0],
            [9855.0, 12045.0],
        ]
    )
    return MultiFidelityProblem(
        name="borehole",
        bounds=bounds,
        levels=(lambda x: _borehole(x, 5.0, 1.5), lambda x: _borehole(x, 2.0 * np.pi, 1.0)),
        costs=(1.0, 10.0),
        description="Borehole flow rate, 8-D",
    )


def _branin_raw(x):
    x1, x2 = x[:, 0], x[:, 1]
    b, c, r, s, t = 5.1 / (4 * np.pi**2), 5 / np.pi, 6.0, 10.0, 1 / (8 * np.pi)
    return (x2 - b * x1**2 + c * x1 - r) ** 2 + s * (1 - t) * np.cos(x1) + s


def _branin_mid(x):
    x1, x2 = x[:, 0], x[:, 1]
    return 10.0 * np.sqrt(_branin_raw(x - 2.0)) + 2.0 * (x1 - 0.5) - 3.0 * (3.0 * x2 - 1.0) - 1.0


def _branin_low(x):
    return _branin_mid(1.2 * (x + 2.0)) - 3.0 * x[:, 1] + 1.0


def branin(*, levels: int = 3) -> MultiFidelityProblem:
    """Branin with 2 (f₂, f₃) or 3 (f₁, f₂, f₃) levels on [−5, 10] × [0, 15]."""
    if levels not in (2, 3):
        raise ValueError(f"levels must be 2 or 3; got {levels!r}")
    fns = (_branin_low, _branin_mid, _branin_raw)[3 - levels :]
    return MultiFidelityProblem(
        name="branin" if levels == 3 else "branin2",
        bounds=np.array([[-5.0, 10.0], [0.0, 15.0]]),
        levels=fns,
        costs=(1.0, 10.0, 100.0)[3 - levels :],
        description=f"Branin function, {levels} levels",
    )


_H3_A = np.array([[3.0, 10, 30], [0.1, 10, 35], [3.0, 10, 30], [0.1, 10, 35]])
_H3_P = 1e-4 * np.array(
    [[3689, 1170, 2673], [4699, 4387, 7470], [1091, 8732, 5547], [381, 5743, 8828]]
)
_H3_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_H3_DELTA = np.array([0.01, -0.01, -0.1, 0.1])


def _hartmann3(alpha):
    def f(x):
        r2 = ((x[:, None, :] - _H3_P[None]) ** 2 * _H3_A[None]).sum(-1)
        return -(np.exp(-r2) * alpha).sum(-1)

    return f


def hartmann3() -> MultiFidelityProblem:
    """Hartmann-3 with three levels (α + 2δ, α + δ, α) on [0, 1]³; minimum −3.86278."""
    return MultiFidelityProblem(
        name="hartmann3",
        bounds=np.array([[0.0, 1.0]] * 3),
        levels=tuple(_hartmann3(_H3_ALPHA + k * _H3_DELTA) for k in (2, 1, 0)),
        costs=(1.0, 10.0, 100.0),
        description="Hartmann-3 function, 3 levels",
    )


# ----------------------------------------------------------------------------- high-D pairs


def highdim(dim: int = 20) -> MultiFidelityProblem:
    """The Meng & Karniadakis quartic pair generalised to ``dim`` inputs on [−3, 3]^dim.

    Exact moments of f_H under x ~ U(−3, 3)^d (each term's moments integrated in closed
    form): mean = 3 + 339/5 (d − 1), variance = 36/5 + 206244/25 (d − 1) + 72/5
    + 15552/35 (d − 2).
    """
    if not isinstance(dim, int | np.integer) or dim < 2:
        raise ValueError(f"dim must be an integer >= 2; got {dim!r}")
    dim = int(dim)

    def high(x):
        return x[:, 0] ** 2 + ((2.0 * x[:, 1:] ** 2 - x[:, :-1]) ** 2).sum(1)

    def low(x):
        return 0.8 * high(x) - 0.4 * (x[:, :-1] * x[:, 1:]).sum(1) - 50.0

    mean = 3.0 + 339.0 / 5.0 * (dim - 1)
    var = 36 / 5 + 206244 / 25 * (dim - 1) + 72 / 5 + 15552 / 35 * (dim - 2)
    return MultiFidelityProblem(
        name=f"highdim{dim}",
        bounds=np.array([[-3.0, 3.0]] * dim),
        levels=(low, high),
        costs=(1.0, 10.0),
        moments={"mean": mean, "std": math.sqrt(var)},
        description=f"{dim}-D quartic pair (Meng & Karniadakis form)",
    )


MF_PROBLEMS: dict[str, Callable[[], MultiFidelityProblem]] = {
    "forrester": forrester,
    "nonlinear_sin": nonlinear_sin,
    "nonlinear_sin_wide": nonlinear_sin_wide,
    "currin": currin,
    "park": park,
    "borehole": borehole,
    "branin": branin,
    "branin2": lambda: branin(levels=2),
    "hartmann3": hartmann3,
    "highdim20": lambda: highdim(20),
    "highdim32": lambda: highdim(32),
    "highdim100": lambda: highdim(100),
}


def get_mf_problem(name: str) -> MultiFidelityProblem:
    """Build a problem by name (see ``MF_PROBLEMS``); ``highdimN`` works for any N >= 2."""
    key = name.strip().lower().replace("-", "_")
    if key in MF_PROBLEMS:
        return MF_PROBLEMS[key]()
    if key.startswith("highdim") and key[7:].isdigit():
        return highdim(int(key[7:]))
    raise ValueError(
        f"unknown multi-fidelity problem {name!r}; choose one of {', '.join(MF_PROBLEMS)}"
    )
