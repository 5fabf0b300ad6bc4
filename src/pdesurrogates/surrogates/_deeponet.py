"""DeepONet for wave propagation: a parameterised source -> pressure p(x, t).

A deep operator network writes the solution as a dot product of two networks,

.. math::  p(x, t; s) \\approx \\sum_{k=1}^{p} b_k(s)\\, \\tau_k(x, t) + b_0,

where the *branch* ``b`` sees the source ``s`` (the sampled initial Gaussian pulse, or the
source coordinates) and the *trunk* ``tau`` sees the query point ``(x, t)`` through a
fixed encoding (wall-compatible cosines and time harmonics, Fourier features, or random
Fourier features). Both nets are plain or "modified" MLPs (Wang, Wang & Perdikaris 2022).

The model knows the physical set-up it was trained for (room dimensions, speed of
sound, pulse width and the time horizon), so it can build its own branch input from a
source position and check queries: :meth:`DeepONet.impulse_response` returns impulse
responses at receivers in milliseconds.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from pdesurrogates.io import register_model

__all__ = ["DeepONet", "ResponseBasis"]

_ACTIVATIONS = ("sin", "tanh", "gelu", "silu", "relu")
_ENCODINGS = ("periodic", "fourier", "random", "none")
_SOURCE_INPUTS = ("pulse", "coordinates")
_ARCHITECTURES = ("modified", "mlp")


class _Sine(nn.Module):
    def forward(self, x):
        return torch.sin(x)


def _activation(name: str) -> nn.Module:
    return {
        "sin": _Sine,
        "tanh": nn.Tanh,
        "gelu": nn.GELU,
        "silu": nn.SiLU,
        "relu": nn.ReLU,
    }[name]()


class _Net(nn.Module):
    """Plain or modified MLP ``in -> width x depth -> out`` (last layer linear).

    Modified MLP: ``U = act(X W_u)``, ``V = act(X W_v)``, and each hidden layer
    ``Z = act(H W + b)``, ``H <- (1 - Z) * U + Z * V``.
    With ``sin`` the first layer is SIREN-initialised with frequency ``omega0``.
    """

    def __init__(self, n_in, width, depth, n_out, *, activation, modified, omega0):
        super().__init__()
        self.act = _activation(activation)
        self.omega0 = float(omega0) if activation == "sin" else 1.0
        self.first = nn.Linear(n_in, width)
        self.hidden = nn.ModuleList(nn.Linear(width, width) for _ in range(depth - 1))
        self.last = nn.Linear(width, n_out)
        self.modified = modified and depth > 1  # gating needs at least one hidden layer
        if self.modified:
            self.enc_u = nn.Linear(n_in, width)
            self.enc_v = nn.Linear(n_in, width)
        if activation == "sin":
            with torch.no_grad():
                firsts = [self.first] + ([self.enc_u, self.enc_v] if self.modified else [])
                for lin in firsts:
                    lin.weight.uniform_(-1.0 / n_in, 1.0 / n_in)
                for lin in self.hidden:
                    bound = math.sqrt(6.0 / width)
                    lin.weight.uniform_(-bound, bound)

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


@dataclass(frozen=True)
class ResponseBasis:
    """Trunk outputs of a :class:`DeepONet` at fixed receivers and times.

    Attributes
    ----------
    values : Tensor, shape (R*T, p)
        Trunk outputs, receiver-major.
    receivers : ndarray, shape (R, D)
        Receiver positions (m).
    times : ndarray, shape (T,)
        Times (s).
    """

    values: torch.Tensor
    receivers: np.ndarray
    times: np.ndarray


def _positive(name, value):
    if not (isinstance(value, (int, float)) and not isinstance(value, bool)):
        raise ValueError(f"{name} must be a number; got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be positive and finite; got {value!r}")
    return float(value)


def _int_at_least(name, value, low):
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}; got {value!r}")
    return value


@register_model
class DeepONet(nn.Module):
    """DeepONet from a parameterised acoustic source to the pressure field p(x, t).

    Parameters
    ----------
    lengths : sequence of float
        Room dimensions (m) of the training data; the domain is ``[0, L_1] x ...``
        (1 to 3 axes).
    duration : float
        Trained time horizon (s). Queries beyond it raise a warning (extrapolation).
    c : float
        Speed of sound (m/s).
    fmax : float
        Maximum frequency (Hz) of the training data; sets the pulse width
        ``sigma = 2c/(pi fmax)`` unless ``sigma`` is given, the default sensor spacing and
        the trunk encoding's bandwidth.
    sigma : float, optional
        Width (m) of the Gaussian initial pulse.
    source_input : {"pulse", "coordinates"}
        Branch input: the initial pulse sampled on a regular sensor grid (as in
        Borrel-Jensen et al. 2024), or the source coordinates scaled to [-1, 1].
    sensors : int or sequence of int, optional
        Sensor nodes per axis for ``source_input="pulse"`` (default: 2 points per
        wavelength at ``fmax``, ends included).
    source_bounds : sequence of (low, high), optional
        Box of the training source positions (m); sources outside it warn.
    encoding : {"periodic", "fourier", "random", "none"}
        Trunk encoding of ``(x, t)``. ``periodic``: ``cos(k pi x_d / L_d)`` wall modes
        and ``cos/sin(j pi t / duration)`` time harmonics up to the pulse bandwidth; every
        spatial feature has zero normal derivative at the walls, so the prediction
        satisfies the rigid-wall condition exactly. ``fourier``: ``cos/sin(2 pi f y / c)``
        of every coordinate ``y`` (``t`` measured as ``c t`` in m) for ``f`` in
        ``frequencies``. ``random``: Gaussian random Fourier features of the scaled
        coordinates. ``none``: the scaled coordinates only.
    frequencies : sequence of float, optional
        Frequencies (Hz) of the ``fourier`` encoding (default ``fmax * (1/2, 1/4, 1/6)``).
    n_random : int
        Number of random Fourier features (``random`` encoding).
    random_scale : float
        Standard deviation of the random feature frequencies (``random`` encoding).
    bandwidth : float
        ``periodic`` encoding: keep wavenumbers ``k <= bandwidth / sigma`` (the pulse
        spectrum ``exp(-k^2 sigma^2/4)`` is ``exp(-bandwidth^2/4)`` there).
    architecture : {"modified", "mlp"}
        Modified MLP (gated encoders) or plain MLP, for both nets.
    activation : {"sin", "tanh", "gelu", "silu", "relu"}
        Hidden activation of both nets.
    omega0 : float
        First-layer frequency of SIREN initialisation (``activation="sin"`` only).
    width, depth : int
        Hidden width and number of hidden layers of the trunk.
    branch_width, branch_depth : int, optional
        Same for the branch (default: the trunk's).
    latent : int
        Latent width ``p`` (number of basis functions).
    seed : int
        Seed of the random Fourier features (the weights use torch's global generator,
        like every ``nn.Module``).

    Notes
    -----
    ``forward(branch_input, coords)`` is the bare operator. ``branch_input`` has shape
    ``(S, m)`` (see :meth:`encode_source`). ``coords`` holds physical query points
    ``(x_1, ..., x_D, t)`` in m and s, either shared by all sources, shape ``(Q, D+1)``,
    giving ``(S, Q)`` (Cartesian product: the trunk runs once), or per source, shape
    ``(S, Q, D+1)``, giving ``(S, Q)``.

    Examples
    --------
    >>> import torch
    >>> model = DeepONet(lengths=[2.0], duration=0.01, fmax=500.0, width=16, depth=2,
    ...                  latent=8)
    >>> b = model.encode_source(torch.tensor([[0.7], [1.3]]))
    >>> b.shape
    torch.Size([2, 7])
    >>> coords = torch.tensor([[0.5, 0.0], [1.0, 0.005], [1.5, 0.01]])
    >>> model(b, coords).shape
    torch.Size([2, 3])
    >>> ir = model.impulse_response([0.7], receivers=[[0.2], [1.8]],
    ...                             times=torch.linspace(0, 0.01, 11))
    >>> ir.shape
    (2, 11)

    For many sources at the same receivers, evaluate the trunk once:

    >>> basis = model.response_basis([[0.2], [1.8]], torch.linspace(0, 0.01, 11))
    >>> model.impulse_response([[0.7], [0.9], [1.1]], basis=basis).shape
    (3, 2, 11)
    """

    def __init__(
        self,
        *,
        lengths: Sequence[float] = (2.0, 2.0),
        duration: float = 0.05,
        c: float = 343.0,
        fmax: float = 500.0,
        sigma: float | None = None,
        source_input: str = "pulse",
        sensors: int | Sequence[int] | None = None,
        source_bounds: Sequence[Sequence[float]] | None = None,
        encoding: str = "periodic",
        frequencies: Sequence[float] | None = None,
        n_random: int = 64,
        random_scale: float = 10.0,
        bandwidth: float = 7.0,
        architecture: str = "modified",
        activation: str = "tanh",
        omega0: float = 30.0,
        width: int = 128,
        depth: int = 3,
        branch_width: int | None = None,
        branch_depth: int | None = None,
        latent: int = 128,
        seed: int = 0,
    ):
        super().__init__()
        lengths = [float(v) for v in np.atleast_1d(np.asarray(lengths, dtype=float))]
        if not 1 <= len(lengths) <= 3 or not all(math.isfinite(v) and v > 0 for v in lengths):
            raise ValueError(f"lengths must be 1 to 3 positive room dimensions (m); got {lengths}")
        self.dim = len(lengths)
        self.lengths = lengths
        self.duration = _positive("duration", duration)
        self.c = _positive("c", c)
        self.fmax = _positive("fmax", fmax)
        self.sigma = (
            2.0 * self.c / (math.pi * self.fmax) if sigma is None else _positive("sigma", sigma)
        )
        if source_input not in _SOURCE_INPUTS:
            raise ValueError(f"source_input must be one of {_SOURCE_INPUTS}; got {source_input!r}")
        if encoding not in _ENCODINGS:
            raise ValueError(f"encoding must be one of {_ENCODINGS}; got {encoding!r}")
        if architecture not in _ARCHITECTURES:
            raise ValueError(f"architecture must be one of {_ARCHITECTURES}; got {architecture!r}")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {_ACTIVATIONS}; got {activation!r}")
        self.source_input = source_input
        self.encoding = encoding
        self.architecture = architecture
        self.activation = activation
        self.omega0 = _positive("omega0", omega0)
        self.width = _int_at_least("width", width, 1)
        self.depth = _int_at_least("depth", depth, 1)
        self.branch_width = _int_at_least(
            "branch_width", width if branch_width is None else branch_width, 1
        )
        self.branch_depth = _int_at_least(
            "branch_depth", depth if branch_depth is None else branch_depth, 1
        )
        self.latent = _int_at_least("latent", latent, 1)
        self.n_random = _int_at_least("n_random", n_random, 1)
        self.random_scale = _positive("random_scale", random_scale)
        self.bandwidth = _positive("bandwidth", bandwidth)
        self.seed = int(seed)

        # sensors of the pulse branch input
        if sensors is None:
            spacing = self.c / (2.0 * self.fmax)
            sensors = [math.ceil(L / spacing - 1e-9) + 1 for L in lengths]
        sensors = [int(v) for v in np.broadcast_to(np.asarray(sensors), (self.dim,))]
        if any(v < 2 for v in sensors):
            raise ValueError(f"sensors must be >= 2 per axis; got {sensors}")
        self.sensors = sensors
        if source_bounds is None:
            source_bounds = [[0.0, L] for L in lengths]
        bounds = np.asarray(source_bounds, dtype=float)
        if bounds.shape != (self.dim, 2) or np.any(bounds[:, 0] > bounds[:, 1]):
            raise ValueError(
                f"source_bounds must be {self.dim} pairs (low, high) in m; got {source_bounds}"
            )
        if np.any(bounds[:, 0] < 0) or np.any(bounds[:, 1] > np.asarray(lengths)):
            raise ValueError(f"source_bounds {bounds.tolist()} reach outside the room {lengths}")
        self.source_bounds = bounds.tolist()
        if frequencies is None:
            frequencies = [self.fmax / 2, self.fmax / 4, self.fmax / 6]
        self.frequencies = [_positive("frequencies", float(f)) for f in frequencies]

        # fixed encodings (buffers, saved with the weights)
        grids = torch.meshgrid(
            *[torch.linspace(0.0, L, n) for L, n in zip(lengths, sensors, strict=True)],
            indexing="ij",
        )
        self.register_buffer(
            "sensor_points", torch.stack([g.reshape(-1) for g in grids], dim=-1), persistent=True
        )
        self.register_buffer("length_vec", torch.tensor(lengths), persistent=False)
        if encoding == "periodic":
            kmax = self.bandwidth / self.sigma
            modes = [torch.arange(1, math.ceil(kmax * L / math.pi) + 1) for L in lengths]
            n_t = math.ceil(self.c * kmax * self.duration / math.pi)
            # integer mode numbers: cos(pi m x / L) is evaluated as cos(pi * m * (x / L)),
            # so that x = L gives exactly m pi whatever the floating type
            self.register_buffer("space_m", torch.cat(modes).double(), persistent=False)
            self.register_buffer(
                "space_axis",
                torch.cat([torch.full((len(m),), d) for d, m in enumerate(modes)]),
                persistent=False,
            )
            self.register_buffer(
                "space_len",
                torch.cat([torch.full((len(m),), L) for m, L in zip(modes, lengths, strict=True)]),
                persistent=False,
            )
            self.register_buffer("time_j", torch.arange(1, n_t + 1).double(), persistent=False)
            n_feat = 1 + len(self.space_m) + 2 * n_t
        elif encoding == "fourier":
            self.register_buffer(
                "freq_k", 2 * math.pi * torch.tensor(self.frequencies) / self.c
            )  # rad/m
            n_feat = (self.dim + 1) * (1 + 2 * len(self.frequencies))
        elif encoding == "random":
            g = torch.Generator().manual_seed(self.seed)
            self.register_buffer(
                "random_b", torch.randn(self.dim + 1, self.n_random, generator=g) * random_scale
            )
            n_feat = self.dim + 1 + 2 * self.n_random
        else:
            n_feat = self.dim + 1
        self.n_features = n_feat
        n_branch = self.dim if source_input == "coordinates" else int(np.prod(sensors))
        self.n_branch = n_branch
        modified = architecture == "modified"
        self.branch = _Net(
            n_branch,
            self.branch_width,
            self.branch_depth,
            self.latent,
            activation=activation,
            modified=modified,
            omega0=self.omega0,
        )
        self.trunk = _Net(
            n_feat,
            self.width,
            self.depth,
            self.latent,
            activation=activation,
            modified=modified,
            omega0=self.omega0,
        )
        self.bias = nn.Parameter(torch.zeros(()))

    # -- configuration ---------------------------------------------------------------
    def get_config(self) -> dict:
        """JSON-serialisable keyword arguments that rebuild this architecture."""
        return {
            "lengths": list(self.lengths),
            "duration": self.duration,
            "c": self.c,
            "fmax": self.fmax,
            "sigma": self.sigma,
            "source_input": self.source_input,
            "sensors": list(self.sensors),
            "source_bounds": [list(b) for b in self.source_bounds],
            "encoding": self.encoding,
            "frequencies": list(self.frequencies),
            "n_random": self.n_random,
            "random_scale": self.random_scale,
            "bandwidth": self.bandwidth,
            "architecture": self.architecture,
            "activation": self.activation,
            "omega0": self.omega0,
            "width": self.width,
            "depth": self.depth,
            "branch_width": self.branch_width,
            "branch_depth": self.branch_depth,
            "latent": self.latent,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config: dict) -> DeepONet:
        return cls(**config)

    # -- encodings -------------------------------------------------------------------
    def encode_source(self, sources) -> torch.Tensor:
        """Branch input for source positions.

        Parameters
        ----------
        sources : (S, D) or (D,) array_like
            Source positions (m).

        Returns
        -------
        Tensor, shape (S, m)
            The initial pulse ``exp(-|x - s|^2 / sigma^2)`` at the sensors mapped to
            [-1, 1] (``source_input="pulse"``), or the coordinates mapped to [-1, 1].
        """
        ref = self.sensor_points
        s = torch.as_tensor(sources, dtype=ref.dtype, device=ref.device)
        if s.dim() == 1:
            s = s.unsqueeze(0)
        if s.dim() != 2 or s.shape[1] != self.dim:
            raise ValueError(
                f"sources must have shape (S, {self.dim}) (positions in m); got {tuple(s.shape)}"
            )
        if self.source_input == "coordinates":
            return 2.0 * s / self.length_vec.to(s) - 1.0
        d2 = (s[:, None, :] - ref[None, :, :]).square().sum(-1)
        return 2.0 * torch.exp(-d2 / self.sigma**2) - 1.0

    def encode_coords(self, coords: torch.Tensor) -> torch.Tensor:
        """Trunk features of physical query points ``(..., D+1)`` = ``(x_1.., t)``."""
        x = coords[..., : self.dim]
        t = coords[..., self.dim :]
        scaled = torch.cat(
            [2.0 * x / self.length_vec.to(x) - 1.0, 2.0 * t / self.duration - 1.0], dim=-1
        )
        if self.encoding == "none":
            return scaled
        if self.encoding == "periodic":
            xs = x[..., self.space_axis] / self.space_len.to(x)
            space = torch.cos(math.pi * self.space_m.to(x) * xs)
            wt = (math.pi / self.duration) * t * self.time_j.to(x)
            # no raw x: every feature has zero normal derivative at the walls
            return torch.cat([scaled[..., self.dim :], space, torch.cos(wt), torch.sin(wt)], dim=-1)
        if self.encoding == "fourier":
            y = torch.cat([x, t * self.c], dim=-1)  # both in metres
            arg = (y[..., :, None] * self.freq_k).flatten(-2)
            return torch.cat([scaled, torch.cos(arg), torch.sin(arg)], dim=-1)
        arg = scaled @ self.random_b
        return torch.cat([scaled, torch.cos(arg), torch.sin(arg)], dim=-1)

    # -- the operator ----------------------------------------------------------------
    def forward(self, branch_input: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        """Pressure (Pa) at query points.

        Parameters
        ----------
        branch_input : Tensor, shape (S, m)
            Encoded sources (:meth:`encode_source`).
        coords : Tensor, shape (Q, D+1) or (S, Q, D+1)
            Query points ``(x_1, ..., x_D, t)`` in m and s; shared by all sources or one
            set per source.

        Returns
        -------
        Tensor, shape (S, Q)
        """
        b = self.branch(branch_input)
        tr = self.trunk(self.encode_coords(coords))
        if coords.dim() == 2:
            return b @ tr.transpose(0, 1) + self.bias
        return torch.einsum("sp,sqp->sq", b, tr) + self.bias

    # -- convenience -------------------------------------------------------------------
    def _check_positions(self, name, pts, *, strict=True):
        lengths = np.asarray(self.lengths)
        bad = np.any((pts < 0) | (pts > lengths), axis=1)
        if np.any(bad):
            box = " x ".join(f"[0, {v:g}]" for v in self.lengths)
            raise ValueError(
                f"{name} {pts[np.argmax(bad)].tolist()} is outside the room {box} m the model "
                "was trained on"
            )

    def _as_points(self, name, value) -> np.ndarray:
        if torch.is_tensor(value):
            value = value.detach().cpu().numpy()
        arr = np.asarray(value, dtype=float)
        if arr.ndim == 1:
            arr = arr[None, :] if arr.shape[0] == self.dim else arr[:, None]
        if arr.ndim != 2 or arr.shape[1] != self.dim:
            raise ValueError(f"{name} must have shape (n, {self.dim}) in m; got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or Inf")
        self._check_positions(name, arr)
        return arr

    def _check_times(self, times) -> np.ndarray:
        if torch.is_tensor(times):
            times = times.detach().cpu().numpy()
        t = np.atleast_1d(np.asarray(times, dtype=float))
        if t.ndim != 1 or not np.all(np.isfinite(t)):
            raise ValueError("times must be a 1-D array of finite times in seconds")
        if np.any(t < 0):
            raise ValueError(f"times must be >= 0 s; got min {t.min():g}")
        if np.any(t > self.duration * (1 + 1e-9)):
            warnings.warn(
                f"times up to {t.max():g} s go beyond the trained horizon {self.duration:g} s; "
                "the DeepONet extrapolates there and its error is not controlled",
                UserWarning,
                stacklevel=3,
            )
        return t

    def _check_bounds(self, src: np.ndarray) -> None:
        b = np.asarray(self.source_bounds)
        tol = 1e-9 * max(self.lengths)
        outside = np.any((src < b[:, 0] - tol) | (src > b[:, 1] + tol), axis=1)
        if np.any(outside):
            warnings.warn(
                f"source {src[np.argmax(outside)].tolist()} lies outside the training source "
                f"region {self.source_bounds} m; the prediction extrapolates",
                UserWarning,
                stacklevel=3,
            )

    def query_points(self, points, times) -> torch.Tensor:
        """Trunk coordinates ``(P*T, D+1)`` of every (point, time) pair, point-major."""
        ref = self.sensor_points
        p = torch.as_tensor(np.asarray(points, dtype=float), dtype=ref.dtype, device=ref.device)
        t = torch.as_tensor(np.asarray(times, dtype=float), dtype=ref.dtype, device=ref.device)
        n_p, n_t = p.shape[0], t.shape[0]
        return torch.cat(
            [p[:, None, :].expand(n_p, n_t, self.dim), t[None, :, None].expand(n_p, n_t, 1)],
            dim=-1,
        ).reshape(n_p * n_t, self.dim + 1)

    @torch.no_grad()
    def response_basis(self, receivers, times) -> ResponseBasis:
        """Evaluate the trunk once at fixed receivers and times.

        The trunk does not depend on the source, so for a fixed set of receivers and
        times its outputs can be kept and every further impulse response costs only the
        branch net and a small matrix product (``impulse_response(src, basis=basis)``).
        Recompute the basis after changing the weights.

        Parameters
        ----------
        receivers : (R, D) array_like
            Receiver positions (m).
        times : (T,) array_like
            Times (s).

        Returns
        -------
        ResponseBasis
        """
        rec = self._as_points("receivers", receivers)
        t = self._check_times(times)
        values = self.trunk(self.encode_coords(self.query_points(rec, t)))
        return ResponseBasis(values=values, receivers=rec, times=t)

    @torch.no_grad()
    def impulse_response(self, source, receivers=None, times=None, *, basis=None) -> np.ndarray:
        """Impulse responses (Pa) at receivers for one or several sources.

        Parameters
        ----------
        source : (D,) or (S, D) array_like
            Source position(s) (m).
        receivers : (R, D) array_like
            Receiver positions (m). Not needed with ``basis``.
        times : (T,) array_like
            Times (s), within the trained horizon ``[0, duration]``. Not needed with
            ``basis``.
        basis : ResponseBasis, optional
            Trunk outputs from :meth:`response_basis` for fixed receivers and times.

        Returns
        -------
        ndarray, shape (R, T) for one source or (S, R, T)

        Raises
        ------
        ValueError
            A source or receiver outside the room, or negative times.

        Warns
        -----
        UserWarning
            Times beyond the trained horizon, or a source outside the training region.
        """
        single = np.ndim(source) == 1
        src = self._as_points("source", source)
        self._check_bounds(src)
        if basis is None:
            if receivers is None or times is None:
                raise ValueError("give receivers and times, or a basis from response_basis()")
            basis = self.response_basis(receivers, times)
        elif receivers is not None or times is not None:
            raise ValueError("give either receivers and times, or basis, not both")
        b = self.branch(self.encode_source(src))
        out = (b @ basis.values.transpose(0, 1) + self.bias).cpu().numpy()
        out = out.reshape(len(src), len(basis.receivers), len(basis.times))
        return out[0] if single else out

    @torch.no_grad()
    def predict_field(self, source, coords: Sequence, times) -> np.ndarray:
        """Pressure (Pa) on a tensor grid, shape ``(T, n_1, ..., n_D)`` for one source."""
        grids = np.meshgrid(*[np.asarray(c, dtype=float) for c in coords], indexing="ij")
        pts = np.stack([g.reshape(-1) for g in grids], axis=-1)
        ir = self.impulse_response(np.asarray(source, dtype=float).reshape(-1), pts, times)
        return ir.T.reshape((len(np.atleast_1d(times)), *grids[0].shape))
