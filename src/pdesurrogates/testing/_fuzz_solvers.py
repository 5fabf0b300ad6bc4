"""Fuzz the solver contract: ``cg``, ``fcg``, ``dcdm`` and ``solve_with`` on hostile input.

Every case is built from ``numpy.random.default_rng([seed, index])`` alone, so
``fuzz_solvers(1, seed)`` style reruns of one index reproduce it (``case_description``
gives the recipe). A case is one of

* a *malformed argument* (wrong type, shape or dtype; NaN/Inf in ``A``, ``b``, ``x0``;
  ``rtol`` negative/NaN/Inf; ``maxiter`` negative or fractional; ``M`` of the wrong shape;
  an unknown method or a model that does not fit): it must raise a
  :class:`~pdesurrogates.errors.PdeSurrogatesError` whose message names the argument
  (``rejected_clearly``);
* a *well-formed system*, SPD or hostile (non-symmetric, zero/negative diagonal,
  indefinite, singular and inconsistent, huge/tiny/subnormal ``b``, ``rtol=0``,
  ``maxiter=0``, a preconditioner that returns NaN, a LinearOperator holding NaN): it must
  return a :class:`~pdesurrogates.solvers.SolveResult` whose status agrees with the truth
  (``accepted_correct``). ``converged=True`` is checked independently:
  ``||b - A x|| <= rtol ||b|| (1 + 1e-6)`` computed in scaled float64; a well-conditioned
  SPD system with ``rtol >= 1e-8`` must converge; a defect found up front must have its
  status (``NONSYMMETRIC`` / ``INDEFINITE``).

Bad outcomes: ``traceback`` (any other exception, an unclear message, or a raise on a
well-formed system), ``silent_acceptance`` (a result for a malformed argument, or a status
that contradicts the truth), ``hang`` (a case over ``time_limit`` seconds; interrupted
with SIGALRM in the main thread), ``crash`` (always 0: cases run in-process).
"""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator, aslinearoperator

from pdesurrogates.errors import PdeSurrogatesError

__all__ = ["fuzz_solvers"]

_BAD = ("traceback", "crash", "hang", "silent_acceptance")


class _Hang(Exception):
    pass


def _spd(rng, n, kappa=100.0):
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    lam = np.geomspace(1.0, kappa, n) if n > 1 else np.ones(1)
    return (q * lam) @ q.T


def _form(rng, A):
    """The matrix as dense, CSR, CSC, COO or a LinearOperator (name, object)."""
    kind = str(rng.choice(["dense", "csr", "csc", "coo", "linop"]))
    if kind == "dense":
        return kind, np.array(A)
    if kind == "linop":
        return kind, aslinearoperator(np.array(A))
    return kind, getattr(sp, f"{kind}_matrix")(A)


