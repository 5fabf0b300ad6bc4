"""One look for every figure the package writes: sizes, fonts, labels with units.

Every plotting function of pdesurrogates builds its figure with :func:`figure` (a bare
``matplotlib.figure.Figure``: no pyplot state and no GUI backend, so it is safe in scripts,
servers and threads), names what it draws with :class:`Quantity` (the ``long_name`` and
``units`` a dataset file stores for its fields and coordinates), labels colorbars with
:func:`colorbar`, says which sample a panel shows with :func:`panel_title`, and writes PNG
files atomically with :func:`save_figure`. matplotlib is imported only when a figure is
made.

>>> Quantity("u", units="Pa", long_name="sound pressure").label
'sound pressure (Pa)'
>>> Quantity("a", units="1", long_name="permeability a").label
'permeability a (–)'
>>> sample_tag(17, "test")
'sample 17, test split'
"""

from __future__ import annotations

import functools
import io
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from pdesurrogates._files import atomic_replace, unique_partial

__all__ = [
    "DPI",
    "PANEL",
    "STYLE",
    "Quantity",
    "colorbar",
    "figure",
    "finish",
    "image_panel",
    "label_axes",
    "panel_title",
    "robust_limits",
    "sample_tag",
    "save_figure",
    "style",
    "styled",
    "units_text",
]

#: rcParams of every figure (matplotlib reads most of them when an artist is created)
STYLE: dict[str, Any] = {
    "font.size": 9.0,
    "axes.titlesize": 9.0,
    "axes.labelsize": 9.0,
    "xtick.labelsize": 8.0,
    "ytick.labelsize": 8.0,
    "legend.fontsize": 8.0,
    "legend.framealpha": 0.85,
    "figure.titlesize": 10.0,
    "lines.linewidth": 1.5,
    "image.origin": "lower",
    "image.interpolation": "nearest",
    "axes.formatter.limits": (-3, 4),
    "savefig.dpi": 150,
}
#: resolution of written PNG files
DPI = 150
#: size (inches) of one image panel with its colorbar
PANEL = (3.3, 2.6)


@dataclass(frozen=True)
class Quantity:
    """A named physical quantity: what an axis, a colorbar or a panel shows.

    Parameters
    ----------
    name : str
        Short name (a field or coordinate name such as ``"u"`` or ``"x"``).
    units : str
        Units as stored in the file (``"m"``, ``"Pa"``; ``"1"`` means dimensionless;
        ``""`` unknown).
    long_name : str
        Descriptive name (``"pressure u"``); ``name`` is shown when empty.
    """

    name: str
    units: str = ""
    long_name: str = ""

    @classmethod
    def from_attrs(cls, name: str, attrs: Mapping[str, Any] | Any = None) -> Quantity:
        """From a mapping (HDF5 attributes) or an object (``FieldSpec``) holding ``units``
        and ``long_name``; missing entries are empty."""

        def get(key: str) -> str:
            v = attrs.get(key, "") if isinstance(attrs, Mapping) else getattr(attrs, key, "")
            if isinstance(v, bytes):
                v = v.decode("utf-8", "replace")
            if isinstance(v, np.ndarray) and v.size == 1:
                v = v.item()
            return "" if v is None else str(v)

        return cls(name, units=get("units"), long_name=get("long_name"))

    @property
    def title(self) -> str:
        """The descriptive name (``long_name``, else ``name``)."""
        return self.long_name or self.name

    @property
    def label(self) -> str:
        """``"title (units)"``; just the title when the units are unknown."""
        u = units_text(self.units)
        return f"{self.title} ({u})" if u else self.title

    def derived(self, template: str, units: str | None = None) -> Quantity:
        """A quantity computed from this one: ``template`` with ``{}`` replaced by the
        title (``q.derived("|error| of {}")``), same units unless ``units`` is given."""
        return replace(
            self,
            long_name=template.format(self.title),
            units=self.units if units is None else units,
        )


def units_text(units: str) -> str:
    """How units are printed: ``"1"`` (dimensionless) as ``"–"``, others as stored."""
    u = (units or "").strip()
    return "–" if u in ("1", "-", "dimensionless") else u


def sample_tag(sample: Any = None, split: str | None = None) -> str:
    """``"sample 17, test split"`` (either part may be missing; ``""`` with neither)."""
    parts = []
    if sample is not None:
        parts.append(f"sample {sample}")
    if split:
        parts.append("all samples" if split == "all" else f"{split} split")
    return ", ".join(parts)


# --------------------------------------------------------------------------- figures
@contextmanager
def style() -> Iterator[None]:
    """Context in which matplotlib uses :data:`STYLE`."""
    import matplotlib

    with matplotlib.rc_context(STYLE):
        yield


