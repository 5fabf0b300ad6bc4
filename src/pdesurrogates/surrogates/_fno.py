"""neuraloperator's Fourier neural operator behind the pdesurrogates model interface."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from pdesurrogates.io import register_model
from pdesurrogates.surrogates._limits import MAX_REPEAT, check_at_most

__all__ = ["FNO"]


@register_model
class FNO(nn.Module):
    """Fourier neural operator (``neuralop.models.FNO``, neuraloperator 2.0) for 2-D fields.

    A thin adapter: keyword-only hyper-parameters validated eagerly, ``get_config()`` for
    :func:`pdesurrogates.save`, and the same input conventions as :class:`MgNO`. The
    network itself is neuraloperator's (imported when the model is built).

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the input and output functions.
    n_modes : int or pair of int
        Fourier modes kept per spatial axis.
    hidden_channels : int
        Width of the Fourier layers.
    n_layers : int
        Number of Fourier layers.
    lifting_channel_ratio, projection_channel_ratio : float
        Widths of the lifting and projection MLPs relative to ``hidden_channels``.
    positional_embedding : {"grid", None}
        Append the ``(x, y)`` grid on ``[0, 1]^2`` to the input channels.
    domain_padding : float or None
        Fraction of zero padding added around the domain before the Fourier layers
        (useful for non-periodic data).

    Notes
    -----
    Input ``(batch, in_channels, n_x, n_y)``, or ``(batch, n_x, n_y)`` when
    ``in_channels == 1`` (the output then drops its channel axis when ``out_channels == 1``).
    Any grid with at least ``2 * n_modes - 1`` points... in practice any size works: modes
    beyond the grid's Nyquist limit are truncated.

    Examples
    --------
    >>> import torch
    >>> from pdesurrogates.surrogates import FNO
    >>> model = FNO(n_modes=4, hidden_channels=8, n_layers=2)
    >>> model(torch.randn(2, 1, 16, 16)).shape
    torch.Size([2, 1, 16, 16])
    """

    def __init__(
        self,
        *,
        in_channels: int = 1,
        out_channels: int = 1,
        n_modes: int | Sequence[int] = 12,
        hidden_channels: int = 32,
        n_layers: int = 4,
        lifting_channel_ratio: float = 2,
        projection_channel_ratio: float = 2,
        positional_embedding: str | None = "grid",
        domain_padding: float | None = None,
    ):
        super().__init__()
        for name, val in (
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("hidden_channels", hidden_channels),
            ("n_layers", n_layers),
        ):
            if not isinstance(val, int) or isinstance(val, bool) or val < 1:
                raise ValueError(f"FNO: {name} must be an integer >= 1, got {val!r}")
        check_at_most("FNO", "n_layers", n_layers, MAX_REPEAT)
        if isinstance(n_modes, int) and not isinstance(n_modes, bool):
            modes = [n_modes, n_modes]
        else:
            try:
                modes = [int(m) for m in n_modes]
            except (TypeError, ValueError):
                raise ValueError(
                    f"FNO: n_modes must be an int or a pair of ints, got {n_modes!r}"
                ) from None
        if len(modes) != 2 or min(modes) < 1:
            raise ValueError(f"FNO: n_modes must be a positive int or pair, got {n_modes!r}")
        for name, val in (
            ("lifting_channel_ratio", lifting_channel_ratio),
            ("projection_channel_ratio", projection_channel_ratio),
        ):
            if not isinstance(val, (int, float)) or val <= 0:
                raise ValueError(f"FNO: {name} must be a positive number, got {val!r}")
        if positional_embedding not in ("grid", None):
            raise ValueError(
                f"FNO: positional_embedding must be 'grid' or None, got {positional_embedding!r}"
            )
        if domain_padding is not None and not (
            isinstance(domain_padding, (int, float)) and 0 <= domain_padding < 1
        ):
            raise ValueError(
                f"FNO: domain_padding must be None or a fraction in [0, 1), got {domain_padding!r}"
            )
        self._config: dict[str, Any] = {
            "in_channels": in_channels,
            "out_channels": out_channels,
            "n_modes": modes,
            "hidden_channels": hidden_channels,
            "n_layers": n_layers,
            "lifting_channel_ratio": lifting_channel_ratio,
            "projection_channel_ratio": projection_channel_ratio,
            "positional_embedding": positional_embedding,
            "domain_padding": domain_padding,
        }
        self.in_channels = in_channels
        self.out_channels = out_channels
        from neuralop.models import FNO as _NeuralopFNO

        self.net = _NeuralopFNO(
            n_modes=tuple(modes),
            in_channels=in_channels,
            out_channels=out_channels,
            hidden_channels=hidden_channels,
            n_layers=n_layers,
            lifting_channel_ratio=lifting_channel_ratio,
            projection_channel_ratio=projection_channel_ratio,
            positional_embedding=positional_embedding,
            domain_padding=domain_padding,
        )

    def get_config(self) -> dict[str, Any]:
        """JSON-serialisable keyword arguments that rebuild this model."""
        return {k: (list(v) if isinstance(v, list) else v) for k, v in self._config.items()}

    def _apply(self, fn, recurse=True):
        """Apply ``fn`` (``.to``, ``.double``, ``.cuda``, ...) with complex weights following
        the real precision: float32 <-> complex64, float64 <-> complex128.

        ``Module.to(torch.float64)`` would otherwise cast the complex spectral weights to
        a *real* dtype and drop their imaginary parts.
        """
        held = []
        for module in self.modules():
            for name, p in list(module._parameters.items()):
                if p is not None and p.is_complex():
                    held.append((module, name, module._parameters.pop(name)))
        try:
            super()._apply(fn, recurse)
        finally:
            for module, name, p in held:
                with torch.no_grad():
                    re, im = fn(p.real.clone()), fn(p.imag.clone())
                    p.data = torch.complex(re, im) if re.is_floating_point() else p.data
                p.grad = None
                module._parameters[name] = p
        return self

    def state_dict(self, *args, **kwargs):
        """Tensors only: neuraloperator's ``_metadata`` entry (a dict) is dropped; the
        configuration lives in :meth:`get_config`."""
        state = super().state_dict(*args, **kwargs)
        state.pop("_metadata", None)
        return state

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        """Map ``a`` of shape ``(batch, in_channels, n_x, n_y)`` (or ``(batch, n_x, n_y)``)
        to the output function on the same grid."""
        squeeze = False
        if a.dim() == 3 and self.in_channels == 1:
            a = a.unsqueeze(1)
            squeeze = self.out_channels == 1
        if a.dim() != 4 or a.shape[1] != self.in_channels:
            raise ValueError(
                f"FNO: input must have shape (batch, {self.in_channels}, n_x, n_y); "
                f"got {tuple(a.shape)}"
            )
        if not a.is_floating_point():
            raise ValueError(f"FNO: input must be a floating-point tensor, got {a.dtype}")
        out = self.net(a)
        return out.squeeze(1) if squeeze else out
