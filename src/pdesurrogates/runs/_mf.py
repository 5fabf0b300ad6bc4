"""Multi-fidelity runs: ``mf fit`` into a run directory, its test data as a file, and the
predictor of the multi-fidelity family (co-kriging, NARGP, MF-DNN).

A multi-fidelity run directory::

    runs/NAME/
      run.json     # kind (cokriging, nargp, mfdnn), problem, sizes, fit time, test scores
      model/       # pdesurrogates.save of the CoKrigingGP or the MF-DNN (ensemble)
      fit.png      # the surrogate against its data (and the truth with a problem)
      test.h5      # with a built-in problem: high-fidelity test points (split "test")

``test.h5`` is a ``pdesurrogates-h5`` dataset: the inputs are parameters ``x0 .. x{d-1}``
(uniform on the problem's bounds) and the high-fidelity output is the field ``y`` with
dims ``("sample",)``. So ``pdesurrogates evaluate RUN --data RUN/test.h5`` and
``predict`` + ``uq evaluate`` score a multi-fidelity model exactly as a field model.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from pdesurrogates._figures import Quantity, figure, label_axes, save_figure, styled
from pdesurrogates.errors import DatasetError
from pdesurrogates.io import atomic_write_text
from pdesurrogates.runs._registry import Family, Predicted, register_family
from pdesurrogates.runs._train import RUN_FILE, new_run_dir, refuse_existing_run

__all__ = [
    "MF_KINDS",
    "MF_METHODS",
    "TEST_FILE",
    "fit_mf_run",
    "load_mf_data",
    "mf_config",
    "plot_mf_fit",
    "write_mf_test_data",
]

MF_METHODS = ("cokriging", "nargp", "mfdnn", "auto")
#: run kinds (``run.json`` ``kind``): the model a run holds; ``auto`` records its choice
MF_KINDS = ("cokriging", "nargp", "mfdnn")
#: names of :func:`~pdesurrogates.training.fit_multifidelity` -> run kinds
_AUTO_KINDS = {"ar1": "cokriging", "nargp": "nargp", "mfdnn": "mfdnn"}
#: MF-DNN settings that ``auto`` decides itself (every candidate on the same k folds)
_AUTO_OWN = ("criterion", "holdout", "folds", "seed")
TEST_FILE = "test.h5"
FIT_FIGURE = "fit.png"
_TARGET = "y"


def load_mf_data(problem: str | None, data, n_lo: int, n_hi: int, seed: int):
    """``(problem_or_None, [x_lo, x_hi], [y_lo, y_hi], bounds)`` from a built-in problem
    (nested design of ``n_lo``/``n_hi`` points) or an ``.npz`` with ``x_lo, y_lo, x_hi,
    y_hi`` (and optionally ``bounds`` of shape (d, 2))."""
    from pdesurrogates.solvers.reference import get_mf_problem

    if (problem is None) == (data is None):
        raise ValueError("give exactly one of --problem NAME or --data FILE.npz")
    if problem is not None:
        p = get_mf_problem(problem)
        if p.n_levels != 2:
            raise ValueError(f"problem {problem!r} has {p.n_levels} levels; the CLI handles 2")
        if n_hi > n_lo or n_hi < 3:
            raise ValueError(f"--n-hi must be in [3, --n-lo]; got {n_hi} (n-lo {n_lo})")
        x_lo, x_hi = p.nested_design([n_lo, n_hi], seed=seed)
        return p, [x_lo, x_hi], [p.low(x_lo), p.high(x_hi)], p.bounds
    path = Path(data)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; give an .npz with x_lo, y_lo, x_hi, y_hi")
    try:
        f = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:  # not .npy/.npz: numpy talks of pickles
        raise DatasetError(
            f"{path}: not an .npz archive; give one with arrays x_lo, y_lo, x_hi, y_hi "
            "(numpy.savez)"
        ) from exc
    if not isinstance(f, np.lib.npyio.NpzFile):
        raise DatasetError(f"{path}: a single .npy array; give an .npz with x_lo, y_lo, x_hi, y_hi")
    with f:
        missing = [k for k in ("x_lo", "y_lo", "x_hi", "y_hi") if k not in f]
        if missing:
            raise ValueError(f"{path}: missing arrays {missing}; expected x_lo, y_lo, x_hi, y_hi")
        arrs = {}
        for k in f.files:
            try:
                arrs[k] = np.asarray(f[k], dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise DatasetError(f"{path}: array {k} is not numeric ({exc})") from exc
    xs, ys = _npz_levels(path, arrs)
    bounds = arrs.get("bounds")
    if bounds is not None and bounds.shape != (xs[0].shape[1], 2):
        raise DatasetError(
            f"{path}: bounds must have shape ({xs[0].shape[1]}, 2), one (low, high) row per "
            f"input column of x_lo; got {bounds.shape}"
        )
    return None, xs, ys, bounds


def _npz_levels(path: Path, arrs: dict[str, np.ndarray]):
    """``[x_lo, x_hi], [y_lo, y_hi]`` of an ``.npz``, or a :class:`DatasetError` naming the
    file, the array and its first bad row."""
    xs, ys = [], []
    for lv in ("lo", "hi"):
        x, y = arrs[f"x_{lv}"], arrs[f"y_{lv}"]
        if x.ndim not in (1, 2):
            raise DatasetError(f"{path}: x_{lv} must have shape (n, d) or (n,); got {x.shape}")
        x = x[:, None] if x.ndim == 1 else x
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1 or len(y) != len(x):
            raise DatasetError(
                f"{path}: y_{lv} must have shape ({len(x)},), one output per row of x_{lv}; "
                f"got {y.shape}"
            )
        if xs and x.shape[1] != xs[0].shape[1]:
            raise DatasetError(
                f"{path}: x_hi has {x.shape[1]} input column(s) and x_lo {xs[0].shape[1]}; "
                "both levels need the same inputs"
            )
        for name, a in ((f"x_{lv}", x), (f"y_{lv}", y)):
            bad = ~np.isfinite(a.reshape(len(a), -1)).all(1)
            if bad.any():
                i = int(np.argmax(bad))
                raise DatasetError(
                    f"{path}: {name} row {i} is NaN or infinite ({name}[{i}] = {a[i]}; "
                    f"{int(bad.sum())} such row(s)); remove those points from x_{lv} and "
                    f"y_{lv} or fix them"
                )
        xs.append(x)
        ys.append(y)
    return xs, ys


def write_mf_test_data(path, x, y, bounds, *, problem: str = "", overwrite: bool = False) -> Path:
    """Write inputs ``x`` ``(n, d)`` and outputs ``y`` ``(n,)`` as a ``pdesurrogates-h5``
    dataset: parameters ``x0 ..`` (uniform on ``bounds``), field ``y`` ``("sample",)`` and
    a ``test`` split holding every point."""
    from pdesurrogates.datasets import DatasetWriter, FieldSpec, ParamSpec

    x = np.asarray(x, dtype=np.float64).reshape(len(y), -1)
    params = {
        f"x{i}": ParamSpec(dist="uniform", bounds=(float(lo), float(hi)))
        if bounds is not None
        else ParamSpec()
        for i, (lo, hi) in enumerate(bounds if bounds is not None else [(0, 0)] * x.shape[1])
    }
    with DatasetWriter(
        path,
        n_samples=len(y),
        coords={},
        fields={_TARGET: FieldSpec(dims=("sample",), long_name="high-fidelity output")},
        params=params,
        dataset_name=f"{problem or 'multi-fidelity'} high-fidelity test points",
        source={"generator": "pdesurrogates mf fit", "problem": problem, "level": "high"},
        overwrite=overwrite,
    ) as w:
        w.write_batch(
            0,
            {_TARGET: np.asarray(y, dtype=np.float64)},
            params={k: x[:, i] for i, k in enumerate(params)},
        )
        return w.finalize(splits={"test": np.arange(len(y))})


def mf_config(config=None, *, members: int | None = None, seed: int | None = None):
    """The :class:`~pdesurrogates.training.MultiFidelityConfig` of an MF-DNN fit: the
    ``[training]`` table of a TOML file (or a mapping), then ``members``/``seed``."""
    import tomllib

    from pdesurrogates.errors import ConfigError
    from pdesurrogates.training import MultiFidelityConfig

    table: dict[str, Any] = {}
    if isinstance(config, dict):
        table = dict(config)
    elif config is not None:
        path = Path(config)
        if not path.is_file():
            raise ConfigError(f"{path}: no such config file")
        try:
            doc = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
        if set(doc) - {"training"}:
            raise ConfigError(
                f"{path}: unknown table(s) {sorted(set(doc) - {'training'})}; an MF-DNN "
                "config has one table [training] (MultiFidelityConfig settings)"
            )
        table = dict(doc.get("training", {}))
    if members is not None:
        table["n_members"] = members
    if seed is not None:
        table["seed"] = seed
    try:
        return MultiFidelityConfig.from_dict(table)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{config or 'config'}: {exc}") from exc


def _auto_mfdnn_kwargs(cfg) -> dict[str, Any]:
    """The MF-DNN settings a user changed, for ``fit_multifidelity(method="auto")``."""
    from pdesurrogates.training import MultiFidelityConfig

    if cfg is None:
        return {}
    default = MultiFidelityConfig(seed=cfg.seed)
    changed = {k for k, v in cfg.to_dict().items() if v != default.to_dict()[k]}
    own = sorted(changed & set(_AUTO_OWN))
    if own:
        raise ValueError(
            f"--method auto scores every candidate on the same folds; remove {own} from the "
            "MF-DNN config (or fit --method mfdnn)"
        )
    kwargs: dict[str, Any] = {k: getattr(cfg, k) for k in changed & {"n_members", "keep"}}
    kwargs.update({k: getattr(cfg, k) for k in changed & {"low_arch", "l2_grid"}})
    fit = {k: v for k, v in cfg.fit_kwargs().items() if k in changed}
    if fit:
        kwargs["fit_kwargs"] = fit
    return kwargs


def _fit_auto(xs, ys, bounds, cfg, seed, progress):
    """``fit_multifidelity(..., method="auto")``: the chosen model and its scores."""
    from pdesurrogates.training import fit_multifidelity

    fit = fit_multifidelity(
        xs[0],
        ys[0],
        xs[1],
        ys[1],
        method="auto",
        bounds=bounds,
        seed=seed,
        mfdnn_kwargs=_auto_mfdnn_kwargs(cfg),
        progress=progress,
    )
    k = len(fit.members) if fit.method == "mfdnn" else 1

    def finite(v):
        return float(v) if np.isfinite(v) else None

    choice = {
        "chosen": _AUTO_KINDS[fit.method],
        "cv_scores": {_AUTO_KINDS[m]: finite(v) for m, v in fit.scores.items()},
        "cv_seconds": {_AUTO_KINDS[m]: float(v) for m, v in fit.seconds.items()},
    }
    return fit.model, fit.predict, k, choice


def _fit_model(method, xs, ys, bounds, cfg, seed, progress):
    from pdesurrogates.surrogates import CoKrigingGP
    from pdesurrogates.training import fit_multifidelity_net

    if method == "auto":
        return _fit_auto(xs, ys, bounds, cfg, seed, progress)
    if method in ("cokriging", "nargp"):
        kind = "ar1" if method == "cokriging" else "nargp"
        model = CoKrigingGP(in_dim=xs[0].shape[1], kind=kind, seed=seed)
        model.fit(xs[0], ys[0], xs[1], ys[1], bounds=bounds, progress=progress)
        return model, model.predict, 1, None
    fit = fit_multifidelity_net(
        xs,
        ys,
        bounds=bounds,
        n_members=cfg.n_members,
        keep=cfg.keep,
        criterion=cfg.criterion,
        holdout=cfg.holdout,
        folds=cfg.folds,
        low_arch=cfg.low_arch,
        l2_grid=cfg.l2_grid,
        seed=cfg.seed,
        progress=progress,
        fit_kwargs=cfg.fit_kwargs(),
    )
    return fit.model, fit.predict, len(fit.members), None


def fit_mf_run(
    out_dir: str | os.PathLike,
    *,
    problem: str | None = None,
    data: str | os.PathLike | None = None,
    method: str = "cokriging",
    n_lo: int = 21,
    n_hi: int = 6,
    n_test: int = 2000,
    members: int | None = None,
    config: str | os.PathLike | dict | None = None,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Fit a two-level multi-fidelity surrogate into the run directory ``out_dir``.

    Writes ``out_dir/model`` (:func:`pdesurrogates.save`), ``out_dir/run.json`` and, with
    a built-in ``problem``, ``out_dir/test.h5``: ``n_test`` uniform high-fidelity test
    points (seed ``seed + 1000``) on which ``test_rel_l2`` of the record is computed.

    Parameters
    ----------
    method : {"cokriging", "nargp", "mfdnn", "auto"}
        AR(1) co-kriging, NARGP (both :class:`~pdesurrogates.surrogates.CoKrigingGP`),
        the MF-DNN ensemble of :func:`~pdesurrogates.training.fit_multifidelity_net`
        (``members`` trained, half kept), or ``"auto"``: the best of the three by
        cross-validated error on the high-fidelity points
        (:func:`~pdesurrogates.training.fit_multifidelity`). An ``auto`` run records
        ``kind`` (the model chosen), ``chosen``, ``cv_scores`` (error of every candidate,
        RMS over the high-fidelity points divided by their std; None when not scored)
        and ``cv_seconds``; its model loads like any other.
    config : path or mapping, optional
        MF-DNN settings (``mfdnn`` and ``auto``): a TOML file with a ``[training]`` table
        of :class:`~pdesurrogates.training.MultiFidelityConfig` (``adam_steps``,
        ``n_members``, ...); ``members`` and ``seed`` override it. ``auto`` takes the
        settings of one net and the member counts; it chooses the folds itself.

    Returns
    -------
    dict
        The run record (``run.json``).
    """
    from pdesurrogates.io import save

    if method not in MF_METHODS:
        raise ValueError(f"--method must be one of {', '.join(MF_METHODS)}; got {method!r}")
    out_dir = Path(out_dir)
    refuse_existing_run(out_dir)
    if method not in ("mfdnn", "auto") and (config is not None or members is not None):
        raise ValueError(
            f"--config and --members set the MF-DNN fit; --method {method} takes neither"
        )
    cfg = mf_config(config, members=members, seed=seed) if method in ("mfdnn", "auto") else None
    if method == "auto":
        _auto_mfdnn_kwargs(cfg)  # refuse settings auto decides before anything is fitted
    p, xs, ys, bounds = load_mf_data(problem, data, n_lo, n_hi, seed)
    t0 = time.perf_counter()
    model, predict, k, choice = _fit_model(method, xs, ys, bounds, cfg, seed, progress)
    seconds = time.perf_counter() - t0
    d = xs[0].shape[1]
    record: dict[str, Any] = {
        "kind": choice["chosen"] if choice else method,
        "method": method,
        **(choice or {}),
        "problem": problem,
        "data": None if data is None else str(Path(data).resolve()),
        "n_lo": len(ys[0]),
        "n_hi": len(ys[1]),
        "in_dim": d,
        "input": [f"x{i}" for i in range(d)],
        "target": _TARGET,
        "ensemble": k,
        "seed": seed,
        "fit_seconds": seconds,
    }
    if cfg is not None and (method == "mfdnn" or record["kind"] == "mfdnn"):
        record["training"] = cfg.to_dict()
    if bounds is not None:
        record["bounds"] = np.asarray(bounds, dtype=np.float64).tolist()
    with new_run_dir(out_dir, f"mf fit -o {out_dir}", inputs=[data]):  # locked writes
        test = None
        if p is not None:
            xt = p.sample(n_test, seed=seed + 1000, method="uniform")
            yt = p.high(xt)
            pred = predict(xt)
            record.update(_test_scores(pred, yt))
            record["n_test"] = int(n_test)
            write_mf_test_data(out_dir / TEST_FILE, xt, yt, p.bounds, problem=problem)
            record["test_data"] = str((out_dir / TEST_FILE).resolve())
            test = (xt, yt, pred)
        save(model, out_dir / "model", metadata={k: v for k, v in record.items() if k != "input"})
        fig = plot_mf_fit(predict, xs, ys, bounds, problem=p, test=test, title=_fit_title(record))
        save_figure(fig, out_dir / FIT_FIGURE)
        record["figure"] = FIT_FIGURE
        atomic_write_text(out_dir / RUN_FILE, json.dumps(record, indent=2))
    return record


