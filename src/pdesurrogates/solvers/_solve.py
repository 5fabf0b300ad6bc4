"""Solve a gallery system or a sparse SPD matrix by method name: the library behind
``pdesurrogates solve``.

:func:`solve_with` takes model *objects* only; loading a saved model or constructing a
default one is the caller's job (this layer never imports the models: a model is
recognised by what it offers, e.g. ``precondition(A)`` for a learned factorisation).

Examples
--------
>>> from pdesurrogates.solvers import gallery, solve_with
>>> p = gallery.named_problem("poisson2d", 16)
>>> res = solve_with(p, gallery.random_rhs(p), "ic", rtol=1e-8)
>>> res.status.value, res.info["solve_method"], res.n_iter < 30
('converged', 'ic', True)
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp

from pdesurrogates.errors import SolverError
from pdesurrogates.solvers._aggregation import SmoothedAggregation
from pdesurrogates.solvers._checks import check_maxiter, check_tolerances, prepare
from pdesurrogates.solvers._dcdm import dcdm
from pdesurrogates.solvers._krylov import _start, cg
from pdesurrogates.solvers._preconditioners import (
    AMG,
    IncompleteCholesky,
    Jacobi,
    LearnedPreconditioner,
)
from pdesurrogates.solvers._result import SolveResult, SolveStatus

__all__ = ["MODEL_METHODS", "SOLVE_METHODS", "solve_with"]

SOLVE_METHODS = ("cg", "jacobi", "ic", "amg", "sa", "dcdm", "vcycle", "neural_ic", "neural_amg")
"""Method names of :func:`solve_with`: plain CG, PCG with Jacobi / IC(0) / pyamg AMG /
our smoothed aggregation, DCDM with a direction network, PCG with a (learned) V-cycle,
PCG with a learned incomplete Cholesky factor, PCG with a learned smoothed-aggregation
AMG."""

MODEL_METHODS = ("dcdm", "vcycle", "neural_ic", "neural_amg")
"""The methods that take a model."""

_CLASSICAL = {"jacobi": Jacobi, "ic": IncompleteCholesky, "amg": AMG, "sa": SmoothedAggregation}
_FACTORY = ("neural_ic", "neural_amg")  # model.precondition(A) builds the preconditioner


def _is_vcycle(model) -> bool:
    return hasattr(model, "numpy_parameters")


def _is_factor_model(model) -> bool:
    """An algebraic model: ``model.precondition(A)`` gives an SPD preconditioner."""
    return callable(getattr(model, "precondition", None))


def _is_direction_net(model) -> bool:
    """A network that maps residual images to search directions (``direction_network``)."""
    return bool(getattr(model, "direction_network", False))


def _use_instead(model) -> str:
    """What to do with ``model`` instead: the method that takes it, if any."""
    name = type(model).__name__
    if _is_factor_model(model):
        return f"use method {_factory_method(model)!r} for a {name}"
    if _is_vcycle(model):
        return f"use method 'vcycle' for a {name}"
    if _is_direction_net(model):
        return f"use method 'dcdm' for a {name}"
    return (
        f"a {name} is not a preconditioner model; train one with 'pdesurrogates train "
        "dcdm' (or vcycle, neural-ic, neural-amg)"
    )


def _factory_method(model) -> str:
    """``neural_amg`` for a learned AMG, ``neural_ic`` for a learned factorisation."""
    return getattr(model, "solve_method", "neural_ic")


_NEEDS = {
    "vcycle": "a LearnedVCycle",
    "dcdm": "a direction network",
    "neural_ic": "a NeuralIncompleteCholesky",
    "neural_amg": "a NeuralAMG; NeuralAMG() untrained is plain smoothed aggregation",
}


def check_model(method: str, model, problem) -> None:
    """Raise ``SolverError`` unless ``model`` fits ``method`` and the problem's dimension."""
    if not isinstance(method, str) or method not in SOLVE_METHODS:
        raise SolverError(f"unknown method {method!r}; choose one of {', '.join(SOLVE_METHODS)}")
    name = type(model).__name__
    if method not in MODEL_METHODS:
        if model is not None:
            raise SolverError(
                f"method {method!r} takes no model (got a {name}); the methods that take a "
                f"model are {', '.join(MODEL_METHODS)}"
            )
        return
    if model is None:
        raise SolverError(f"method {method!r} needs a model ({_NEEDS[method]}); pass model=...")
    if _is_factor_model(model) and method in _FACTORY and _factory_method(model) != method:
        raise SolverError(
            f"method {method!r} needs {_NEEDS[method]}, but the model is a {name}; use "
            f"method {_factory_method(model)!r} for a {name}"
        )
    if method == "neural_amg" and not _is_factor_model(model):
        raise SolverError(
            f"method 'neural_amg' needs a NeuralAMG (a model with precondition(A)), but the "
            f"model is a {name}; {_use_instead(model)}"
        )
    if _is_factor_model(model) != (method in _FACTORY):
        if method == "neural_ic":
            raise SolverError(
                f"method 'neural_ic' needs a learned factorisation (a model with "
                f"precondition(A), such as NeuralIncompleteCholesky), but the model is a "
                f"{name}; {_use_instead(model)}"
            )
        raise SolverError(
            f"method {method!r} needs {_NEEDS[method]}, but the model is a {name}, an "
            f"algebraic preconditioner for any sparse SPD matrix; use method "
            f"{_factory_method(model)!r} for a {name}"
        )
    if method in _FACTORY:
        return
    if method == "vcycle" and not _is_vcycle(model):
        raise SolverError(
            f"method 'vcycle' runs a V-cycle and needs a LearnedVCycle, but the model is a "
            f"{name}; {_use_instead(model)}"
        )
    if method == "dcdm" and not _is_direction_net(model):
        raise SolverError(
            f"method 'dcdm' needs a direction network such as ConjugateDirectionNet, but the "
            f"model is a {name}; {_use_instead(model)}"
        )
    mdim = getattr(model, "dim", None)
    pdim = _problem_dim(problem)
    if mdim is not None and pdim is not None and int(mdim) != pdim:
        what = (
            f"the problem ({problem.name}, grid {problem.shape})"
            if _is_gallery_problem(problem)
            else f"the matrix (grid {problem.grid_shape})"
        )
        raise SolverError(f"the {name} is {mdim}D but {what} is {pdim}D; use a {pdim}D model")


