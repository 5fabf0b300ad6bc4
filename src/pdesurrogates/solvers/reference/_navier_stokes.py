"""2-D incompressible Navier–Stokes in vorticity form on the unit torus, pseudo-spectral.

    ∂_t w + u·∇w = ν Δw + f,   u = (∂_y ψ, −∂_x ψ),   −Δψ = w,   on [0, 1)² periodic,

as in the FNO benchmark (Li et al. 2021): forcing ``f = 0.1 (sin 2π(x + y) + cos 2π(x + y))``
and an initial vorticity drawn from the Gaussian random field
``N(0, 7³ (−Δ + 49 I)^(−2.5))`` (the FNO code's scaling). The grid holds the points
``x_j = j/s``; ``w[..., i, j] = w(x_i, y_j)``.

Space: Fourier collocation. The advection term is formed in conservative form
``∂_x(u w) + ∂_y(v w)`` (products in physical space, derivatives spectral) and dealiased
by the 2/3 rule (modes with ``|k_x|`` or ``|k_y| > s/3`` are dropped), so the mean of
``w`` is conserved exactly. Time: Crank–Nicolson for the viscous term and Heun's
predictor–corrector for advection and forcing (second order; the step is chosen from a
CFL number and a maximum, and lands exactly on every record time). Everything runs in
torch on the device and in the dtype of the initial vorticity (a GPU works unchanged).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import torch

from pdesurrogates.errors import SolverError

__all__ = [
    "NS_DEFAULTS",
    "fno_forcing",
    "ns_dataset_layout",
    "ns_initial_vorticity",
    "ns_sample",
    "ns_velocity",
    "solve_navier_stokes",
]

#: Defaults of the generator (the FNO benchmark's ν = 1e-3 set-up, one record per time unit).
NS_DEFAULTS: dict[str, float] = {
    "nu": 1e-3,
    "duration": 50.0,
    "n_times": 51,
    "cfl": 0.25,
    "dt_max": 1e-2,
    "alpha": 2.5,
    "tau": 7.0,
}


def _check_resolution(s: Any) -> int:
    if isinstance(s, bool) or not isinstance(s, int | np.integer) or not 4 <= s <= 4096:
        raise ValueError(f"resolution must be an even integer in [4, 4096], got {s!r}")
    if s % 2:
        raise ValueError(f"resolution must be even (an FFT grid), got {s}")
    return int(s)


def fno_forcing(resolution: int) -> np.ndarray:
    """The FNO benchmark's forcing ``0.1 (sin 2π(x + y) + cos 2π(x + y))`` at ``j/s``."""
    x = np.arange(_check_resolution(resolution)) / resolution
    phase = 2 * np.pi * (x[:, None] + x[None, :])
    return 0.1 * (np.sin(phase) + np.cos(phase))


def ns_initial_vorticity(
    resolution: int,
    *,
    rng: np.random.Generator,
    alpha: float = 2.5,
    tau: float = 7.0,
    refine: int = 1,
) -> np.ndarray:
    """Draw the FNO benchmark's initial vorticity (a periodic Gaussian random field).

    ``w = Re Σ_k √2 σ (4π²|k|² + τ²)^(−α/2) ξ_k e^{2πi k·x}`` over the integer modes of an
    ``s``-point FFT grid, ``σ = τ^(α − 1)``, ``ξ_k`` with independent standard normal real
    and imaginary parts, mode 0 dropped (zero mean). ``refine = m`` evaluates the same
    trigonometric polynomial on the ``m·s`` grid (so its every ``m``-th point is the
    ``s``-grid field).

    Returns
    -------
    ndarray, shape (m·s, m·s)
    """
    s = _check_resolution(resolution)
    if isinstance(refine, bool) or not isinstance(refine, int | np.integer) or refine < 1:
        raise ValueError(f"refine must be a positive integer, got {refine!r}")
    k = np.fft.fftfreq(s, d=1.0 / s).astype(int)
    sigma = tau ** (alpha - 1.0)  # τ^((2α − d)/2) with d = 2
    lam = 4 * np.pi**2 * (k[:, None] ** 2 + k[None, :] ** 2) + tau**2
    xi = rng.standard_normal((s, s)) + 1j * rng.standard_normal((s, s))
    coeff = math.sqrt(2.0) * sigma * lam ** (-alpha / 2) * xi
    coeff[0, 0] = 0.0
    fine = s * int(refine)
    spec = np.zeros((fine, fine), dtype=complex)
    spec[np.ix_(k % fine, k % fine)] = coeff  # the same modes on the finer grid
    return np.fft.ifft2(spec).real * fine**2