def _test_scores(pred, yt) -> dict[str, float]:
    """Scores on the high-fidelity test points, from the one evaluator."""
    from pdesurrogates.uq import evaluate

    rep = evaluate(pred, yt, levels=(0.95,))
    scores = {  # ||mu - y|| / ||y|| over the test points: the report's pooled value
        "test_rel_l2": float(rep.scalars["rel_l2_pooled"]),
        "test_rmse": float(rep.scalars["rmse"]),
    }
    if rep.kind != "point":
        scores["test_crps"] = float(rep.scalars["crps"])
        scores["test_coverage_95"] = float(rep.by_level["coverage"][0])
    return scores


def _fit_title(record) -> str:
    source = record["problem"] or Path(record["data"] or "data").name
    method = record["method"]
    if method == "auto":
        method = f"{record['kind']} (chosen by cross-validation)"
    return f"{method} on {source}: {record['n_lo']} low + {record['n_hi']} high points"


def _np_or_none(v):
    return None if v is None else np.asarray(v, dtype=np.float64)


_X0, _Y = Quantity("x0", long_name="input x0"), Quantity("y", long_name="output y")


@styled
def plot_mf_fit(predict, xs, ys, bounds=None, *, problem=None, test=None, title: str = ""):
    """The fitted multi-fidelity surrogate against its data (and the truth when known).

    1-D inputs: the predictive mean with a ±2 std band over the input range, the
    training points of both levels and, for a built-in problem, both true functions.
    More inputs: predicted against true high-fidelity output on the test points
    (``test = (x, y, prediction)``), or on the high-fidelity training points.
    """
    fig, axes = figure(size=(5.6, 3.8))
    ax = axes[0, 0]
    if xs[0].shape[1] == 1:
        _fit_curve(ax, predict, xs, ys, bounds, problem)
    else:
        _fit_scatter(ax, predict, xs, ys, test)
    ax.legend(fontsize=7)
    ax.set_title(title)
    return fig


