"""Plots of acoustics surrogates: impulse responses and field snapshots.

Used by :func:`~pdesurrogates.training.evaluate_deeponet`; they take plain arrays, so
any model's predictions can be drawn against the FDTD reference.
"""

from __future__ import annotations

import numpy as np

from pdesurrogates._figures import (
    Quantity,
    colorbar,
    figure,
    image_panel,
    label_axes,
    panel_title,
    styled,
)

__all__ = ["plot_field_snapshots", "plot_impulse_responses"]


_PRESSURE = Quantity("p", units="Pa", long_name="sound pressure p")
_TIME = Quantity("time", units="ms")
_X, _Y = Quantity("x", units="m"), Quantity("y", units="m")


@styled
def plot_impulse_responses(times, reference, predicted, receivers, *, source=None):
    """Predicted vs reference impulse responses, one panel per receiver.

    Parameters
    ----------
    times : (T,) array, s
    reference, predicted : (R, T) arrays, Pa
    receivers : (R, D) array, m

    Returns
    -------
    matplotlib.figure.Figure
    """
    r = len(receivers)
    fig, axes = figure(r, 1, size=(7.0, 1.5 * r + 0.8), sharex=True)
    t_ms = 1e3 * np.asarray(times)
    for i, ax in enumerate(axes[:, 0]):
        ax.plot(t_ms, reference[i], "k-", lw=1.2, label="reference (FDTD)")
        ax.plot(t_ms, predicted[i], "C1--", lw=1.2, label="DeepONet")
        label_axes(ax, _TIME, _PRESSURE)
        pos = ", ".join(f"{v:.2f}" for v in np.atleast_1d(receivers[i]))
        ax.set_title(f"receiver at ({pos}) m")
    axes[0, 0].legend(loc="upper right", ncols=2)
    if source is not None:
        src = ", ".join(f"{v:.2f}" for v in np.atleast_1d(source))
        fig.suptitle(f"Impulse responses, source at ({src}) m")
    return fig


@styled
def plot_field_snapshots(
    coords, reference, predicted, time_indices, *, sample=None, split: str | None = None
):
    """Reference, predicted and error fields at chosen times (1D: curves; 2D: images).

    Parameters
    ----------
    coords : dict with "time" (s), "x"[, "y"] (m)
    reference, predicted : arrays of shape (T, n_x[, n_y]), Pa
    time_indices : sequence of int
    sample, split : optional
        The source (sample id) and split named in the title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    times = np.asarray(coords["time"])
    n = len(time_indices)
    if reference.ndim == 2:
        fig, axes = figure(1, n, panel=(3.6, 2.8), sharey=True)
        for ax, k in zip(axes[0], time_indices, strict=True):
            ax.plot(coords["x"], reference[k], "k-", label="reference (FDTD)")
            ax.plot(coords["x"], predicted[k], "C1--", label="DeepONet")
            ax.set_title(f"t = {1e3 * times[k]:.1f} ms")
            label_axes(ax, _X, _PRESSURE)
        axes[0, 0].legend()
        panel_title(fig, "Sound pressure", sample=sample, split=split)
        return fig
    fig, axes = figure(3, n, panel=(2.9, 2.5))
    xy = (np.asarray(coords["x"]), np.asarray(coords["y"]))
    rows = ("reference (FDTD)", "DeepONet", "error (DeepONet − ref.)")
    for j, k in enumerate(time_indices):
        vmax = float(np.abs(reference[k]).max()) or 1.0
        imgs = (reference[k], predicted[k], predicted[k] - reference[k])
        for i, (img, name) in enumerate(zip(imgs, rows, strict=True)):
            im = image_panel(
                fig,
                axes[i, j],
                img,
                _PRESSURE,
                axes=(_X, _Y),
                coords=xy,
                title=f"{name}, t = {1e3 * times[k]:.1f} ms",
                cbar=False,
                cmap="RdBu_r",
                vmin=-vmax,
                vmax=vmax,
            )
        # one scale per time: reference, prediction and error share it
        colorbar(fig, im, list(axes[:, j]), _PRESSURE, location="bottom", shrink=0.8, aspect=30)
    panel_title(fig, "Sound pressure snapshots", sample=sample, split=split)
    return fig