def _is_gallery_problem(problem) -> bool:
    return all(hasattr(problem, a) for a in ("A", "shape", "dim", "mask"))


def _problem_dim(problem) -> int | None:
    """The grid dimension of a gallery Problem or of a gallery matrix; ``None`` if unknown."""
    if _is_gallery_problem(problem):
        return int(problem.dim)
    shape = getattr(problem, "grid_shape", None)
    return None if shape is None else len(shape)


def solve_with(
    problem, b, method: str, *, model=None, rtol: float = 1e-6, maxiter: int | None = None
) -> SolveResult:
    """Set up and run one solver on a gallery problem.

    Parameters
    ----------
    problem : gallery.Problem or sparse matrix
        The system: a gallery Problem (matrix ``problem.A``, grid ``problem.shape``, fluid
        ``problem.mask``) or a bare sparse SPD matrix ``A`` (e.g. a finite-element matrix
        read from a file). The grid methods ``dcdm``/``vcycle`` need a grid: a bare matrix
        must be a stencil on a square/cube grid in C order (checked; a permuted or
        unstructured matrix is refused, naming ``neural_ic``, ``ic`` and ``amg``). The
        algebraic methods (``ic``, ``amg``, ``sa``, ``neural_ic``, ``neural_amg``) take
        any sparse SPD matrix.
    b : ndarray, shape (n,)
        Right-hand side.
    method : {"cg", "jacobi", "ic", "amg", "sa", "dcdm", "vcycle", "neural_ic", "neural_amg"}
        ``cg``: plain CG. ``jacobi``/``ic``/``amg``/``sa``: CG preconditioned by
        :class:`Jacobi`, :class:`IncompleteCholesky`, :class:`AMG` (pyamg) or our
        :class:`SmoothedAggregation` V-cycle. ``dcdm``:
        :func:`dcdm` with a direction network. ``vcycle``: CG preconditioned by a
        :class:`~pdesurrogates.surrogates.LearnedVCycle` (never DCDM). ``neural_ic``: CG
        preconditioned by ``model.precondition(A)``, the SPD factor ``L L^T`` of a
        :class:`~pdesurrogates.surrogates.NeuralIncompleteCholesky`. ``neural_amg``: CG
        preconditioned by ``model.precondition(A)``, the V-cycle of a
        :class:`~pdesurrogates.surrogates.NeuralAMG` (SPD for any weights).
    model : torch.nn.Module, optional
        Required by ``dcdm`` (a direction network), ``vcycle`` (a ``LearnedVCycle``;
        ``LearnedVCycle(dim=problem.dim)`` is the untrained geometric one) and
        ``neural_ic`` (a model with ``precondition(A)``) and ``neural_amg`` (a
        ``NeuralAMG``); an error for the other methods.
    rtol : float
        Relative tolerance on the residual.
    maxiter : int, optional
        Iteration cap.

    Returns
    -------
    SolveResult
        ``info`` also holds ``solve_method``, ``setup_seconds``, ``solve_seconds`` and,
        with a model, ``model_class``. As for :func:`cg`, numerical trouble never raises:
        a non-symmetric matrix or a diagonal entry ``<= 0`` is reported before any
        preconditioner is built, and a preconditioner that cannot be built for a matrix
        that is not positive definite gives status ``INDEFINITE``.

    Raises
    ------
    SolverError
        A malformed argument (as for :func:`cg`), an unknown method, a model that does
        not fit the method or the problem's dimension, or, for ``dcdm``/``vcycle``, a
        matrix that is not a stencil on the grid the model assumes (a permuted or
        unstructured matrix; the message names the algebraic methods) (``SolverError``
        is a ``ValueError``).
    """
    if not (_is_gallery_problem(problem) or sp.issparse(problem)):
        raise SolverError(
            f"problem must be a gallery Problem (from gallery.named_problem) or a sparse "
            f"matrix; got {type(problem).__name__}"
        )
    check_model(method, model, problem)
    check_tolerances(rtol, 0.0)
    A = problem.A if _is_gallery_problem(problem) else problem
    system = prepare(A, b, None, check_symmetric=True)
    check_maxiter(maxiter, system.n)
    t0 = time.perf_counter()
    _, _, _, early = _start(system, method, rtol, 0.0)
    M = None
    if early is None and method in (*_CLASSICAL, *_FACTORY):
        make = model.precondition if method in _FACTORY else _CLASSICAL[method]
        try:
            M = make(A)
        except SolverError as exc:  # IC(0) breakdown and the like: A is not SPD
            early = _setup_failed(system, method, exc)
    elif early is None and method == "vcycle":
        M = LearnedPreconditioner(model, problem)
    setup = time.perf_counter() - t0
    t1 = time.perf_counter()
    if early is not None:
        res = early
    elif method == "dcdm":
        res = dcdm(problem, b, model, rtol=rtol, maxiter=maxiter)
    else:
        res = cg(A, b, rtol=rtol, M=M, maxiter=maxiter, check_symmetric=False)
    res.info.update(
        solve_method=method, setup_seconds=setup, solve_seconds=time.perf_counter() - t1
    )
    if model is not None:
        res.info["model_class"] = type(model).__name__
    return res


def _setup_failed(system, method: str, exc: Exception) -> SolveResult:
    """An ``INDEFINITE`` result for a preconditioner that could not be built."""
    bnorm = float(np.linalg.norm(system.b))
    r0 = bnorm * system.scale
    info = {"bnorm": r0, "relative_residual": 1.0, "scale": system.scale, "method": "cg"}
    msg = (
        f"not solved (indefinite): the {method!r} preconditioner could not be built ({exc}); "
        "A is not symmetric positive definite"
    )
    x = np.zeros(system.n)
    return SolveResult(x, False, 0, np.array([r0]), msg, info, SolveStatus.INDEFINITE)