def styled(fn: Callable) -> Callable:
    """Decorator of a plotting function: build the figure under :func:`style`, then
    :func:`finish` it (the result may be a Figure or anything with ``.figure``)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with style():
            out = fn(*args, **kwargs)
        finish(getattr(out, "figure", out))
        return out

    return wrapper


def figure(
    nrows: int = 1,
    ncols: int = 1,
    *,
    size: tuple[float, float] | None = None,
    panel: tuple[float, float] | None = None,
    **subplots_kw: Any,
):
    """A constrained-layout Figure and its axes as a 2-D array ``(nrows, ncols)``.

    ``size`` is the whole figure (inches); ``panel`` the size of one panel (default
    :data:`PANEL` when ``size`` is not given).
    """
    from matplotlib.figure import Figure

    if size is None:
        w, h = panel or PANEL
        size = (w * ncols, h * nrows)
    with style():
        fig = Figure(figsize=size, layout="constrained")
        # room between a colorbar's label and the next panel's y label
        fig.get_layout_engine().set(w_pad=0.06, wspace=0.04)
        axes = fig.subplots(nrows, ncols, squeeze=False, **subplots_kw)
    return fig, axes


def finish(fig) -> Any:
    """Fix sizes that matplotlib would otherwise read from the global rcParams at draw
    time (tick labels are created lazily). Returns ``fig``."""
    for ax in fig.axes:
        ax.tick_params(labelsize=STYLE["xtick.labelsize"])
    return fig


def label_axes(ax, x: Quantity | str | None = None, y: Quantity | str | None = None) -> None:
    """Label the axes of ``ax`` with quantities (their labels carry the units)."""
    if x is not None:
        ax.set_xlabel(x.label if isinstance(x, Quantity) else x)
    if y is not None:
        ax.set_ylabel(y.label if isinstance(y, Quantity) else y)


def colorbar(fig, mappable, ax, label: Quantity | str, **kwargs: Any):
    """A colorbar of ``mappable`` beside ``ax``, labelled (with units for a Quantity)."""
    kwargs.setdefault("shrink", 0.9)
    kwargs.setdefault("pad", 0.02)
    with style():
        cb = fig.colorbar(mappable, ax=ax, **kwargs)
        cb.set_label(label.label if isinstance(label, Quantity) else label)
    return cb


def panel_title(target, text: str, *, sample: Any = None, split: str | None = None) -> str:
    """Title of an axes (or, given a Figure, its suptitle) naming the sample shown:
    ``"pressure u — sample 17, test split"``. Returns the text."""
    tag = sample_tag(sample, split)
    full = f"{text} — {tag}" if tag and text else (text or tag)
    with style():
        if hasattr(target, "suptitle"):
            target.suptitle(full)
        else:
            target.set_title(full)
    return full


def grid_extent(coords: Sequence[np.ndarray] | None, shape: tuple[int, int]) -> tuple:
    """``imshow`` extent of a 2-D field on coordinate arrays (cell centres: half a
    spacing beyond the first and last value), or grid indices without coordinates."""
    if coords is None:
        return (-0.5, shape[0] - 0.5, -0.5, shape[1] - 0.5)
    ext = []
    for c, n in zip(coords, shape, strict=True):
        c = np.asarray(c, dtype=np.float64)
        if c.size != n:
            raise ValueError(f"a coordinate has {c.size} values but the field has {n} along it")
        h = (c[-1] - c[0]) / (n - 1) / 2 if n > 1 else 0.5
        ext += [float(c[0] - h), float(c[-1] + h)]
    return tuple(ext)


def image_panel(
    fig,
    ax,
    img,
    quantity: Quantity | str,
    *,
    axes: Sequence[Quantity] | None = None,
    coords: Sequence[np.ndarray] | None = None,
    title: str = "",
    cbar: bool = True,
    **imshow_kw: Any,
):
    """Draw a 2-D field ``img[x, y]`` on ``ax`` with labelled axes and a labelled colorbar.

    ``axes`` are the quantities of the two grid axes (default: grid indices) and
    ``coords`` their values (cell centres). With ``cbar=False`` the caller draws one
    colorbar for several panels (:func:`colorbar` with a list of axes). Returns the image.
    """
    img = np.asarray(img)
    if img.ndim != 2:
        raise ValueError(f"image panels need a 2-D field, got shape {img.shape}")
    ext = grid_extent(coords, img.shape)
    with style():
        im = ax.imshow(img.T, origin="lower", extent=ext, aspect="equal", **imshow_kw)
    ax_x, ax_y = axes if axes is not None else (Quantity("x index"), Quantity("y index"))
    label_axes(ax, ax_x, ax_y)
    if title:
        ax.set_title(title)
    if cbar:
        colorbar(fig, im, ax, quantity)
    return im


def robust_limits(*arrays, q: float = 0.5, pad: float = 0.03) -> tuple[float, float]:
    """Axis limits holding the central ``100 - 2q`` % of the pooled values (default the
    0.5–99.5 % quantiles, so a few outliers do not squash the bulk), padded by ``pad``
    of the range.

    >>> lo, hi = robust_limits(np.r_[np.linspace(0, 1, 1000), -50.0])
    >>> -0.1 < lo < 0.05 and 0.95 < hi < 1.1
    True
    """
    v = np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in arrays])
    v = v[np.isfinite(v)]
    if v.size == 0:
        return 0.0, 1.0
    lo, hi = (float(t) for t in np.quantile(v, [q / 100, 1 - q / 100]))
    if hi <= lo:
        lo, hi = float(v.min()), float(v.max())
    if hi <= lo:
        return lo - 0.5, hi + 0.5
    d = pad * (hi - lo)
    return lo - d, hi + d


def save_figure(fig, path: str | os.PathLike, *, dpi: int = DPI) -> Path:
    """Write ``fig`` as a PNG (or the format of the suffix) atomically: rendered in
    memory, then renamed over ``path``. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    fig = getattr(fig, "figure", fig)
    with style():
        fig.savefig(buf, format=(path.suffix[1:] or "png").lower(), dpi=dpi)
    tmp = unique_partial(path)
    try:
        with open(tmp, "xb") as fh:
            fh.write(buf.getvalue())
        atomic_replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
