"""Reference simulators that generate training data and ground truth."""

from __future__ import annotations

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
    park,
)
from pdesurrogates.solvers.reference._wave import (  # acoustics (FDTD + modal)
    C_AIR,
    AcousticsSetup,
    WaveSolution,
    acoustics_dataset_layout,
    acoustics_sample,
    acoustics_setup,
    default_receivers,
    gaussian_pulse,
    modal_wave,
    pulse_width,
    solve_wave,
    wave_grid,
)

__all__ = [  # Darcy flow
    "DARCY_VARIANTS",
    "cell_centres",
    "darcy_dataset_layout",
    "darcy_matrix",
    "darcy_sample",
    "gaussian_random_field",
    "solve_darcy",
    "threshold_coefficient",
]
__all__ += [  # multi-fidelity benchmarks
    "MF_PROBLEMS",
    "MultiFidelityProblem",
    "borehole",
    "branin",
    "currin",
    "forrester",
    "get_mf_problem",
    "hartmann3",
    "highdim",
    "nonlinear_sin",
    "park",
]
__all__ += [  # acoustics (FDTD + modal)
    "C_AIR",
    "WaveSolution",
    "gaussian_pulse",
    "modal_wave",
    "pulse_width",
    "solve_wave",
    "wave_grid",
]
__all__ += [  # acoustics datasets
    "AcousticsSetup",
    "acoustics_dataset_layout",
    "acoustics_sample",
    "acoustics_setup",
    "default_receivers",
]
