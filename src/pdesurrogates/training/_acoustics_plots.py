"""Plots of acoustics surrogates: impulse responses and field snapshots.

Used by :func:`~pdesurrogates.training.evaluate_deeponet`; they take plain arrays, so
any model's predictions can be drawn against the FDTD reference.
"""

from __future__ import annotations

import numpy as np

__all__ = ["plot_field_snapshots", "plot_impulse_responses"]


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
    import matplotlib.pyplot as plt

    r = len(receivers)
    fig, axes = plt.subplots(r, 1, figsize=(7, 1.6 * r + 0.6), sharex=True, squeeze=False)
    for i, ax in enumerate(axes[:, 0]):
        ax.plot(1e3 * np.asarray(times), reference[i], "k-", lw=1.2, label="reference (FDTD)")
        ax.plot(1e3 * np.asarray(times), predicted[i], "C1--", lw=1.2, label="DeepONet")
        ax.set_ylabel("p (Pa)")
        pos = ", ".join(f"{v:.2f}" for v in np.atleast_1d(receivers[i]))
        ax.set_title(f"receiver ({pos}) m", fontsize=9)
    axes[-1, 0].set_xlabel("time (ms)")
    axes[0, 0].legend(fontsize=8, loc="upper right")
    if source is not None:
        src = ", ".join(f"{v:.2f}" for v in np.atleast_1d(source))
        fig.suptitle(f"impulse responses, source at ({src}) m", fontsize=10)
    fig.tight_layout()
    return fig


def plot_field_snapshots(coords, reference, predicted, time_indices):
    """Reference, predicted and error fields at chosen times (1D: curves; 2D: images).

    Parameters
    ----------
    coords : dict with "time", "x"[, "y"]
    reference, predicted : arrays of shape (T, n_x[, n_y]), Pa
    time_indices : sequence of int

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    times = np.asarray(coords["time"])
    n = len(time_indices)
    if reference.ndim == 2:
        fig, axes = plt.subplots(1, n, figsize=(4 * n, 3), squeeze=False)
        for ax, k in zip(axes[0], time_indices, strict=True):
            ax.plot(coords["x"], reference[k], "k-", label="reference")
            ax.plot(coords["x"], predicted[k], "C1--", label="DeepONet")
            ax.set_title(f"t = {1e3 * times[k]:.1f} ms", fontsize=9)
            ax.set_xlabel("x (m)")
        axes[0, 0].set_ylabel("p (Pa)")
        axes[0, 0].legend(fontsize=8)
        fig.tight_layout()
        return fig
    fig, axes = plt.subplots(3, n, figsize=(3.3 * n, 9), squeeze=False)
    ext = [coords["x"][0], coords["x"][-1], coords["y"][0], coords["y"][-1]]
    for j, k in enumerate(time_indices):
        vmax = float(np.abs(reference[k]).max()) or 1.0
        panels = (
            (reference[k], "reference"),
            (predicted[k], "DeepONet"),
            (predicted[k] - reference[k], "error"),
        )
        for i, (img, name) in enumerate(panels):
            im = axes[i, j].imshow(
                img.T, origin="lower", extent=ext, cmap="RdBu_r", vmin=-vmax, vmax=vmax
            )
            axes[i, j].set_title(f"{name}, t = {1e3 * times[k]:.1f} ms", fontsize=9)
            fig.colorbar(im, ax=axes[i, j], shrink=0.8)
    fig.tight_layout()
    return fig
