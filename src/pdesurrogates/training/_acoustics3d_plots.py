"""Plots of 3D room-acoustics surrogates: impulse responses, decay curves, field slices.

Used by :func:`~pdesurrogates.training.evaluate_deeponet` for 3D rooms and by the 3D
example; they take plain arrays (times in s, pressures in Pa, positions in m) and label
every axis with its unit.
"""

from __future__ import annotations

import numpy as np

__all__ = ["plot_decay_curves", "plot_field_slices", "plot_room_responses"]


def _chosen(n: int, k: int) -> list[int]:
    return sorted({round(v) for v in np.linspace(0, n - 1, min(n, k))})


def plot_room_responses(times, reference, predicted, receivers, *, source=None, n_panels=6):
    """Predicted vs reference impulse responses at up to ``n_panels`` receivers.

    Parameters
    ----------
    times : (T,) array, s
    reference, predicted : (R, T) arrays, Pa
    receivers : (R, D) array, m
    source : (D,) array, m, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    idx = _chosen(len(receivers), n_panels)
    cols = 2 if len(idx) > 3 else 1
    rows = -(-len(idx) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 1.9 * rows + 0.7), squeeze=False)
    ms = 1e3 * np.asarray(times)
    for ax, i in zip(axes.flat, idx, strict=False):
        ax.plot(ms, reference[i], "k-", lw=1.1, label="reference (FDTD)")
        ax.plot(ms, predicted[i], "C1--", lw=1.1, label="DeepONet")
        ax.set_ylabel("p (Pa)")
        ax.set_xlabel("time (ms)")
        pos = ", ".join(f"{v:.2f}" for v in receivers[i])
        ax.set_title(f"receiver ({pos}) m", fontsize=9)
    for ax in list(axes.flat)[len(idx) :]:
        ax.set_visible(False)
    axes[0, 0].legend(fontsize=8, loc="upper right")
    if source is not None:
        src = ", ".join(f"{v:.2f}" for v in source)
        fig.suptitle(f"impulse responses, source at ({src}) m", fontsize=10)
    fig.tight_layout()
    return fig


def plot_decay_curves(times, reference, predicted, receivers, *, n_curves=4):
    """Schroeder energy decay curves (dB) of predicted and reference responses.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    from pdesurrogates.solvers.reference import energy_decay_curve

    fig, ax = plt.subplots(figsize=(6.5, 4))
    ms = 1e3 * np.asarray(times)
    e_ref = energy_decay_curve(reference, times)
    e_pred = energy_decay_curve(predicted, times)
    for k, i in enumerate(_chosen(len(receivers), n_curves)):
        pos = ", ".join(f"{v:.1f}" for v in receivers[i])
        ax.plot(ms, e_ref[i], "-", color=f"C{k}", lw=1.2, label=f"FDTD ({pos}) m")
        ax.plot(ms, e_pred[i], "--", color=f"C{k}", lw=1.2, label=f"DeepONet ({pos}) m")
    ax.axhline(-10.0, color="0.6", lw=0.8, ls=":")
    ax.set_ylim(-25, 1)
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("energy decay (dB)")
    ax.set_title("Schroeder decay curves (EDT fits 0 to -10 dB)", fontsize=10)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def plot_field_slices(coords, reference, predicted, time_indices, *, axis="z", at=None):
    """Reference, predicted and error pressure on a plane at chosen times.

    Parameters
    ----------
    coords : dict with "time", "x", "y", "z" (s, m)
    reference, predicted : (T, n_x, n_y, n_z) arrays, Pa
    time_indices : sequence of int
    axis : {"x", "y", "z"}
        Normal of the slice plane.
    at : float, optional
        Position of the plane along ``axis`` (m); default the middle.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    names = ("x", "y", "z")
    d = names.index(axis)
    grid = np.asarray(coords[axis])
    k = len(grid) // 2 if at is None else int(np.argmin(np.abs(grid - at)))
    u, v = [a for a in names if a != axis]
    ext = [coords[u][0], coords[u][-1], coords[v][0], coords[v][-1]]
    times = np.asarray(coords["time"])
    n = len(time_indices)
    fig, axes = plt.subplots(3, n, figsize=(3.4 * n, 8.4), squeeze=False)
    for j, t in enumerate(time_indices):
        ref = np.take(reference[t], k, axis=d)
        pred = np.take(predicted[t], k, axis=d)
        vmax = float(np.abs(ref).max()) or 1.0
        for i, (img, name) in enumerate(((ref, "FDTD"), (pred, "DeepONet"), (pred - ref, "error"))):
            ax = axes[i, j]
            im = ax.imshow(img.T, origin="lower", extent=ext, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
            ax.set_title(f"{name}, t = {1e3 * times[t]:.1f} ms", fontsize=9)
            ax.set_xlabel(f"{u} (m)")
            ax.set_ylabel(f"{v} (m)")
            fig.colorbar(im, ax=ax, shrink=0.8, label="p (Pa)")
    fig.suptitle(f"pressure on the plane {axis} = {grid[k]:.2f} m", fontsize=10)
    fig.tight_layout()
    return fig
