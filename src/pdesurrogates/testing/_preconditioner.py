"""Contract tests every preconditioner object must pass, as a pytest mix-in.

Subclass :class:`PreconditionerContract` in a test module with a name starting with
``Test`` and fill in one hook; pytest then runs every ``test_*`` method below::

    from pdesurrogates.testing import PreconditionerContract

    class TestMyPreconditionerContract(PreconditionerContract):
        def make_preconditioner(self, problem):
            return MyPreconditioner(problem.A)

The checks, on a 2D variable-coefficient Poisson problem (override ``make_problem``):

- ``shape`` and ``aspreconditioner()`` have the matrix's shape ``(n, n)``, float64;
- where the object claims SPD (``is_spd``): ``x^T M y = y^T M x`` and ``x^T M x > 0`` on
  random vectors (hypothesis property tests);
- where it claims linearity (``is_linear``): ``M(a x + b y) = a M x + b M y``;
- scipy's ``cg`` (SPD) and ``gmres`` (linear) with ``M=P.aspreconditioner()``, and our
  ``cg``/``fcg`` with ``M=P``, reach the direct solution;
- it takes fewer iterations than unpreconditioned CG;
- a complex vector: ``matvec`` refuses it; ``aspreconditioner()`` of a linear map acts on
  its real and imaginary parts (scipy's ``gmres`` then solves a complex ``b``), of a
  nonlinear one refuses it;
- a matrix holding NaN is refused at setup with a ``SolverError`` naming the entry;
- a non-symmetric matrix (one off-diagonal entry scaled by 1.5) is either refused at
  setup with a ``SolverError`` naming that pair, or gives an object whose ``is_spd`` is
  true of the map it applies (``x^T M y = y^T M x``), never a false claim.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.sparse.linalg as sla
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pdesurrogates.errors import SolverError
from pdesurrogates.solvers import cg, fcg, gallery

__all__ = ["PreconditionerContract"]

_PROPERTY = settings(
    max_examples=15,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.differing_executors, HealthCheck.too_slow],
)
_SEEDS = st.integers(min_value=0, max_value=2**32 - 1)
_CACHE: dict = {}  # (problem, preconditioner, b, x) per test class: set up once
_COEFS = st.floats(min_value=-10.0, max_value=10.0, allow_nan=False, allow_infinity=False)


class PreconditionerContract:
    """pytest mix-in: the behaviour every pdesurrogates preconditioner object guarantees.

    Notes
    -----
    Hooks to override:

    - ``make_preconditioner(problem)``: the preconditioner set up for ``problem`` (a
      :class:`~pdesurrogates.solvers.gallery.Problem`; its matrix is ``problem.A``).
    - ``make_problem()``: optional; default ``gallery.named_problem("varcoef2d", 24)``.

    Optional attributes: ``rtol`` of the solves (1e-8), ``solution_rtol`` of the
    comparison with the direct solution (1e-6), ``symmetry_rtol`` (1e-10),
    ``linearity_rtol`` (1e-10) and ``max_iteration_ratio`` (preconditioned iterations
    must stay below this fraction of plain CG's; 1.0).
    """

    rtol: float = 1e-8
    solution_rtol: float = 1e-6
    symmetry_rtol: float = 1e-10
    linearity_rtol: float = 1e-10
    max_iteration_ratio: float = 1.0

    # hooks ---------------------------------------------------------------------------
    def make_preconditioner(self, problem):  # pragma: no cover - overridden
        raise NotImplementedError("define make_preconditioner(problem) in the test class")

    def make_problem(self):
        return gallery.named_problem("varcoef2d", 24, seed=0)

    # helpers -------------------------------------------------------------------------
    def _setup(self):
        """(problem, preconditioner, b, direct solution), built once per test class."""
        key = type(self)
        if key not in _CACHE:
            problem = self.make_problem()
            P = self.make_preconditioner(problem)
            b = gallery.random_rhs(problem, seed=0)
            x = sla.spsolve(problem.A.tocsc(), b)
            _CACHE[key] = (problem, P, b, x)
        return _CACHE[key]

    def _op(self, P):
        """``P.aspreconditioner()``; for a map that is not SPD, its permitted form."""
        try:
            return P.aspreconditioner()
        except SolverError:
            if P.is_spd:
                raise
            return P.aspreconditioner(allow_nonlinear=True)

    @staticmethod
    def _vectors(n, seed, k=2):
        rng = np.random.default_rng(seed)
        return [rng.standard_normal(n) for _ in range(k)]

    def _assert_solution(self, x, x_ref, what):
        err = np.linalg.norm(x - x_ref) / np.linalg.norm(x_ref)
        assert err <= self.solution_rtol, f"{what}: relative error {err:.3e} vs direct solve"

    # the contract --------------------------------------------------------------------
    def test_shape_and_operator(self):
        problem, P, _, _ = self._setup()
        n = problem.A.shape[0]
        assert tuple(P.shape) == (n, n), f"shape {P.shape} is not the matrix's {(n, n)}"
        op = self._op(P)
        assert isinstance(op, sla.LinearOperator)
        assert op.shape == (n, n) and op.dtype == np.float64
        r = self._vectors(n, 0, 1)[0]
        z = op.matvec(r)
        assert z.shape == (n,) and np.all(np.isfinite(z))
        np.testing.assert_allclose(z, P.matvec(r), rtol=1e-12, atol=0)
        with pytest.raises(ValueError, match="entries"):
            P.matvec(np.ones(n + 1))

    def test_nonlinear_map_is_refused_for_cg(self):
        _, P, _, _ = self._setup()
        if P.is_spd:
            pytest.skip("the preconditioner is SPD")
        with pytest.raises(SolverError):
            P.aspreconditioner()

    @_PROPERTY
    @given(seed=_SEEDS)
    def test_symmetric(self, seed):
        problem, P, _, _ = self._setup()
        if not P.is_spd:
            return
        x, y = self._vectors(problem.n, seed)
        lhs, rhs = x @ P.matvec(y), y @ P.matvec(x)
        scale = np.linalg.norm(x) * np.linalg.norm(P.matvec(y)) + 1e-300
        assert abs(lhs - rhs) <= self.symmetry_rtol * scale, (lhs, rhs)

    @_PROPERTY
    @given(seed=_SEEDS)
    def test_positive_definite(self, seed):
        problem, P, _, _ = self._setup()
        if not P.is_spd:
            return
        (x,) = self._vectors(problem.n, seed, 1)
        assert x @ P.matvec(x) > 0

    @_PROPERTY
    @given(seed=_SEEDS, a=_COEFS, b=_COEFS)
    def test_linear(self, seed, a, b):
        problem, P, _, _ = self._setup()
        if not P.is_linear:
            return
        x, y = self._vectors(problem.n, seed)
        Mx, My = P.matvec(x), P.matvec(y)
        lhs = P.matvec(a * x + b * y)
        scale = abs(a) * np.linalg.norm(Mx) + abs(b) * np.linalg.norm(My) + 1e-300
        assert np.linalg.norm(lhs - (a * Mx + b * My)) <= self.linearity_rtol * scale

    def test_scipy_cg_and_gmres_reach_direct_solution(self):
        problem, P, b, x_ref = self._setup()
        if P.is_spd:
            x, info = sla.cg(problem.A, b, rtol=self.rtol, M=P.aspreconditioner())
            assert info == 0
            self._assert_solution(x, x_ref, "scipy cg")
        if P.is_linear:
            x, info = sla.gmres(problem.A, b, rtol=self.rtol, M=self._op(P), restart=50, maxiter=50)
            assert info == 0
            self._assert_solution(x, x_ref, "scipy gmres")
        if not (P.is_spd or P.is_linear):
            pytest.skip("scipy's cg and gmres need a fixed linear preconditioner")

    def test_our_solvers_take_the_object(self):
        problem, P, b, x_ref = self._setup()
        res = fcg(problem.A, b, rtol=self.rtol, M=P, m=2)
        assert res.converged, res.message
        self._assert_solution(res.x, x_ref, "fcg(M=P)")
        if P.is_spd:
            res = cg(problem.A, b, rtol=self.rtol, M=P)
            assert res.converged, res.message
            self._assert_solution(res.x, x_ref, "cg(M=P)")

    def test_reduces_iterations(self):
        problem, P, b, _ = self._setup()
        plain = cg(problem.A, b, rtol=self.rtol)
        if P.is_spd:
            pre = cg(problem.A, b, rtol=self.rtol, M=P)
        else:
            pre = fcg(problem.A, b, rtol=self.rtol, M=P, m=2)
        assert plain.converged and pre.converged
        assert pre.n_iter < self.max_iteration_ratio * plain.n_iter, (pre.n_iter, plain.n_iter)

    def test_complex_vectors(self):
        problem, P, b, x_ref = self._setup()
        with pytest.raises(SolverError, match="complex"):
            P.matvec(b + 1j * b)
        op = self._op(P)
        if not P.is_linear:
            with pytest.raises(SolverError, match="nonlinear"):
                op.matvec(b + 1j * b)
            return
        b2 = np.roll(b, 1)
        x, info = sla.gmres(problem.A, b + 2j * b2, rtol=self.rtol, M=op, restart=50, maxiter=50)
        assert info == 0
        x_ref = x_ref + 2j * sla.spsolve(problem.A.tocsc(), b2)
        self._assert_solution(x, x_ref, "scipy gmres with a complex b")

    def test_nonfinite_matrix_is_refused(self):
        problem = self._setup()[0]
        A = problem.A.tolil(copy=True)
        A[3, 3] = np.nan
        with pytest.raises(SolverError, match=r"NaN or Inf: A\[3, 3\] = nan"):
            self.make_preconditioner(dataclasses.replace(problem, A=A.tocsr()))

    def test_nonsymmetric_matrix_is_refused_or_not_claimed_spd(self):
        problem = self._setup()[0]
        A = problem.A.tocsr(copy=True)
        i = problem.n // 2
        row = slice(A.indptr[i], A.indptr[i + 1])
        k = A.indptr[i] + int(np.flatnonzero(A.indices[row] > i)[0])  # first entry right of i
        j = int(A.indices[k])
        A.data[k] *= 1.5
        try:
            P = self.make_preconditioner(dataclasses.replace(problem, A=A))
        except SolverError as exc:
            assert f"not symmetric: A[{i}, {j}]" in str(exc), str(exc)
            return
        if P.is_spd:  # the claim must be true of the map: A's asymmetry must not leak into M
            x, y = self._vectors(problem.n, 7)
            lhs, rhs = x @ P.matvec(y), y @ P.matvec(x)
            scale = np.linalg.norm(x) * np.linalg.norm(P.matvec(y)) + 1e-300
            assert abs(lhs - rhs) <= self.symmetry_rtol * scale, (lhs, rhs)
