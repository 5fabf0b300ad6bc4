"""Input encodings of :class:`~pdesurrogates.surrogates.DeepONet`.

The branch sees the source (:meth:`DeepONetEncodings.encode_source`: the initial
Gaussian pulse at the sensors, or the scaled coordinates); the trunk sees ``(x, t)``
through a fixed encoding:

- ``periodic``: wall-compatible cosines ``cos(m pi x_d / L_d)`` and time harmonics
  ``cos/sin(j pi t / duration)`` up to the pulse bandwidth;
- ``fourier``: ``cos/sin(2 pi f y / c)`` of every coordinate (``t`` as ``c t`` in m);
- ``random``: Gaussian random Fourier features of the scaled coordinates;
- ``none``: the coordinates scaled to [-1, 1].

The constants of an encoding are buffers of the model (:func:`register_encoding`), so
they move with it and the saved weights keep their historical names.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["ENCODINGS", "DeepONetEncodings", "register_encoding"]

ENCODINGS = ("periodic", "fourier", "random", "none")


def register_encoding(
    module: nn.Module,
    encoding: str,
    *,
    lengths: list[float],
    duration: float,
    c: float,
    sigma: float,
    bandwidth: float,
    frequencies: list[float],
    n_random: int,
    random_scale: float,
    seed: int,
) -> tuple[int, int, int]:
    """Register the encoding's constants on ``module``; returns the feature counts.

    Returns
    -------
    n_joint, n_space, n_time : int
        Features of ``(x, t)`` (joint trunk), of ``x`` and of ``t`` (separable trunk).
    """
    dim = len(lengths)
    if encoding == "periodic":
        kmax = bandwidth / sigma
        modes = [torch.arange(1, math.ceil(kmax * L / math.pi) + 1) for L in lengths]
        n_t = math.ceil(c * kmax * duration / math.pi)
        # integer mode numbers: cos(pi m x / L) is evaluated as cos(pi * m * (x / L)),
        # so that x = L gives exactly m pi whatever the floating type
        axis = [torch.full((len(m),), d) for d, m in enumerate(modes)]
        span = [torch.full((len(m),), L) for m, L in zip(modes, lengths, strict=True)]
        module.register_buffer("space_m", torch.cat(modes).double(), persistent=False)
        module.register_buffer("space_axis", torch.cat(axis), persistent=False)
        module.register_buffer("space_len", torch.cat(span), persistent=False)
        module.register_buffer("time_j", torch.arange(1, n_t + 1).double(), persistent=False)
        n_space = len(module.space_m)
        return 1 + n_space + 2 * n_t, n_space, 1 + 2 * n_t
    if encoding == "fourier":
        module.register_buffer("freq_k", 2 * math.pi * torch.tensor(frequencies) / c)  # rad/m
        n_f = 1 + 2 * len(frequencies)
        return (dim + 1) * n_f, dim * n_f, n_f
    if encoding == "random":
        g = torch.Generator().manual_seed(seed)
        module.register_buffer(
            "random_b", torch.randn(dim + 1, n_random, generator=g) * random_scale
        )
        return dim + 1 + 2 * n_random, dim + 2 * n_random, 1 + 2 * n_random
    return dim + 1, dim, 1


class DeepONetEncodings:
    """Mix-in of :class:`~pdesurrogates.surrogates.DeepONet`: branch and trunk inputs.

    Uses the model's ``dim``, ``sigma``, ``duration``, ``c``, ``encoding``,
    ``source_input`` and the buffers of :func:`register_encoding`, ``sensor_points`` and
    ``length_vec``.
    """

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
        """Joint trunk features of physical query points ``(..., D+1)`` = ``(x_1.., t)``."""
        x = coords[..., : self.dim]
        t = coords[..., self.dim :]
        scaled = torch.cat(
            [2.0 * x / self.length_vec.to(x) - 1.0, 2.0 * t / self.duration - 1.0], dim=-1
        )
        if self.encoding == "none":
            return scaled
        if self.encoding == "periodic":
            # no raw x: every feature has zero normal derivative at the walls
            tf = self.encode_time(t)
            return torch.cat([tf[..., :1], self.encode_space(x), tf[..., 1:]], dim=-1)
        if self.encoding == "fourier":
            y = torch.cat([x, t * self.c], dim=-1)  # both in metres
            arg = (y[..., :, None] * self.freq_k).flatten(-2)
            return torch.cat([scaled, torch.cos(arg), torch.sin(arg)], dim=-1)
        arg = scaled @ self.random_b
        return torch.cat([scaled, torch.cos(arg), torch.sin(arg)], dim=-1)

    def encode_space(self, x: torch.Tensor) -> torch.Tensor:
        """Features of positions ``(..., D)`` (m) for the space net of the separable trunk."""
        if self.encoding == "periodic":
            xs = x[..., self.space_axis] / self.space_len.to(x)
            return torch.cos(math.pi * self.space_m.to(x) * xs)
        scaled = 2.0 * x / self.length_vec.to(x) - 1.0
        if self.encoding == "none":
            return scaled
        if self.encoding == "fourier":
            arg = (x[..., :, None] * self.freq_k).flatten(-2)
        else:
            arg = scaled @ self.random_b[: self.dim]
        return torch.cat([scaled, torch.cos(arg), torch.sin(arg)], dim=-1)

    def encode_time(self, t: torch.Tensor) -> torch.Tensor:
        """Features of times ``(..., 1)`` (s) for the time net of the separable trunk."""
        scaled = 2.0 * t / self.duration - 1.0
        if self.encoding == "none":
            return scaled
        if self.encoding == "periodic":
            arg = (math.pi / self.duration) * t * self.time_j.to(t)
        elif self.encoding == "fourier":
            arg = (t * self.c) * self.freq_k
        else:
            arg = scaled @ self.random_b[self.dim :]
        return torch.cat([scaled, torch.cos(arg), torch.sin(arg)], dim=-1)
