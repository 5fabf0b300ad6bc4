"""Reference simulators that generate training data and ground truth."""

from __future__ import annotations

from pdesurrogates.solvers.reference._acoustics import (  # acoustics datasets
    AcousticsSetup,
    acoustics_dataset_layout,
    acoustics_sample,
    acoustics_setup,
    default_receivers,
    grid_receivers,
)
from pdesurrogates.solvers.reference._darcy import (
    DARCY_VARIANTS,
    cell_centres,
    darcy_dataset_layout,
    darcy_matrix,
    darcy_sample,
    gaussian_random_field,
    solve_darcy,
    threshold_coefficient,
)
from pdesurrogates.solvers.reference._mf_functions import (  # multi-fidelity benchmarks
    MF_PROBLEMS,
    MultiFidelityProblem,
    borehole,
    branin,
    currin,
    forrester,
    get_mf_problem,
    hartmann3,
    highdim,
    nonlinear_sin,
    nonlinear_sin_wide,
    park,
)
from pdesurrogates.solvers.reference._room_fdtd import (  # impedance walls, voxel rooms
    RHO_AIR,
    absorption_coefficient,
    solve_room,
)
from pdesurrogates.solvers.reference._room_geometry import Room, dispersion_error
from pdesurrogates.solvers.reference._room_metrics import (  # room-acoustic measures
    decay_errors,
    early_decay_time,
    energy_decay_curve,
)
from pdesurrogates.solvers.reference._wave_common import (
    C_AIR,
    gaussian_pulse,
    pulse_width,
    wave_grid,
)
from pdesurrogates.solvers.reference._wave_fdtd import WaveSolution, solve_wave
from pdesurrogates.solvers.reference._wave_modal import modal_wave

__all__ = [
    "C_AIR",
    "DARCY_VARIANTS",
    "MF_PROBLEMS",
    "RHO_AIR",
    "AcousticsSetup",
    "MultiFidelityProblem",
    "Room",
    "WaveSolution",
    "absorption_coefficient",
    "acoustics_dataset_layout",
    "acoustics_sample",
    "acoustics_setup",
    "borehole",
    "branin",
    "cell_centres",
    "currin",
    "darcy_dataset_layout",
    "darcy_matrix",
    "darcy_sample",
    "decay_errors",
    "default_receivers",
    "dispersion_error",
    "early_decay_time",
    "energy_decay_curve",
    "forrester",
    "gaussian_pulse",
    "gaussian_random_field",
    "get_mf_problem",
    "grid_receivers",
    "hartmann3",
    "highdim",
    "modal_wave",
    "nonlinear_sin",
    "nonlinear_sin_wide",
    "park",
    "pulse_width",
    "solve_darcy",
    "solve_room",
    "solve_wave",
    "threshold_coefficient",
    "wave_grid",
]
