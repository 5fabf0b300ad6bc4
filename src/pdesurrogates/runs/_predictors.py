"""Predictors of the field families: neural operators (MgNO, FNO) and DeepONet.

The multi-fidelity predictor is in :mod:`pdesurrogates.runs._mf`.
"""

from __future__ import annotations

import numpy as np
import torch

from pdesurrogates.errors import DatasetError, TrainingError
from pdesurrogates.runs._registry import Family, Predicted, register_family

__all__ = ["predict_fields"]


# --------------------------------------------------------------------------- operators
def _batches(ds, inputs, target, batch_size):
    from pdesurrogates.training import fields_to_channels

    for batch in ds.loader(batch_size=batch_size, shuffle=False):
        x = fields_to_channels(batch, inputs)
        y = fields_to_channels(batch, target) if target in batch else None
        yield x, y


@torch.no_grad()
def predict_fields(
    model: torch.nn.Module, ds, inputs, target, *, batch_size: int = 16
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor]:
    """Run ``model`` over ``ds``: ``(mean, samples or None, truth or None, inputs)``, all
    channel-first ``(N, C, X, Y)`` (samples ``(K, N, C, X, Y)`` for ensembles)."""
    from pdesurrogates.surrogates import Ensemble

    model.eval()
    means, samples, truths, xs = [], [], [], []
    for x, y in _batches(ds, inputs, target, batch_size):
        if isinstance(model, Ensemble):
            s = model.member_outputs(x)
            samples.append(s)
            means.append(s.mean(0))
        else:
            means.append(model(x))
        xs.append(x)
        if y is not None:
            truths.append(y)
    if not means:
        raise DatasetError(f"{ds.path}: no samples to predict")
    mean = torch.cat(means)
    if not torch.isfinite(mean).all():
        raise TrainingError("the model produced NaN/Inf predictions; retrain or check data")
    return (
        mean,
        torch.cat(samples, dim=1) if samples else None,
        torch.cat(truths) if truths else None,
        torch.cat(xs),
    )


def _operator_check(ds, record) -> str | None:
    missing = [n for n in record["input"] if n not in ds.fields]
    if missing:
        return f"it has no input field {missing} (fields: {sorted(ds.fields)})"
    return None


def _operator_predict(model, record, ds, split, batch_size) -> Predicted:
    from pdesurrogates.uq import Prediction

    inputs, target = record["input"], record["target"]
    rows = ds if split == "all" else ds.split(split)
    mean, samples, truth, _ = predict_fields(model, rows, inputs, target, batch_size=batch_size)
    ref = ds.fields.get(target) or ds.fields[inputs[0]]
    comp = ref.dims[-1] == "component"
    mean = mean.cpu().numpy()
    if samples is not None:
        pred = Prediction(mean, samples=samples.cpu().numpy())
    else:
        pred = Prediction(mean)
    dims = ref.dims if target in ds.fields or not comp else (*ref.dims[:-1], "component")
    coords = {d: ds.coords[d] for d in dims if d != "sample" and d in ds.coords}
    if comp and "component" not in coords:
        coords["component"] = np.arange(mean.shape[1])
    return Predicted(
        pred,
        target,
        tuple(dims),
        coords,
        units=ref.units if target in ds.fields else "",
        source_index=np.asarray(rows.indices),
        truth=None if truth is None else truth.cpu().numpy(),
    )


register_family(
    Family(
        name="operator",
        kinds=("mgno", "fno"),
        expects=lambda r: (
            f"a pdesurrogates-h5 field dataset with the input field(s) {r['input']} on the "
            "training grid (like the file it was trained on)"
        ),
        check=_operator_check,
        predict=_operator_predict,
    )
)


# --------------------------------------------------------------------------- DeepONet
def _deeponet_check(ds, record) -> str | None:
    import json

    try:
        setup = json.loads(ds.attrs.get("source", "") or "{}")
    except ValueError:
        setup = {}
    if "p" not in ds.fields or not str(setup.get("generator", "")).startswith("acoustics"):
        return "it is not an acoustics dataset (no field 'p' and acoustics source)"
    dim = record.get("dim")
    if dim is not None and len(setup.get("lengths", ())) != dim:
        return f"it is {len(setup['lengths'])}-D acoustics data, the run is {dim}-D"
    return None


def _deeponet_predict(model, record, ds, split, batch_size) -> Predicted:
    """The pressure field ``p`` of ``split`` on the whole stored grid, as
    :func:`pdesurrogates.training.evaluate_deeponet` scores it."""
    from pdesurrogates.training import load_source_fields, predict_deeponet_members, query_grid
    from pdesurrogates.uq import Prediction

    if split == "all":
        raise ValueError(
            "--split all: a DeepONet run predicts one split at a time; use train, valid or test"
        )
    src, info = load_source_fields(ds.path, split)
    dim = len(info["setup"]["lengths"])
    grid = query_grid(info["coords"], dim)
    samples = predict_deeponet_members(model, src.sources.numpy().astype(np.float64), grid)
    spec = ds.fields["p"]
    # load_source_fields reads the split sorted; the data file's split order is the truth's
    order = torch.as_tensor(np.searchsorted(info["indices"], ds.split(split).indices))
    shape = (len(order), *ds.shape("p"))
    samples = samples[:, order].reshape(samples.shape[0], *shape)
    mean = samples.mean(0)
    pred = Prediction(mean.numpy()) if samples.shape[0] == 1 else Prediction(mean, samples=samples)
    truth = src.fields_data[order].numpy()  # channel-first, like the prediction
    coords = {d: ds.coords[d] for d in spec.dims[1:]}
    index = info["indices"][order.numpy()]
    return Predicted(pred, "p", spec.dims, coords, spec.units, index, truth)


def _deeponet_infer(model) -> dict | None:
    from pdesurrogates.surrogates import DeepONet, Ensemble

    members = list(model.members) if isinstance(model, Ensemble) else [model]
    if not all(isinstance(m, DeepONet) for m in members):
        return None
    return {"kind": "deeponet", "target": "p", "ensemble": len(members)}


register_family(
    Family(
        name="deeponet",
        kinds=("deeponet",),
        expects=lambda r: (
            "an acoustics dataset (field 'p' and source positions) from `pdesurrogates "
            f"generate acoustics{r.get('dim', 1)}d`"
            if r.get("dim")
            else "an acoustics dataset from `pdesurrogates generate acoustics1d|acoustics2d`"
        ),
        check=_deeponet_check,
        predict=_deeponet_predict,
        infer=_deeponet_infer,
    )
)
