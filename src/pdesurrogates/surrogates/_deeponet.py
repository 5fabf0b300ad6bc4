"""DeepONet for wave propagation: a parameterised source -> pressure p(x, t).

A deep operator network writes the solution as a dot product of two networks,

.. math::  p(x, t; s) \\approx \\sum_{k=1}^{p} b_k(s)\\, \\tau_k(x, t) + b_0,

where the *branch* ``b`` sees the source ``s`` (the sampled initial Gaussian pulse, or the
source coordinates) and the *trunk* ``tau`` sees the query point ``(x, t)`` through a
fixed encoding (wall-compatible cosines and time harmonics, Fourier features, or random
Fourier features). Both nets are plain or "modified" MLPs (Wang, Wang & Perdikaris 2022).

The trunk is separable by default, ``tau_k(x, t) = sum_r phi_kr(x) psi_kr(t)``, with a
space net ``phi`` and a time net ``psi`` (like the modes ``cos(k x) cos(omega t)`` of a
rigid room). An impulse response at R receivers and T times then needs the space net at
the R receivers only, and ``psi`` on the model's native time grid depends on the weights
alone, so it is computed once and cached. ``trunk="joint"`` is the classical single
trunk net of ``(x, t)``.

The model knows the physical set-up it was trained for (room dimensions, speed of
sound, pulse width and the time horizon), so it can build its own branch input from a
source position and check queries: :meth:`DeepONet.impulse_response` returns impulse
responses at new receivers in about a tenth of a millisecond.

The pieces live beside this module: the nets (:mod:`._deeponet_mlp`), the encodings
(:mod:`._deeponet_features`), the separable trunk algebra (:mod:`._deeponet_trunk`), the
query checks (:mod:`._deeponet_checks`), the lean inference plan (:mod:`._deeponet_lean`)
and impulse responses (:mod:`._deeponet_response`). This module holds the model: its
hyper-parameters, its configuration and the operator ``forward``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from pdesurrogates.io import register_model
from pdesurrogates.surrogates._deeponet_checks import (
    DeepONetChecks,
    int_at_least,
    one_of,
    positive,
)
from pdesurrogates.surrogates._deeponet_features import (
    ENCODINGS,
    DeepONetEncodings,
    register_encoding,
)
from pdesurrogates.surrogates._deeponet_lean import DeepONetLeanPath
from pdesurrogates.surrogates._deeponet_mlp import ACTIVATIONS, DeepONetMLP
from pdesurrogates.surrogates._deeponet_response import DeepONetResponses, ResponseBasis
from pdesurrogates.surrogates._deeponet_trunk import contract_separable, pair_coords, sum_rank
from pdesurrogates.surrogates._limits import MAX_REPEAT, check_at_most

__all__ = ["DeepONet", "ResponseBasis"]

_SOURCE_INPUTS = ("pulse", "coordinates")
_ARCHITECTURES = ("modified", "mlp")
_TRUNKS = ("separable", "joint")
#: Largest native time grid (its samples are allocated by every full-grid prediction).
MAX_TIME_SAMPLES = 10**7


@register_model
class DeepONet(DeepONetResponses, DeepONetLeanPath, DeepONetChecks, DeepONetEncodings, nn.Module):
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
    room : dict, optional
        Shape of a room that is not a box, as written by the data generator
        (``{"kind": "l-shape", "notch": [x, y]}``): sources and receivers in its solid
        part are refused.
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
    trunk : {"separable", "joint"}
        ``separable``: ``tau_k(x, t) = sum_r phi_kr(x) psi_kr(t)`` from a space net and
        a time net (same width and depth as given, each with ``latent * rank``
        outputs); cold impulse responses evaluate the space net at the receivers only
        and read ``psi`` from a cache. ``joint``: one trunk net of the encoded
        ``(x, t)``, evaluated at every (receiver, time) pair.
    rank : int
        Number of space x time products per basis function (separable trunk).
    time_samples : int, optional
        Samples of the native time grid ``linspace(0, duration, time_samples)`` on which
        the time basis is cached (default ``4 fmax duration + 1``, the grid of
        ``pdesurrogates generate acoustics*``). Other times evaluate the time net.
    seed : int
        Seed of the random Fourier features (the weights use torch's global generator,
        like every ``nn.Module``).

    Notes
    -----
    ``forward(branch_input, coords)`` is the bare operator. ``branch_input`` has shape
    ``(S, m)`` (see :meth:`encode_source`). ``coords`` holds physical query points
    ``(x_1, ..., x_D, t)`` in m and s, either shared by all sources, shape ``(Q, D+1)``,
    giving ``(S, Q)`` (Cartesian product: the trunk runs once), or per source, shape
    ``(S, Q, D+1)``, giving ``(S, Q)``. :meth:`forward_grid` evaluates a product of
    points and times.

    :meth:`impulse_response` runs without autograd on a lean path: the weights of each
    net are transposed and fused once (with the first-layer input scaling folded in),
    and, for the separable trunk, the time-net outputs on the native time grid are
    cached. Both are derived from the weights and rebuilt after any parameter change
    (optimizer step, ``load_state_dict``, ``.to()``, ``train()``); training and
    ``forward`` never use them.

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

    On the native time grid the time basis is cached, so a call with new receivers
    costs the branch net, the space net at the receivers and a small product:

    >>> times = model.native_times()
    >>> times.shape
    (21,)
    >>> model.impulse_response([0.7], receivers=[[0.4], [1.1], [1.6]], times=times).shape
    (3, 21)
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
        room: dict | None = None,
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
        trunk: str = "separable",
        rank: int = 1,
        time_samples: int | None = None,
        seed: int = 0,
    ):
        super().__init__()
        self._set_physics(lengths, duration, c, fmax, sigma, time_samples)
        self.source_input = one_of("source_input", source_input, _SOURCE_INPUTS)
        self.encoding = one_of("encoding", encoding, ENCODINGS)
        self.architecture = one_of("architecture", architecture, _ARCHITECTURES)
        self.activation = one_of("activation", activation, ACTIVATIONS)
        self.trunk_kind = one_of("trunk", trunk, _TRUNKS)
        self.rank = int_at_least("rank", rank, 1)
        self.omega0 = positive("omega0", omega0)
        self.width = int_at_least("width", width, 1)
        self.depth = int_at_least("depth", depth, 1)
        self.branch_width = int_at_least(
            "branch_width", width if branch_width is None else branch_width, 1
        )
        self.branch_depth = int_at_least(
            "branch_depth", depth if branch_depth is None else branch_depth, 1
        )
        self.latent = int_at_least("latent", latent, 1)
        for name in ("depth", "branch_depth", "rank"):
            check_at_most("DeepONet", name, getattr(self, name), MAX_REPEAT)
        self.n_random = int_at_least("n_random", n_random, 1)
        self.random_scale = positive("random_scale", random_scale)
        self.bandwidth = positive("bandwidth", bandwidth)
        self.seed = int(seed)
        self._set_sensors(sensors)
        self._set_source_bounds(source_bounds)
        self.room = None if room is None else dict(room)
        if self.room is not None:
            self._room_shape  # noqa: B018 (checks the room now, not at the first query)
        if frequencies is None:
            frequencies = [self.fmax / 2, self.fmax / 4, self.fmax / 6]
        self.frequencies = [positive("frequencies", float(f)) for f in frequencies]
        n_joint, n_space, n_time = register_encoding(
            self,
            self.encoding,
            lengths=self.lengths,
            duration=self.duration,
            c=self.c,
            sigma=self.sigma,
            bandwidth=self.bandwidth,
            frequencies=self.frequencies,
            n_random=self.n_random,
            random_scale=self.random_scale,
            seed=self.seed,
        )
        self.n_features = n_joint
        self._build_nets(n_joint, n_space, n_time)
        self.bias = nn.Parameter(torch.zeros(()))
        self._lean = None  # (key, weight-derived tensors), see _lean_plan

    # -- construction ----------------------------------------------------------------
    def _set_physics(self, lengths, duration, c, fmax, sigma, time_samples) -> None:
        lengths = [float(v) for v in np.atleast_1d(np.asarray(lengths, dtype=float))]
        if not 1 <= len(lengths) <= 3 or not all(math.isfinite(v) and v > 0 for v in lengths):
            raise ValueError(f"lengths must be 1 to 3 positive room dimensions (m); got {lengths}")
        self.dim = len(lengths)
        self.lengths = lengths
        self.duration = positive("duration", duration)
        self.c = positive("c", c)
        self.fmax = positive("fmax", fmax)
        self.sigma = (
            2.0 * self.c / (math.pi * self.fmax) if sigma is None else positive("sigma", sigma)
        )
        if time_samples is None:
            time_samples = round(4.0 * self.fmax * self.duration) + 1
        self.time_samples = int_at_least("time_samples", time_samples, 2)
        check_at_most("DeepONet", "time_samples", self.time_samples, MAX_TIME_SAMPLES)
        self.register_buffer("length_vec", torch.tensor(lengths), persistent=False)

    def _set_sensors(self, sensors) -> None:
        """Sensor grid of the pulse branch input (2 points per wavelength by default)."""
        if sensors is None:
            spacing = self.c / (2.0 * self.fmax)
            sensors = [math.ceil(L / spacing - 1e-9) + 1 for L in self.lengths]
        sensors = [int(v) for v in np.broadcast_to(np.asarray(sensors), (self.dim,))]
        if any(v < 2 for v in sensors):
            raise ValueError(f"sensors must be >= 2 per axis; got {sensors}")
        self.sensors = sensors
        grids = torch.meshgrid(
            *[torch.linspace(0.0, L, n) for L, n in zip(self.lengths, sensors, strict=True)],
            indexing="ij",
        )
        points = torch.stack([g.reshape(-1) for g in grids], dim=-1)
        self.register_buffer("sensor_points", points, persistent=True)

    def _set_source_bounds(self, source_bounds) -> None:
        if source_bounds is None:
            source_bounds = [[0.0, L] for L in self.lengths]
        bounds = np.asarray(source_bounds, dtype=float)
        if bounds.shape != (self.dim, 2) or np.any(bounds[:, 0] > bounds[:, 1]):
            raise ValueError(
                f"source_bounds must be {self.dim} pairs (low, high) in m; got {source_bounds}"
            )
        if np.any(bounds[:, 0] < 0) or np.any(bounds[:, 1] > np.asarray(self.lengths)):
            raise ValueError(
                f"source_bounds {bounds.tolist()} reach outside the room {self.lengths}"
            )
        self.source_bounds = bounds.tolist()

    def _build_nets(self, n_joint: int, n_space: int, n_time: int) -> None:
        """The branch net, then the trunk (one joint net, or a space net and a time net)."""
        self.n_branch = self.dim if self.source_input == "coordinates" else len(self.sensor_points)
        net = functools.partial(
            DeepONetMLP,
            activation=self.activation,
            modified=self.architecture == "modified",
            omega0=self.omega0,
        )
        self.branch = net(self.n_branch, self.branch_width, self.branch_depth, self.latent)
        if self.trunk_kind == "joint":
            self.trunk = net(n_joint, self.width, self.depth, self.latent)
        else:
            # tau_k(x, t) = sum_r phi_kr(x) psi_kr(t): a space net and a time net
            n_out = self.latent * self.rank
            self.space_net = net(n_space, self.width, self.depth, n_out)
            self.time_net = net(n_time, self.width, self.depth, n_out)

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
            "room": self.room,
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
            "trunk": self.trunk_kind,
            "rank": self.rank,
            "time_samples": self.time_samples,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config: dict) -> DeepONet:
        config = dict(config)
        config.setdefault("trunk", "joint")  # models saved before the separable trunk
        return cls(**config)

    # -- the operator ----------------------------------------------------------------
    def trunk_features(self, coords: torch.Tensor) -> torch.Tensor:
        """Trunk outputs ``tau(x, t)``, shape ``(..., p)``, at query points ``(..., D+1)``."""
        if self.trunk_kind == "joint":
            return self.trunk(self.encode_coords(coords))
        phi = self.space_net(self.encode_space(coords[..., : self.dim]))
        psi = self.time_net(self.encode_time(coords[..., self.dim :]))
        return sum_rank(phi * psi, rank=self.rank)

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
        tr = self.trunk_features(coords)
        if coords.dim() == 2:
            return b @ tr.transpose(0, 1) + self.bias
        return torch.einsum("sp,sqp->sq", b, tr) + self.bias

    def forward_grid(
        self, branch_input: torch.Tensor, points: torch.Tensor, times: torch.Tensor
    ) -> torch.Tensor:
        """Pressure (Pa) on the product of points and times, shape ``(S, P, T)``.

        Equals ``forward(branch_input, coords)`` on every (point, time) pair. With the
        separable trunk the space net runs on the ``P`` points and the time net on the
        ``T`` times only (not on all ``P*T`` pairs), which is what makes training on
        random sub-grids and cold impulse responses cheap.

        Parameters
        ----------
        branch_input : Tensor, shape (S, m)
        points : Tensor, shape (P, D)
            Positions (m).
        times : Tensor, shape (T,)
            Times (s).
        """
        b = self.branch(branch_input)
        if self.trunk_kind == "joint":
            tr = self.trunk(self.encode_coords(pair_coords(points, times)))
            out = b @ tr.transpose(0, 1) + self.bias
            return out.reshape(len(b), points.shape[0], times.shape[0])
        phi = self.space_net(self.encode_space(points))
        psi = self.time_net(self.encode_time(times[:, None]))
        return contract_separable(b, phi, psi, self.bias, rank=self.rank)

    # -- cache invalidation ----------------------------------------------------------
    def __setattr__(self, name, value):
        if isinstance(value, (nn.Parameter, nn.Module)):
            self.__dict__["_lean"] = None  # a replaced parameter or net: rebuild the plan
        super().__setattr__(name, value)

    def train(self, mode: bool = True):
        self._lean = None
        return super().train(mode)
