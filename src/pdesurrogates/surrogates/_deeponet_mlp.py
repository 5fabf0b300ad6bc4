"""The branch and trunk networks of :class:`~pdesurrogates.surrogates.DeepONet`.

:class:`DeepONetMLP` is a plain or "modified" MLP (Wang, Wang & Perdikaris 2022) with an
optional SIREN initialisation for ``sin`` activations. Besides the autograd ``forward``
it offers a *lean* evaluation (:meth:`DeepONetMLP.lean`) from pre-transposed, fused
weights (:meth:`DeepONetMLP.lean_weights`) that DeepONet's fast impulse responses use.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

__all__ = ["ACTIVATIONS", "DeepONetMLP"]

ACTIVATIONS = ("sin", "tanh", "gelu", "silu", "relu")


class _Sine(nn.Module):
    def forward(self, x):
        return torch.sin(x)


_MODULES = {"sin": _Sine, "tanh": nn.Tanh, "gelu": nn.GELU, "silu": nn.SiLU, "relu": nn.ReLU}
#: activations of the numpy lean path (in place; torch's kernels agree to rounding)
_NUMPY = {
    "sin": lambda x: np.sin(x, out=x),
    "tanh": lambda x: np.tanh(x, out=x),
    "relu": lambda x: np.maximum(x, 0.0, out=x),
}
_FUNCTIONAL = {
    "sin": torch.sin,
    "tanh": torch.tanh,
    "gelu": torch.nn.functional.gelu,
    "silu": torch.nn.functional.silu,
    "relu": torch.relu,
}


class DeepONetMLP(nn.Module):
    """Plain or modified MLP ``in -> width x depth -> out`` (last layer linear).

    Modified MLP: ``U = act(X W_u)``, ``V = act(X W_v)``, and each hidden layer
    ``Z = act(H W + b)``, ``H <- (1 - Z) * U + Z * V``. With ``sin`` the first layer is
    SIREN-initialised with frequency ``omega0``.

    Parameters
    ----------
    n_in, width, depth, n_out : int
        Input features, hidden width, hidden layers and outputs.
    activation : {"sin", "tanh", "gelu", "silu", "relu"}
    modified : bool
        Gated (modified) MLP; needs ``depth > 1`` (a plain MLP otherwise).
    omega0 : float
        First-layer frequency (``sin`` only).

    Examples
    --------
    >>> net = DeepONetMLP(3, 8, 2, 4, activation="tanh", modified=True, omega0=30.0)
    >>> x = torch.randn(5, 3)
    >>> with torch.no_grad():
    ...     bool(torch.allclose(net.lean(net.lean_weights(), x), net(x), atol=1e-6))
    True
    >>> w = net.numpy_weights(net.lean_weights())
    >>> with torch.no_grad():
    ...     bool(np.allclose(net.lean_numpy(w, x.numpy()), net(x).numpy(), atol=1e-6))
    True
    """

    def __init__(self, n_in, width, depth, n_out, *, activation, modified, omega0):
        super().__init__()
        self.act = _MODULES[activation]()
        self.act_fn = _FUNCTIONAL[activation]
        self.act_np = _NUMPY.get(activation)
        self.omega0 = float(omega0) if activation == "sin" else 1.0
        self.first = nn.Linear(n_in, width)
        self.hidden = nn.ModuleList(nn.Linear(width, width) for _ in range(depth - 1))
        self.last = nn.Linear(width, n_out)
        self.modified = modified and depth > 1  # gating needs at least one hidden layer
        if self.modified:
            self.enc_u = nn.Linear(n_in, width)
            self.enc_v = nn.Linear(n_in, width)
        if activation == "sin":
            self._siren_init(n_in, width)

    def _siren_init(self, n_in: int, width: int) -> None:
        with torch.no_grad():
            for lin in self._first_layers():
                lin.weight.uniform_(-1.0 / n_in, 1.0 / n_in)
            for lin in self.hidden:
                bound = math.sqrt(6.0 / width)
                lin.weight.uniform_(-bound, bound)

    def _first_layers(self) -> list[nn.Linear]:
        return [self.first] + ([self.enc_u, self.enc_v] if self.modified else [])

    def forward(self, x):
        w0 = self.omega0
        h = self.act(w0 * self.first(x))
        if self.modified:
            u = self.act(w0 * self.enc_u(x))
            v = self.act(w0 * self.enc_v(x))
            for lin in self.hidden:
                z = self.act(lin(h))
                h = u + z * (v - u)
        else:
            for lin in self.hidden:
                h = self.act(lin(h))
        return self.last(h)

    def lean_weights(self, scale=None, shift=None):
        """Weights for :meth:`lean`: transposed, ``omega0`` and an input map folded in.

        The first layer (with the two encoders of the modified MLP, stacked into one
        matrix) absorbs ``omega0`` and the affine input map ``x -> scale * x + shift``.
        """
        firsts = self._first_layers()
        w = torch.cat([lin.weight for lin in firsts]) * self.omega0
        b = torch.cat([lin.bias for lin in firsts]) * self.omega0
        if scale is not None:
            b = b + w @ shift.to(w)
            w = w * scale.to(w)
        hidden = [(lin.weight.t().contiguous(), lin.bias.detach()) for lin in self.hidden]
        return (
            w.t().contiguous(),
            b.contiguous(),
            hidden,
            (self.last.weight.t().contiguous(), self.last.bias.detach()),
        )

    def lean(self, weights, x):
        """``forward`` without module calls, from :meth:`lean_weights` (no autograd)."""
        act = self.act_fn
        w, b, hidden, (w_last, b_last) = weights
        h = act(torch.addmm(b, x, w))
        if self.modified:
            h, u, v = h.chunk(3, dim=1)
            for wh, bh in hidden:
                h = torch.lerp(u, v, act(torch.addmm(bh, h, wh)))
        else:
            for wh, bh in hidden:
                h = act(torch.addmm(bh, h, wh))
        return torch.addmm(b_last, h, w_last)

    def numpy_weights(self, weights):
        """:meth:`lean_weights` as numpy arrays for :meth:`lean_numpy` (CPU tensors only).

        Returns ``None`` if the activation has no numpy kernel (``gelu``, ``silu``).
        """
        if self.act_np is None:
            return None
        w, b, hidden, (w_last, b_last) = weights

        def arr(t):
            return np.ascontiguousarray(t.detach().numpy())

        return (
            arr(w),
            arr(b),
            [(arr(wh), arr(bh)) for wh, bh in hidden],
            (arr(w_last), arr(b_last)),
        )

    def lean_numpy(self, weights, x: np.ndarray) -> np.ndarray:
        """:meth:`lean` in numpy, from :meth:`numpy_weights`.

        A few rows through a small net are dominated by per-call dispatch, which numpy
        does in a fraction of torch's time on the CPU; the arithmetic is the same.
        """
        act = self.act_np
        w, b, hidden, (w_last, b_last) = weights
        h = x @ w
        h += b
        act(h)
        if self.modified:
            n = h.shape[1] // 3
            u = h[:, n : 2 * n]
            v = h[:, 2 * n :] - u
            h = h[:, :n]
            for wh, bh in hidden:
                h = h @ wh
                h += bh
                act(h)
                h *= v
                h += u
        else:
            for wh, bh in hidden:
                h = h @ wh
                h += bh
                act(h)
        out = h @ w_last
        out += b_last
        return out
