"""Room-acoustic measures of impulse responses: Schroeder decay curves and EDT.

:func:`energy_decay_curve` is the Schroeder backward integral of the squared impulse
response, in dB; :func:`early_decay_time` is the ISO 3382-1 early decay time, six times
the time the decay curve takes to fall from 0 to -10 dB (least-squares line over that
range). :func:`decay_errors` compares predicted and reference responses both ways.
"""

from __future__ import annotations

import numpy as np

__all__ = ["decay_errors", "early_decay_time", "energy_decay_curve"]


def energy_decay_curve(ir, times=None) -> np.ndarray:
    """Schroeder curve ``10 log10(int_t^T p^2 / int_0^T p^2)`` (dB), same shape as ``ir``.

    The integral is the trapezoidal rule on the (uniform) samples along the last axis;
    the value at the last sample is ``-inf`` (nothing left to integrate).

    Examples
    --------
    An exponential decay ``p = exp(-t / tau)`` falls by ``20 log10(e) / tau`` dB per
    second (ignoring the truncation at ``T``):

    >>> import numpy as np
    >>> t = np.linspace(0, 1, 20001)
    >>> edc = energy_decay_curve(np.exp(-t / 0.05), t)
    >>> round(float(edc[1000] - edc[0]), 2)  # t = 0.05 s: -8.69 dB
    -8.69
    """
    p2 = np.square(np.asarray(ir, dtype=float))
    seg = 0.5 * (p2[..., 1:] + p2[..., :-1])
    tail = np.concatenate([np.cumsum(seg[..., ::-1], axis=-1)[..., ::-1], 0 * seg[..., :1]], -1)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(tail / tail[..., :1])


def early_decay_time(ir, times) -> np.ndarray:
    """Early decay time (s, ISO 3382-1): ``-60 / slope`` of the decay curve's 0 to -10 dB fit.

    Parameters
    ----------
    ir : (..., T) array
        Impulse responses (Pa) sampled at ``times``.
    times : (T,) array
        Sample times (s).

    Returns
    -------
    ndarray, shape (...)
        NaN where the curve never reaches -10 dB within the window.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.linspace(0, 1, 20001)
    >>> round(float(early_decay_time(np.exp(-t * 3 * np.log(10) / 0.27), t)), 4)  # T60
    0.27
    """
    times = np.asarray(times, dtype=float)
    edc = energy_decay_curve(ir, times)
    flat = edc.reshape(-1, edc.shape[-1])
    out = np.full(len(flat), np.nan)
    for i, curve in enumerate(flat):
        sel = curve >= -10.0
        last = np.flatnonzero(~sel)
        if not len(last):
            continue
        sel[last[0] :] = False  # only the first pass from 0 to -10 dB
        slope = np.polyfit(times[sel], curve[sel], 1)[0] if sel.sum() > 1 else np.nan
        out[i] = -60.0 / slope if slope < 0 else np.nan
    return out.reshape(edc.shape[:-1])


def decay_errors(predicted, reference, times, *, floor_db: float = -20.0) -> dict:
    """Decay-curve and EDT errors of predicted impulse responses against references.

    Parameters
    ----------
    predicted, reference : (..., T) arrays
        Impulse responses (Pa).
    times : (T,) array
        Sample times (s).
    floor_db : float
        The decay curves are compared where the reference curve is above this level
        (the truncated Schroeder integral falls to ``-inf`` at the end of the window).

    Returns
    -------
    dict
        ``edc_max_db`` (largest absolute EDC difference, dB, over all responses),
        ``edc_mean_db`` (mean absolute difference), ``edc_within_1db`` (fraction of
        responses whose curve stays within 1 dB), ``edt_rel_mean`` / ``edt_rel_max``
        (relative EDT error per response), ``edt_within_5pct`` (fraction of the responses
        whose reference EDT exists that are within 5 %, the just-noticeable difference of
        EDT; a missing predicted EDT counts as a miss), ``edt_ref_s`` (mean
        reference EDT, s). For ``(N, R, T)`` arrays (sources x receivers x times) also
        ``edt_room_rel_max``: the largest relative error, over the sources, of the
        EDT averaged over the receivers (the room's EDT, ISO 3382-1's spatial average).
    """
    e_p = energy_decay_curve(predicted, times)
    e_r = energy_decay_curve(reference, times)
    window = e_r >= floor_db
    with np.errstate(invalid="ignore"):  # -inf - -inf past the window's end
        diff = np.where(window, np.abs(e_p - e_r), 0.0)
    worst = diff.max(axis=-1)  # per response
    edt_p = early_decay_time(predicted, times)
    edt_r = early_decay_time(reference, times)
    rel = np.abs(edt_p - edt_r) / edt_r
    out = {
        "edc_max_db": float(worst.max()),
        "edc_mean_db": float(diff[window].mean()),
        "edc_within_1db": float(np.mean(worst <= 1.0)),
        "edt_rel_mean": float(np.nanmean(rel)),
        "edt_rel_max": float(np.nanmax(rel)),
        # over the responses whose reference reaches -10 dB; no predicted EDT is a miss
        "edt_within_5pct": float(np.mean(np.nan_to_num(rel[np.isfinite(edt_r)], nan=1.0) <= 0.05)),
        "edt_ref_s": float(np.nanmean(edt_r)),
    }
    if rel.ndim >= 2:
        room_p, room_r = np.nanmean(edt_p, axis=-1), np.nanmean(edt_r, axis=-1)
        out["edt_room_rel_max"] = float(np.nanmax(np.abs(room_p - room_r) / room_r))
    return out
