"""PreconditionerContract applied to every preconditioner object in pdesurrogates.solvers."""

from __future__ import annotations

import torch

from pdesurrogates.solvers import (
    AMG,
    IncompleteCholesky,
    Jacobi,
    LearnedPreconditioner,
    MultigridHierarchy,
)
from pdesurrogates.surrogates import ConjugateDirectionNet, LearnedVCycle
from pdesurrogates.testing import PreconditionerContract


class TestJacobiContract(PreconditionerContract):
    def make_preconditioner(self, problem):
        return Jacobi(problem.A)


class TestIncompleteCholeskyContract(PreconditionerContract):
    max_iteration_ratio = 0.25

    def make_preconditioner(self, problem):
        return IncompleteCholesky(problem.A)


class TestAMGContract(PreconditionerContract):
    max_iteration_ratio = 0.1

    def make_preconditioner(self, problem):
        return AMG(problem.A)


class TestMultigridHierarchyContract(PreconditionerContract):
    max_iteration_ratio = 0.1

    def make_preconditioner(self, problem):
        return MultigridHierarchy(LearnedVCycle(dim=2), problem.A, problem.shape)


class TestLearnedVCycleContract(PreconditionerContract):
    max_iteration_ratio = 0.1

    def make_preconditioner(self, problem):
        model = LearnedVCycle(dim=2, coarse_cells=16)
        with torch.no_grad():  # away from the geometric initialisation
            model.stencil.copy_(torch.tensor([0.7, 0.2]))
        return LearnedPreconditioner(model, problem)


class TestLearnedDirectionNetContract(PreconditionerContract):
    """A nonlinear network: refused by aspreconditioner(), used by fcg/DCDM."""

    def make_problem(self):
        from pdesurrogates.solvers import gallery

        return gallery.named_problem("poisson2d", 24)

    def make_preconditioner(self, problem):
        torch.manual_seed(0)
        return LearnedPreconditioner(ConjugateDirectionNet(dim=2, width=2), problem)