def _system(rng):
    """A well-formed matrix: (label, dense A, spd_easy, defect status or None)."""
    n = int(rng.integers(1, 25))
    kind = str(
        rng.choice(
            ["spd", "spd", "poisson", "nonsym", "negdiag", "zerodiag", "indef", "singular", "big"]
        )
    )
    if kind == "poisson":
        from pdesurrogates.solvers import gallery

        k = int(rng.integers(2, 6))
        return f"poisson2d({k})", gallery.poisson2d(k).toarray(), True, None
    A = _spd(rng, n, float(10 ** rng.uniform(0, 4)))
    if kind == "spd":
        return f"spd(n={n})", A, True, None
    if kind == "big":
        s = float(rng.choice([1e-300, 1e-150, 1e150, 1e300]))
        return f"spd(n={n})*{s:g}", A * s, True, None
    if kind == "nonsym" and n > 1:
        A[0, n - 1] += 1.0
        return f"nonsym(n={n})", A, False, "nonsymmetric"
    if kind == "negdiag":
        A[n // 2, n // 2] = -abs(A[n // 2, n // 2])
        return f"negdiag(n={n})", A, False, "indefinite"
    if kind == "zerodiag":
        A[n - 1, :] = A[:, n - 1] = 0.0
        return f"zerodiag(n={n})", A, False, "indefinite"
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    lam = rng.uniform(0.5, 2.0, n)
    if kind == "indef":
        lam[: max(1, n // 3)] *= -1
    else:  # singular: zero eigenvalues; b gets a null component below
        lam[: max(1, n // 4)] = 0.0
    return f"{kind}(n={n})", (q * lam) @ q.T, False, None


def _rhs(rng, n):
    """(label, b, malformed-argument tokens or None)."""
    kind = str(
        rng.choice(["normal"] * 5 + ["huge", "max", "tiny", "subnormal", "zero", "nan", "inf"])
    )
    b = rng.normal(size=n)
    if kind == "huge":
        return kind, b * 1e300, None
    if kind == "max":
        return kind, np.full(n, 1e308), None
    if kind == "tiny":
        return kind, b * 1e-310, None
    if kind == "subnormal":
        z = np.zeros(n)
        z[int(rng.integers(n))] = 5e-324 * int(rng.integers(1, 1000))
        return kind, z, None
    if kind == "zero":
        return kind, np.zeros(n), None
    if kind in ("nan", "inf"):
        i = int(rng.integers(n))
        b[i] = np.nan if kind == "nan" else -np.inf
        return kind, b, ("b holds NaN or Inf", f"b[{i}]")
    return kind, b, None


_MALFORMED = [
    ("rtol=-1", {"rtol": -1.0}, ("rtol",)),
    ("rtol=nan", {"rtol": float("nan")}, ("rtol",)),
    ("rtol=inf", {"rtol": float("inf")}, ("rtol",)),
    ("rtol='1e-6'", {"rtol": "1e-6"}, ("rtol",)),
    ("maxiter=-3", {"maxiter": -3}, ("maxiter",)),
    ("maxiter=2.5", {"maxiter": 2.5}, ("maxiter",)),
    ("atol=-1", {"atol": -1.0}, ("atol",)),
]


def _krylov_case(rng, solver):
    label, A, easy, defect = _system(rng)
    n = A.shape[0]
    blabel, b, reject = _rhs(rng, n)
    if label.startswith("singular") and blabel == "normal":
        w, v = np.linalg.eigh(A)
        b = b + 3.0 * v[:, np.argmin(np.abs(w))]  # inconsistent: a null-space component
    form, Aop = _form(rng, A)
    kw = {"rtol": float(rng.choice([1e-6, 1e-8, 1e-10, 0.0]))}
    if rng.random() < 0.15:
        kw["maxiter"] = int(rng.choice([0, 1, 3]))
    desc = f"{solver}({label} as {form}, b={blabel}, {kw}"
    r = rng.random()
    if reject is None and r < 0.25:
        name, extra, reject = _MALFORMED[int(rng.integers(len(_MALFORMED)))]
        kw.update(extra)
        desc += f", {name}"
    elif reject is None and r < 0.45:
        desc, Aop, b, kw, reject = _malformed_array(rng, desc, A, Aop, b, kw)
    elif reject is None and r < 0.6:
        kw["M"], mdesc, reject = _preconditioner(rng, A, solver)
        desc += f", M={mdesc}"
    if form == "linop":
        defect = None  # an operator is not checked up front
    nan_linop = form == "linop" and "NaN in A" in desc
    return {
        "desc": desc + ")",
        "call": lambda: solver_fn(solver)(Aop, b, **kw),
        "A": A,
        "b": b,
        "rtol": kw.get("rtol"),
        "reject": reject,
        "M": kw.get("M"),
        "easy": easy
        and reject is None
        and blabel not in ("tiny", "subnormal")
        and "maxiter" not in kw
        and kw["rtol"] >= 1e-8
        and not nan_linop,
        "defect": defect,
    }


def solver_fn(name):
    from pdesurrogates.solvers import cg, fcg

    return {"cg": cg, "fcg": fcg}[name]


def _malformed_array(rng, desc, A, Aop, b, kw):
    n = A.shape[0]
    kind = int(rng.integers(8))
    if kind == 0:
        i, j = int(rng.integers(n)), int(rng.integers(n))
        B = A.copy()
        B[i, j] = float(rng.choice([np.nan, np.inf]))
        if isinstance(Aop, LinearOperator):  # cannot be seen up front: a status
            return desc + ", NaN in A (operator)", aslinearoperator(B), b, kw, None
        return desc + f", A[{i},{j}] non-finite", B, b, kw, ("A holds NaN or Inf", "A[")
    if kind == 1:
        return desc + ", b too short", Aop, np.ones(n + 1), kw, ("b has shape",)
    if kind == 2:
        return desc + ", complex b", Aop, b + 1j, kw, ("complex",)
    if kind == 3:
        return desc + ", A a list", A.tolist(), b, kw, ("A must be",)
    if kind == 4:
        return desc + ", A non-square", np.ones((n, n + 1)), b, kw, ("square",)
    if kind == 5:
        x0 = np.zeros(n)
        x0[n - 1] = np.nan
        kw["x0"] = x0
        return desc + ", x0 NaN", Aop, b, kw, ("x0 holds NaN or Inf", f"x0[{n - 1}]")
    if kind == 6:
        kw["x0"] = np.zeros(n + 2)
        return desc + ", x0 wrong length", Aop, b, kw, ("x0 has shape",)
    return desc + ", b strings", Aop, np.array(["a"] * n), kw, ("b must hold real numbers",)


def _preconditioner(rng, A, solver):
    n = A.shape[0]
    kind = int(rng.integers(4))
    if kind == 0:
        d = np.abs(np.diag(A)).copy()
        d[d == 0] = 1.0
        return sp.diags(1.0 / d), "jacobi", None
    if kind == 1:
        return np.eye(n + 1), "eye(n+1)", ("preconditioner M has shape",)
    if kind == 2:
        return (lambda r: np.full_like(r, np.nan)), "NaN", None
    calls = []

    def wrong_length(r):
        calls.append(1)
        return np.ones(n + 3)

    wrong_length.calls = calls  # a callable is only seen to be wrong once it is called
    return wrong_length, "wrong length", ("preconditioner M returned",)


def _dcdm_case(rng):
    import torch

    from pdesurrogates.solvers import dcdm, gallery
    from pdesurrogates.surrogates import ConjugateDirectionNet

    k = int(rng.integers(4, 9))
    p = gallery.named_problem(str(rng.choice(["poisson2d", "smoke2d"])), k)
    blabel, b, reject = _rhs(rng, p.n)
    torch.manual_seed(int(rng.integers(1000)))
    if rng.random() < 0.5:
        model, mdesc = ConjugateDirectionNet(dim=2, width=int(rng.choice([0, 2]))), "net"
    else:
        model, mdesc = (lambda t: t * 2.0), "callable"
    kw = {"rtol": float(rng.choice([1e-6, 1e-8, 0.0]))}
    desc = f"dcdm({p.name} {k}x{k}, model={mdesc}, b={blabel}, {kw}"
    if reject is None and rng.random() < 0.3:
        name, extra, reject = _MALFORMED[int(rng.integers(len(_MALFORMED)))]
        kw.update(extra)
        desc += f", {name}"
    if mdesc == "callable":
        kw["shape"] = p.shape
    return {
        "desc": desc + ")",
        "call": lambda: dcdm(p, b, model, **kw),
        "A": p.A.toarray(),
        "b": b,
        "rtol": kw.get("rtol"),
        "reject": reject,
        "easy": False,
        "defect": None,
    }


def _solve_with_case(rng):
    import dataclasses

    from pdesurrogates.solvers import SOLVE_METHODS, gallery, solve_with
    from pdesurrogates.surrogates import (
        ConjugateDirectionNet,
        LearnedVCycle,
        NeuralAMG,
        NeuralIncompleteCholesky,
    )

    k = int(rng.integers(4, 9))
    p = gallery.named_problem(str(rng.choice(["poisson2d", "smoke2d", "varcoef2d"])), k)
    method = str(rng.choice(SOLVE_METHODS))
    models = {
        "dcdm": ConjugateDirectionNet(dim=2, width=0),
        "vcycle": LearnedVCycle(dim=2),
        "neural_ic": NeuralIncompleteCholesky(latent=4, rounds=1, seed=0),
        "neural_amg": NeuralAMG(latent=4, rounds=1, seed=0),
    }
    model = models.get(method)
    blabel, b, reject = _rhs(rng, p.n)
    kw = {"rtol": float(rng.choice([1e-6, 1e-9, 0.0]))}
    desc = f"solve_with({p.name} {k}x{k}, {method}, b={blabel}, {kw}"
    defect = None
    r = rng.random()
    if reject is None and r < 0.2:
        name, extra, reject = _MALFORMED[int(rng.integers(len(_MALFORMED)))]
        if "atol" in extra:
            extra, reject, name = {"maxiter": -1}, ("maxiter",), "maxiter=-1"
        kw.update(extra)
        desc += f", {name}"
    elif reject is None and r < 0.3:
        method, model, reject = "gmres", None, ("unknown method",)
        desc += ", method gmres"
    elif reject is None and r < 0.4 and method in models:
        model = models["vcycle" if method in ("dcdm", "neural_ic") else "dcdm"]
        reject = ("needs",)
        desc += ", wrong model"
    elif reject is None and r < 0.55 and method not in ("dcdm", "vcycle"):
        A = p.A.tolil()
        if rng.random() < 0.5:
            A[0, 1] = A[0, 1] + 1.0
            defect = "nonsymmetric"
        else:
            A[1, 1] = -1.0
            defect = "indefinite"
        p = dataclasses.replace(p, A=A.tocsr())
        desc += f", A made {defect}"
    return {
        "desc": desc + ")",
        "call": lambda: solve_with(p, b, method, model=model, **kw),
        "A": p.A.toarray(),
        "b": b,
        "rtol": kw.get("rtol"),
        "reject": reject,
        "easy": defect is None
        and method in ("cg", "jacobi", "ic", "amg")
        and reject is None
        and blabel not in ("tiny", "subnormal")
        and kw["rtol"] > 0,
        "defect": defect,
    }


def make_case(seed: int, index: int) -> dict:
    """The case ``index`` of a run with ``seed``: ``desc``, ``call`` and the truth."""
    rng = np.random.default_rng([seed, index])
    solver = str(rng.choice(["cg", "cg", "fcg", "fcg", "dcdm", "solve_with"]))
    if solver == "dcdm":
        return _dcdm_case(rng)
    if solver == "solve_with":
        return _solve_with_case(rng)
    return _krylov_case(rng, solver)


def _true_relres(A, b, x) -> tuple[float, float]:
    """``||b - A x|| / ||b||`` in long double (no overflow or underflow on x86-64) after
    one exact power-of-two scaling, and the float64 rounding floor of evaluating it,
    ``n eps || |A| |x| || / ||b||``."""
    big = max(np.max(np.abs(b)), np.max(np.abs(x)), np.finfo(float).tiny)
    ld = np.longdouble
    s = np.ldexp(ld(1.0), int(np.frexp(big)[1]))
    bs, xs, Al = np.asarray(b, ld) / s, np.asarray(x, ld) / s, np.asarray(A, ld)
    r = bs - Al @ xs
    bn = np.sqrt(np.sum(bs * bs))
    ax = np.abs(Al) @ np.abs(xs)
    floor = len(b) * np.finfo(float).eps * np.sqrt(np.sum(ax * ax)) / bn
    return float(np.sqrt(np.sum(r * r)) / bn), float(floor)


def _judge(case, res) -> tuple[str, str]:
    from pdesurrogates.solvers import SolveResult, SolveStatus

    calls = getattr(case.get("M"), "calls", None)
    if case["reject"] is not None and not (calls is not None and not calls):
        return "silent_acceptance", f"accepted: {res!r}"
    if not isinstance(res, SolveResult) or not isinstance(res.status, SolveStatus):
        return "traceback", f"returned {type(res).__name__}"
    if res.residuals.shape != (res.n_iter + 1,) or res.converged != (res.status == "converged"):
        return "silent_acceptance", f"inconsistent result {res!r}"
    b, A = case["b"], case["A"]
    if res.converged:
        if not np.any(b):
            ok = not np.any(res.x)
        else:
            rel, floor = _true_relres(A, b, res.x)
            ok = np.all(np.isfinite(res.x)) and rel <= case["rtol"] * (1 + 1e-6) + floor
        if not ok:
            return "silent_acceptance", f"converged with a wrong x: {res!r}"
    elif case["defect"] is not None and res.status.value != case["defect"]:
        return "silent_acceptance", f"expected status {case['defect']}: {res!r}"
    elif case["easy"] and np.any(b) and res.status is not SolveStatus.NONFINITE:
        return "silent_acceptance", f"a well-conditioned SPD system did not converge: {res!r}"
    if not res.message:
        return "silent_acceptance", "empty message"
    return "accepted_correct", ""


def _run(case, time_limit: float) -> tuple[str, str]:
    use_alarm = threading.current_thread() is threading.main_thread()

    def on_alarm(signum, frame):
        raise _Hang

    old = signal.signal(signal.SIGALRM, on_alarm) if use_alarm else None
    t0 = time.perf_counter()
    try:
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, time_limit)
        try:
            res = case["call"]()
        finally:
            if use_alarm:
                signal.setitimer(signal.ITIMER_REAL, 0)
    except _Hang:
        return "hang", f"over {time_limit} s"
    except PdeSurrogatesError as exc:
        msg = str(exc)
        if case["reject"] is None:
            return "traceback", f"raised on a well-formed system: {type(exc).__name__}: {msg}"
        if not any(tok in msg for tok in case["reject"]):
            return "traceback", f"unclear message (expected {case['reject']}): {msg}"
        return "rejected_clearly", ""
    except Exception as exc:
        return "traceback", f"{type(exc).__name__}: {exc}"
    finally:
        if use_alarm:
            signal.signal(signal.SIGALRM, old)
    if time.perf_counter() - t0 > time_limit:
        return "hang", f"took {time.perf_counter() - t0:.1f} s"
    return _judge(case, res)


def fuzz_solvers(n_cases: int, seed: int, workdir=None, *, time_limit: float = 5.0) -> dict:
    """Run ``n_cases`` solver cases; counts by outcome (see the module docstring).

    Returns ``{"cases", "rejected_clearly", "accepted_correct", "traceback", "crash",
    "hang", "silent_acceptance", "examples"}``; ``examples`` maps ``"<outcome> #<index>"``
    to the case description and what went wrong (at most 10). With ``workdir`` the
    summary is also written to ``workdir/fuzz_solvers.json``.
    """
    counts = {"cases": 0, "rejected_clearly": 0, "accepted_correct": 0}
    counts.update(dict.fromkeys(_BAD, 0))
    examples: dict[str, str] = {}
    for i in range(int(n_cases)):
        case = make_case(seed, i)
        outcome, detail = _run(case, time_limit)
        counts["cases"] += 1
        counts[outcome] += 1
        if outcome in _BAD and len(examples) < 10:
            examples[f"{outcome} #{i}"] = f"{case['desc']}: {detail}"
    counts["examples"] = examples
    if workdir is not None:
        Path(workdir).mkdir(parents=True, exist_ok=True)
        (Path(workdir) / "fuzz_solvers.json").write_text(json.dumps(counts, indent=1))
    return counts
