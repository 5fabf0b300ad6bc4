"""One entry point for two-level multi-fidelity regression: AR(1) co-kriging, NARGP or
MF-DNN, chosen by cross-validated error on the high-fidelity points.

The two Gaussian processes are scored in closed form, as at a new input: each
high-fidelity point (up to :data:`LOO_MAX` of them; above, each of at most 5 folds,
:func:`cv_folds`) is removed from every level (its low-fidelity value included), kernel
hyperparameters fixed and link coefficients re-estimated (:func:`gp_score`,
:meth:`~pdesurrogates.surrogates.CoKrigingGP.cv_error` with ``all_levels=True``). The
MF-DNN by refitting its top correction without each of the 5 folds
(:func:`~pdesurrogates.training.fit_multifidelity_net` with ``criterion="kfold"``); its
low-fidelity net keeps the fold's low-fidelity points, so its score adds the
low-fidelity part of the first Gaussian process's error on the same folds
(:func:`mfdnn_score`). Scores are RMS errors divided by the standard deviation of the
high-fidelity outputs; the lowest
wins, near-ties going to the simpler method (:func:`select_method`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from pdesurrogates._progress import logger
from pdesurrogates.surrogates import CoKrigingGP
from pdesurrogates.surrogates._cokriging_fit import check_levels

__all__ = [
    "METHODS",
    "MultiFidelityModel",
    "cv_folds",
    "fit_multifidelity",
    "fit_multifidelity_levels",
    "gp_score",
    "mfdnn_score",
    "select_method",
]

#: Methods :func:`fit_multifidelity` fits, in the order ``"auto"`` tries them.
METHODS = ("ar1", "nargp", "mfdnn")


@dataclass
class MultiFidelityModel:
    """A fitted two-level model and how it was chosen (:func:`fit_multifidelity`).

    Attributes
    ----------
    method : str
        ``"ar1"``, ``"nargp"`` or ``"mfdnn"``.
    model : torch.nn.Module
        The fitted :class:`~pdesurrogates.surrogates.CoKrigingGP`, or the MF-DNN
        (a :class:`~pdesurrogates.surrogates.Ensemble` or one
        :class:`~pdesurrogates.surrogates.MultiFidelityNet`); save it with
        :func:`pdesurrogates.save`.
    scores : dict
        Cross-validated error of every candidate tried (RMS over the high-fidelity points
        divided by their standard deviation; lower is better).
    bounds : ndarray ``(d, 2)``
        Input box the inputs were scaled with (declared or the data's range).
    bounds_declared : bool
        Whether ``bounds`` was given (predictions outside it then warn: the model warns,
        :attr:`model` used directly and a saved and loaded model too).
    seconds : dict
        Fit time of every candidate (s).
    cv_detail : dict
        The MF-DNN score's parts (:func:`mfdnn_score`): ``"mfdnn_folds"``, its k-fold
        error, and ``"low_part"``, the low-fidelity part added to it.
    candidates : dict
        Every fitted candidate (method → :class:`MultiFidelityModel`, this one included),
        to compare their predictions.
    """

    method: str
    model: torch.nn.Module
    scores: dict = field(default_factory=dict)
    bounds: np.ndarray | None = None
    bounds_declared: bool = False
    seconds: dict = field(default_factory=dict)
    members: list = field(default_factory=list, repr=False)
    candidates: dict = field(default_factory=dict, repr=False)
    cv_detail: dict = field(default_factory=dict, repr=False)

    def predict(self, x):
        """Prediction at ``x`` ``(n, d)`` in the user's units: a
        :class:`pdesurrogates.uq.Prediction` (Gaussian for the GPs, the MF-DNN members
        as samples)."""
        from pdesurrogates.uq import Prediction

        xa = np.asarray(x.detach().cpu() if torch.is_tensor(x) else x, dtype=np.float64)
        if xa.ndim == 1 and self.bounds is not None and self.bounds.shape[0] == 1:
            xa = xa[:, None]
        if isinstance(self.model, CoKrigingGP):
            return self.model.predict(xa)
        if len(self.members) > 1:  # the Ensemble of the members (warns once)
            samples = self.model.predict(xa).samples
            return Prediction(None, samples=np.asarray(samples, dtype=np.float64))
        m = self.members[0]
        with torch.no_grad():
            return Prediction(
                m(torch.as_tensor(xa, dtype=next(m.parameters()).dtype)).double().numpy()
            )


#: Up to this many highest-fidelity points the MF-DNN candidate uses :data:`SMALL_MFDNN`.
SMALL_HI = 50
#: MF-DNN settings for small designs: two members, two penalties and short stages.
#: On 12/6 points the default (4 members, 6 penalties scored on 5 folds, 1,000 Adam
#: steps per stage) spent minutes on a fit of a few dozen weights.
SMALL_MFDNN = {
    "n_members": 2,
    "keep": 2,
    "l2_grid": (1e-5, 1e-2),
    "fit_kwargs": {"adam_steps": 300, "lbfgs_steps": 100, "lm_steps": 50},
}


def cv_folds(n: int, seed: int, max_folds: int = 5) -> list[np.ndarray]:
    """``min(n, max_folds)`` folds of a seeded permutation of ``range(n)``."""
    perm = np.random.default_rng(seed).permutation(n)
    return [f for f in np.array_split(perm, min(n, max_folds)) if len(f)]


#: Scores within this factor of the lowest (or :data:`TIE_ABS` above it) are a tie, won
#: by the method that comes first in :data:`METHODS` (the simpler one).
TIE_REL = 1.10
TIE_ABS = 1e-6


def select_method(scores: dict) -> str:
    """The method of lowest score, near-ties (within :data:`TIE_REL` times the lowest,
    or :data:`TIE_ABS` above it) going to the first in the order of :data:`METHODS`."""
    low = min(scores.values())
    order = [m for m in METHODS if m in scores] + [m for m in scores if m not in METHODS]
    return next(m for m in order if scores[m] <= TIE_REL * low + TIE_ABS)


def mfdnn_score(fold_score: float, low_part: float) -> float:
    """The MF-DNN's score: ``sqrt(fold_score² + low_part²)``.

    ``fold_score`` is its k-fold error with the low-fidelity net trained on every point,
    so at a held-out high-fidelity input the net sees a low-fidelity value it was fitted
    to: the error a new input adds by the low-fidelity emulator is missing.
    ``low_part`` is that error for the Gaussian process
    (:func:`low_fidelity_part`): an optimistic stand-in for the MF-DNN's own (a fold
    refit of the whole network would cost the fit five times).
    """
    return float(np.hypot(fold_score, low_part))


def low_fidelity_part(gp, folds) -> float:
    """RMS difference of a fitted GP's held-out residuals with the fold removed from
    every level and from the highest level only (:meth:`CoKrigingGP.cv_residuals`): the
    part of its cross-validated error due to emulating the lower levels."""
    full = gp.cv_residuals(folds, all_levels=True)
    top = gp.cv_residuals(folds)
    return float((full - top).square().mean().sqrt())


#: Up to this many highest-fidelity points the Gaussian processes are scored by
#: leave-one-out (each point held out from every level), above it on the folds of
#: :func:`cv_folds`.
LOO_MAX = 200


def gp_score(gp, folds) -> float:
    """Score of a fitted :class:`CoKrigingGP` in :func:`fit_multifidelity`: its held-out
    error with each point (up to :data:`LOO_MAX` points, else each of ``folds``) removed
    from every level (:meth:`CoKrigingGP.cv_error` with ``all_levels=True``).

    Why leave-one-out rather than the five folds: in closed form it costs no refit, and
    on 10–20 points the five-fold estimate depends on which points share a fold. On
    Hartmann-3 80/40/20 (seed 0) five folds scored NARGP 0.052 and AR(1) 0.075, and auto
    took NARGP (test error 0.052 against AR(1)'s 0.033); leave-one-out scores them 0.065
    and 0.066, a tie won by AR(1).
    """
    n = len(gp.levels[-1].y_train)
    return gp.cv_error(None if n <= LOO_MAX else folds, all_levels=True)


def _fit_gp(kind, xs, ys, bounds, seed, folds, progress):
    gp = CoKrigingGP(
        in_dim=xs[0].shape[1], n_levels=len(xs), kind=kind, seed=seed, require_nested=False
    )
    gp.fit_levels(xs, ys, bounds=bounds, progress=progress)
    return gp, gp_score(gp, folds), [gp]


def _fit_mfdnn(xs, ys, bounds, seed, folds, progress, kwargs):
    from pdesurrogates.training._multifidelity import fit_multifidelity_net

    n_hi = len(ys[-1])
    kw = {"n_members": 4, "keep": 2}
    if n_hi <= SMALL_HI:
        kw.update(SMALL_MFDNN)
    kw.update(kwargs)
    if n_hi >= 6 and "criterion" not in kwargs:
        kw.update(criterion="kfold", folds=len(folds))
    fit = fit_multifidelity_net(
        list(xs), list(ys), bounds=bounds, seed=seed, progress=progress, **kw
    )
    scores = [fit.scores[i] for i in fit.kept]
    score = float(np.mean(scores)) if fit.criterion == "kfold" else float("inf")
    return fit.model, score, fit.members


def fit_multifidelity(
    x_lo,
    y_lo,
    x_hi,
    y_hi,
    method: str = "auto",
    bounds=None,
    seed: int = 0,
    *,
    methods: tuple[str, ...] = METHODS,
    mfdnn_kwargs: dict | None = None,
    progress: bool = False,
) -> MultiFidelityModel:
    """Fit a two-level multi-fidelity model; with ``method="auto"`` pick the best of AR(1)
    co-kriging, NARGP and MF-DNN by cross-validated error on the high-fidelity points.

    Every method maps the inputs to the unit box (``bounds`` or the data's range) and
    standardises each fidelity's outputs internally; predictions and standard deviations
    come back in the user's units.

    Parameters
    ----------
    x_lo, y_lo : arrays ``(n_lo, d)``, ``(n_lo,)``
        Low-fidelity data.
    x_hi, y_hi : arrays ``(n_hi, d)``, ``(n_hi,)``
        High-fidelity data (at least 3 points). They need not be a subset of ``x_lo``:
        where they are not, the GP methods feed the low-fidelity posterior **mean** at
        ``x_hi`` to the high level during fitting (NARGP's predictions still integrate
        over the low-fidelity posterior by Monte Carlo), and the MF-DNN uses its own
        low-fidelity net's prediction there, as everywhere.
    method : {"auto", "ar1", "nargp", "mfdnn"}
        The model, or ``"auto"``: fit each of ``methods`` and keep the one of lowest
        cross-validated error: the GPs by closed-form leave-one-out residuals with each
        point removed from every level (fixed hyperparameters; :func:`gp_score`), the
        MF-DNN by refitting its top correction without each of at most 5 folds
        (:func:`cv_folds`), plus the GP's low-fidelity error part
        (:func:`mfdnn_score`). The MF-DNN takes part only from 6 high-fidelity points.
        Scores within 10 % (or 1e-6) of the lowest count as a tie, won by the simpler
        method (AR(1), then NARGP, then MF-DNN; :func:`select_method`).
    bounds : array ``(d, 2)``, optional
        Input box. Inputs outside it (training or prediction) get a ``UserWarning`` naming
        the dimension.
    seed : int
        Seed of every fit and of the folds.
    methods : tuple of str
        Candidates of ``"auto"``.
    mfdnn_kwargs : dict, optional
        Passed to :func:`~pdesurrogates.training.fit_multifidelity_net`.
    progress : bool
        Progress bars of the fits.

    Returns
    -------
    MultiFidelityModel
        ``.method``, ``.scores`` (every candidate's error) and ``.predict(x)``. The
        choice and the scores also go to the ``pdesurrogates`` logger.

    Raises
    ------
    ValueError
        On shape mismatches, NaN, fewer than 3 high-fidelity points, a constant fidelity
        (zero variance), or an unknown method.

    Examples
    --------
    >>> import numpy as np
    >>> from pdesurrogates.solvers.reference import forrester
    >>> p = forrester()
    >>> x_lo = np.linspace(0, 1, 11)[:, None]; x_hi = x_lo[[0, 4, 6, 10]]
    >>> m = fit_multifidelity(x_lo, p.low(x_lo), x_hi, p.high(x_hi), method="ar1")
    >>> m.method
    'ar1'
    """
    x0 = np.asarray(x_lo.detach().cpu() if torch.is_tensor(x_lo) else x_lo)
    d = 1 if x0.ndim == 1 else x0.shape[1]
    return fit_multifidelity_levels(
        [x_lo, x_hi],
        [y_lo, y_hi],
        method,
        bounds,
        seed,
        methods=methods,
        mfdnn_kwargs=mfdnn_kwargs,
        progress=progress,
        in_dim=d,
    )


def _check_methods(method: str, methods) -> None:
    valid = ("auto", *METHODS)
    if method not in valid:
        raise ValueError(f"method must be one of {', '.join(valid)}; got {method!r}")
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise ValueError(f"methods must be a non-empty subset of {METHODS}; got {methods!r}")


def fit_multifidelity_levels(
    xs,
    ys,
    method: str = "auto",
    bounds=None,
    seed: int = 0,
    *,
    methods: tuple[str, ...] = METHODS,
    mfdnn_kwargs: dict | None = None,
    progress: bool = False,
    in_dim: int | None = None,
) -> MultiFidelityModel:
    """:func:`fit_multifidelity` for any number of levels: ``xs``, ``ys`` are lists with
    one array per level, lowest fidelity first (the scores are cross-validated on the
    highest level's points; nested or not, as there).

    Examples
    --------
    >>> import numpy as np
    >>> from pdesurrogates.solvers.reference import hartmann3
    >>> p = hartmann3()
    >>> x0 = p.sample(20, seed=0); x1 = x0[:10]; x2 = x1[:5]
    >>> m = fit_multifidelity_levels([x0, x1, x2], [p(x0, 0), p(x1, 1), p(x2, 2)],
    ...                              method="ar1", bounds=p.bounds)
    >>> m.method, m.predict(x0[:4]).mean.shape
    ('ar1', (4,))
    """
    _check_methods(method, methods)
    if not isinstance(xs, list | tuple) or not isinstance(ys, list | tuple) or len(xs) < 2:
        raise ValueError("xs and ys must be lists with one array per level (at least 2)")
    if in_dim is None:
        x0 = np.asarray(xs[0].detach().cpu() if torch.is_tensor(xs[0]) else xs[0])
        in_dim = 1 if x0.ndim == 1 else x0.shape[1]
    xs, ys, box = check_levels(list(xs), list(ys), in_dim, len(xs), bounds)
    n_hi = len(ys[-1])
    folds = cv_folds(n_hi, seed)
    todo = list(methods) if method == "auto" else [method]
    if method == "auto" and n_hi < 6:
        todo = [m for m in todo if m != "mfdnn"] or todo
    fits, scores, seconds, detail = {}, {}, {}, {}
    for m in todo:
        t0 = time.perf_counter()
        if m == "mfdnn":
            fits[m] = _fit_mfdnn(xs, ys, box, seed, folds, progress, dict(mfdnn_kwargs or {}))
            gp = next((fits[g][0] for g in ("ar1", "nargp") if g in fits), None)
            detail["mfdnn_folds"] = fits[m][1]
            detail["low_part"] = low_fidelity_part(gp, folds) if gp is not None else 0.0
            scores[m] = mfdnn_score(fits[m][1], detail["low_part"])
        else:
            fits[m] = _fit_gp(m, xs, ys, box, seed, folds, progress)
            scores[m] = fits[m][1]
        seconds[m] = time.perf_counter() - t0
    for m in todo:  # each fit took the box; only declared bounds make predictions warn
        for obj in (fits[m][0], *fits[m][2]):
            for member in getattr(obj, "members", [obj]):
                member.bounds_declared = bounds is not None
    best = select_method(scores)
    logger.info(
        "fit_multifidelity: %s (cross-validated error %s)",
        best,
        ", ".join(f"{k} {v:.3g}" for k, v in scores.items()),
    )
    candidates = {
        m: MultiFidelityModel(
            method=m,
            model=fits[m][0],
            scores=scores,
            bounds=box,
            bounds_declared=bounds is not None,
            seconds=seconds,
            members=fits[m][2],
            cv_detail=detail,
        )
        for m in todo
    }
    for c in candidates.values():
        c.candidates = candidates
    return candidates[best]