class _Spectral(NamedTuple):
    """Spectral operators on the rfft2 layout (complex multipliers precomputed)."""

    lap: torch.Tensor  # −|2πk|²
    to_u: torch.Tensor  # w^ ↦ u^ = i k_y ψ^
    to_v: torch.Tensor  # w^ ↦ v^ = −i k_x ψ^
    ddx: torch.Tensor  # i 2πk_x, dealiased (2/3 rule)
    ddy: torch.Tensor  # i 2πk_y, dealiased
    keep: torch.Tensor  # the 2/3-rule mask


def _wavenumbers(s: int, device, dtype) -> _Spectral:
    """The operators of an ``s``-point grid. Nyquist derivatives are zeroed, and ``−Δ`` is
    inverted except on the mean and the Nyquist modes (which carry no real flow)."""
    kx = torch.fft.fftfreq(s, d=1.0 / s, device=device, dtype=dtype)
    ky = torch.fft.rfftfreq(s, d=1.0 / s, device=device, dtype=dtype)
    keep = (kx.abs()[:, None] <= s / 3) & (ky.abs()[None, :] <= s / 3)
    nyquist = (kx.abs() == s // 2)[:, None] | (ky.abs() == s // 2)[None, :]
    dx = torch.where(kx.abs() == s // 2, 0.0, 2 * math.pi * kx)[:, None]
    dy = torch.where(ky.abs() == s // 2, 0.0, 2 * math.pi * ky)[None, :]
    lap = -(4 * math.pi**2) * (kx[:, None] ** 2 + ky[None, :] ** 2)
    inv = torch.where((lap == 0) | nyquist, 0.0, -1.0 / torch.where(lap == 0, 1.0, lap))
    return _Spectral(
        lap=lap,
        to_u=1j * dy * inv,
        to_v=-1j * dx * inv,
        ddx=1j * dx * keep,
        ddy=1j * dy * keep,
        keep=keep,
    )


def ns_velocity(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The divergence-free velocity ``(u, v) = (∂_y ψ, −∂_x ψ)`` of a vorticity ``w``.

    ``w`` has shape (..., s, s) on the grid ``j/s`` of the unit torus; its mean and its
    Nyquist modes are ignored.
    """
    s = w.shape[-1]
    ops = _wavenumbers(s, w.device, w.dtype)
    w_hat = torch.fft.rfft2(w)
    uv = torch.fft.irfft2(torch.stack([w_hat * ops.to_u, w_hat * ops.to_v]), s=(s, s))
    return uv[0], uv[1]


def _tendency(w_hat, f_hat, ops: _Spectral, s: int):
    """Explicit part ``−(u·∇w)^ + f^`` (dealiased) and the largest velocity component.

    Three inverse and two forward transforms, each batched into one call."""
    uvw = torch.fft.irfft2(
        torch.stack([w_hat * ops.to_u, w_hat * ops.to_v, w_hat], dim=-3), s=(s, s)
    )
    flux = torch.fft.rfft2(uvw[..., :2, :, :] * uvw[..., 2:, :, :])
    adv = ops.ddx * flux[..., 0, :, :] + ops.ddy * flux[..., 1, :, :]
    return f_hat - adv, uvw[..., :2, :, :].abs().amax()


def solve_navier_stokes(
    w0: torch.Tensor,
    times: Any,
    *,
    nu: float,
    forcing: torch.Tensor | np.ndarray | None = None,
    cfl: float = 0.25,
    dt_max: float = 1e-2,
    max_steps: int = 10_000_000,
) -> torch.Tensor:
    """Integrate the vorticity equation from ``w0`` and return ``w`` at ``times``.

    Parameters
    ----------
    w0 : torch.Tensor, shape (..., s, s)
        Initial vorticity on the grid ``j/s`` (``s`` even); a batch shares its time steps.
        The solve runs on ``w0``'s device in its (real floating) dtype.
    times : sequence of float
        Increasing record times ``>= 0`` (``0`` records ``w0``).
    nu : float
        Kinematic viscosity (> 0).
    forcing : tensor or ndarray, shape (s, s), optional
        Time-independent forcing ``f`` (default none).
    cfl : float
        Step ≤ ``cfl · h / max(|u|, |v|)``, ``h = 1/s`` (``inf`` for a fixed step).
    dt_max : float
        Largest step.
    max_steps : int
        Safety limit on the number of steps.

    Returns
    -------
    torch.Tensor, shape (len(times), ..., s, s)

    Raises
    ------
    SolverError
        If the vorticity becomes non-finite (the step is too large for the flow).
    """
    if not torch.is_floating_point(w0) or w0.dim() < 2 or w0.shape[-1] != w0.shape[-2]:
        raise ValueError("w0 must be a real floating tensor of shape (..., s, s)")
    s = _check_resolution(w0.shape[-1])
    times = np.asarray(times, dtype=np.float64)
    if times.ndim != 1 or times.size == 0 or times[0] < 0 or np.any(np.diff(times) <= 0):
        raise ValueError("times must be a non-empty increasing sequence of values >= 0")
    if not nu > 0 or not dt_max > 0 or not cfl > 0:
        raise ValueError(f"nu, dt_max and cfl must be > 0, got {nu}, {dt_max}, {cfl}")
    ops = _wavenumbers(s, w0.device, w0.dtype)
    lap = ops.lap
    f_hat = 0.0
    if forcing is not None:
        f = torch.as_tensor(forcing, dtype=w0.dtype, device=w0.device)
        if f.shape != (s, s):
            raise ValueError(f"forcing must have shape {(s, s)}, got {tuple(f.shape)}")
        f_hat = torch.fft.rfft2(f) * ops.keep  # the forcing is dealiased like advection
    w_hat = torch.fft.rfft2(w0)
    out, t, steps = [], 0.0, 0
    for target in times:
        while target - t > 1e-12 * max(1.0, target):
            e0, speed = _tendency(w_hat, f_hat, ops, s)
            speed = float(speed)
            if not math.isfinite(speed):
                raise SolverError(
                    f"the velocity became NaN/Inf at t = {t:g}, before t = {target:g}: "
                    "lower cfl or dt_max"
                )
            dt = min(dt_max, cfl / (s * max(speed, 1e-300)))
            dt = (target - t) / math.ceil((target - t) / dt - 1e-9)
            half = 0.5 * dt * nu * lap
            a, b = 1 + half, 1 - half
            pred = (a * w_hat + dt * e0) / b
            e1, _ = _tendency(pred, f_hat, ops, s)
            w_hat = (a * w_hat + 0.5 * dt * (e0 + e1)) / b
            t, steps = t + dt, steps + 1
            if steps > max_steps:
                raise SolverError(f"more than max_steps = {max_steps} steps before t = {target}")
        t = float(target)
        w = torch.fft.irfft2(w_hat, s=(s, s))
        if not torch.isfinite(w).all():
            raise SolverError(
                f"the vorticity became NaN/Inf before t = {target:g}: lower cfl or dt_max"
            )
        out.append(w)
    return torch.stack(out)


def ns_sample(
    index: int,
    seed: int,
    *,
    resolution: int,
    nu: float = 1e-3,
    duration: float = 50.0,
    n_times: int = 51,
    refine: int = 1,
    cfl: float = 0.25,
    dt_max: float = 1e-2,
    device: str = "cpu",
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """One trajectory, with randomness drawn only from ``(seed, index)``.

    Returns ``({"w": vorticity (n_times, s, s)}, {})`` at the uniform times
    ``linspace(0, duration, n_times)``; the solve runs in float64 on ``device`` on a grid
    ``refine`` times finer, of which every ``refine``-th point is stored.
    """
    rng = np.random.default_rng([int(seed), int(index)])
    w0 = ns_initial_vorticity(
        resolution, rng=rng, alpha=NS_DEFAULTS["alpha"], tau=NS_DEFAULTS["tau"], refine=refine
    )
    times = np.linspace(0.0, float(duration), int(n_times))
    w = solve_navier_stokes(
        torch.as_tensor(w0, dtype=torch.float64, device=device),
        times,
        nu=nu,
        forcing=fno_forcing(w0.shape[-1]),
        cfl=cfl,
        dt_max=dt_max,
    )
    keep = slice(None, None, int(refine))
    return {"w": w[:, keep, keep].cpu().numpy().astype(np.float32)}, {}


def ns_dataset_layout(
    resolution: int, *, nu: float = 1e-3, duration: float = 50.0, n_times: int = 51
) -> dict[str, Any]:
    """Keyword arguments for :func:`pdesurrogates.datasets.generate_dataset` (plain dicts)."""
    s = _check_resolution(resolution)
    if int(n_times) < 2 or not duration > 0:
        raise ValueError(f"n_times must be >= 2 and duration > 0, got {n_times}, {duration}")
    x = np.arange(s) / s
    return {
        "coords": {"time": np.linspace(0.0, float(duration), int(n_times)), "x": x, "y": x},
        "fields": {
            "w": {
                "dims": ("sample", "time", "x", "y"),
                "role": "state",
                "units": "1",
                "long_name": "vorticity w",
            },
        },
        "units": {"time": "1", "x": "1", "y": "1"},
        "periodic": {"x": True, "y": True},
        "dataset_name": f"navier-stokes-nu{nu:g}-{s}",
        "pde": (
            f"w_t + u.grad w = nu lap w + f on the unit torus, nu = {nu:g}, u = (psi_y, -psi_x), "
            "-lap psi = w, f = 0.1 (sin 2pi(x + y) + cos 2pi(x + y)); "
            "w(0) ~ N(0, 7^3 (-lap + 49)^(-2.5))"
        ),
    }