def _fit_curve(ax, predict, xs, ys, bounds, problem) -> None:
    if bounds is not None:
        lo, hi = (float(v) for v in np.asarray(bounds, dtype=np.float64)[0])
    else:
        lo, hi = min(float(x.min()) for x in xs), max(float(x.max()) for x in xs)
    grid = np.linspace(lo, hi, 400)[:, None]
    pred = predict(grid)
    mean, std = np.asarray(pred.mean, dtype=np.float64), _np_or_none(pred.std)
    g = grid[:, 0]
    if problem is not None:
        ax.plot(g, problem.high(grid), color="k", lw=1, label="high fidelity (truth)")
        ax.plot(g, problem.low(grid), color="0.5", lw=1, ls=":", label="low fidelity (truth)")
    if std is not None:
        band = (mean - 2 * std, mean + 2 * std)
        ax.fill_between(g, *band, color="C0", alpha=0.2, lw=0, label="surrogate mean ± 2 std")
    ax.plot(g, mean, color="C0", label="surrogate mean")
    ax.plot(xs[0][:, 0], ys[0], "x", color="C1", label=f"low-fidelity data ({len(ys[0])})")
    n_hi = len(ys[1])
    ax.plot(xs[1][:, 0], ys[1], "o", mfc="none", color="k", label=f"high-fidelity data ({n_hi})")
    label_axes(ax, _X0, _Y)


def _fit_scatter(ax, predict, xs, ys, test) -> None:
    _, y, pred = test if test is not None else (xs[1], ys[1], predict(xs[1]))
    where = "test points" if test is not None else "high-fidelity training points"
    mean, std = np.asarray(pred.mean, dtype=np.float64), _np_or_none(pred.std)
    keep = slice(0, 400)
    err = None if std is None else 2 * std[keep]
    label = f"{where} ({len(y[keep])} shown)" + ("; bars: ± 2 std" if err is not None else "")
    ax.errorbar(y[keep], mean[keep], yerr=err, fmt=".", ms=3, lw=0.6, alpha=0.6, label=label)
    lim = [float(min(y.min(), mean.min())), float(max(y.max(), mean.max()))]
    ax.plot(lim, lim, color="0.3", ls="--", lw=1, label="predicted = true")
    label_axes(ax, _Y.derived("true high-fidelity {}"), _Y.derived("surrogate mean of {}"))


# --------------------------------------------------------------------------- predictor
def _mf_check(ds, record) -> str | None:
    names = record["input"]
    missing = [n for n in names if n not in ds.params]
    if missing:
        return f"it has no input parameter {missing} (parameters: {sorted(ds.params)})"
    return None


def _mf_predict(model, record, ds, split, batch_size) -> Predicted:
    """Gaussian mean/std for co-kriging and NARGP, members as samples for an MF-DNN."""
    import torch

    from pdesurrogates.surrogates import CoKrigingGP, Ensemble
    from pdesurrogates.uq import Prediction

    rows = ds if split == "all" else ds.split(split)
    x = np.stack([rows.param_values(n) for n in record["input"]], axis=-1)
    if isinstance(model, CoKrigingGP):
        pred = model.predict(x)
    else:
        xt = torch.as_tensor(x, dtype=next(model.parameters()).dtype)
        with torch.no_grad():
            if isinstance(model, Ensemble):
                pred = Prediction(None, samples=model.member_outputs(xt).double().numpy())
            else:
                pred = Prediction(model(xt).double().numpy())
    truth = rows.load(_TARGET) if _TARGET in ds.fields else None
    return Predicted(pred, _TARGET, ("sample",), {}, "", np.asarray(rows.indices), truth)


def _mf_infer(model) -> dict | None:
    from pdesurrogates.surrogates import CoKrigingGP, Ensemble, MultiFidelityNet

    if isinstance(model, CoKrigingGP):
        kind, d, k = ("cokriging" if model.kind == "ar1" else "nargp"), model.in_dim, 1
    else:
        members = list(model.members) if isinstance(model, Ensemble) else [model]
        if not all(isinstance(m, MultiFidelityNet) for m in members):
            return None
        kind, d, k = "mfdnn", members[0].in_dim, len(members)
    return {"kind": kind, "input": [f"x{i}" for i in range(d)], "target": _TARGET, "ensemble": k}


register_family(
    Family(
        name="multifidelity",
        kinds=MF_KINDS,
        expects=lambda r: (
            f"a pdesurrogates-h5 dataset of input points as parameters {r['input']} (and "
            f"the output as field {_TARGET!r} to score), such as {TEST_FILE} written by "
            "`pdesurrogates mf fit --problem NAME -o RUN`"
        ),
        check=_mf_check,
        predict=_mf_predict,
        infer=_mf_infer,
    )
)
