"""Deep ensembles: K independently trained members, one predictive distribution."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from pdesurrogates.io import build_model, estimate_parameters, model_spec, register_model
from pdesurrogates.surrogates._limits import MAX_REPEAT, check_at_most
from pdesurrogates.surrogates._mf_checks import quiet_box

__all__ = ["Ensemble"]


@register_model
class Ensemble(nn.Module):
    """A deep ensemble: the members' mean is the prediction, their spread the uncertainty.

    Parameters
    ----------
    members : sequence of nn.Module
        At least two registered models with the same input/output convention (typically
        the same architecture trained from different seeds, see
        :func:`pdesurrogates.training.fit_ensemble`).

    Examples
    --------
    >>> import torch
    >>> from pdesurrogates.surrogates import Ensemble, MgNO
    >>> members = []
    >>> for seed in range(3):
    ...     _ = torch.manual_seed(seed)
    ...     members.append(MgNO(channels=4, levels=2, layers=1, base_resolution=8))
    >>> ens = Ensemble(members)
    >>> x = torch.rand(2, 1, 8, 8)
    >>> pred = ens.predict(x)
    >>> pred.samples.shape, pred.mean.shape
    (torch.Size([3, 2, 1, 8, 8]), torch.Size([2, 1, 8, 8]))
    >>> torch.allclose(ens(x), pred.mean)
    True
    """

    def __init__(self, members: Sequence[nn.Module]):
        super().__init__()
        members = list(members) if not isinstance(members, nn.Module) else [members]
        check_at_most("Ensemble", "number of members", len(members), MAX_REPEAT)
        if len(members) < 2:
            raise ValueError(
                f"Ensemble: needs at least 2 members, got {len(members)}; "
                "train K >= 2 models with different seeds"
            )
        for i, m in enumerate(members):
            if not isinstance(m, nn.Module):
                raise ValueError(f"Ensemble: member {i} is a {type(m).__name__}, not an nn.Module")
        self.members = nn.ModuleList(members)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            members = self.__dict__.get("_modules", {}).get("members")
            kind = type(members[0]) if members is not None and len(members) else None
            if kind is None or name.startswith("_") or name not in dir(kind):
                raise
            raise AttributeError(
                f"'Ensemble' object has no attribute {name!r}: it is one of each member's "
                f"({kind.__name__}); call ens.members[k].{name} for member k, or "
                "ens.predict(...) for the ensemble's mean and spread"
            ) from None

    def get_config(self) -> dict[str, Any]:
        return {"members": [model_spec(m) for m in self.members]}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Ensemble:
        specs = config.get("members")
        if not isinstance(specs, list):
            raise ValueError("Ensemble config needs a list 'members' of model specs")
        check_at_most("Ensemble", "number of members", len(specs), MAX_REPEAT)
        return cls([build_model(s) for s in specs])

    @classmethod
    def estimate_parameters(cls, config: dict[str, Any]) -> int | None:
        """State-dict elements of all members, from their specs (not built)."""
        specs = config.get("members")
        if not isinstance(specs, list):
            raise ValueError("Ensemble config needs a list 'members' of model specs")
        check_at_most("Ensemble", "number of members", len(specs), MAX_REPEAT)
        sizes = [estimate_parameters(s) for s in specs]
        return None if None in sizes else sum(sizes)

    def __len__(self) -> int:
        return len(self.members)

    def member_outputs(self, *args, **kwargs) -> torch.Tensor:
        """Stacked member outputs, shape ``(K, *output_shape)`` (member axis first).

        An input outside a multi-fidelity net's declared bounds is reported by the first
        member only: the members share the input box (:func:`quiet_box`).
        """
        first = self.members[0](*args, **kwargs)
        with quiet_box():
            return torch.stack([first, *(m(*args, **kwargs) for m in self.members[1:])])

    def forward(self, *args, **kwargs) -> torch.Tensor:
        """The ensemble mean."""
        return self.member_outputs(*args, **kwargs).mean(dim=0)

    def predict(self, *args, **kwargs):
        """Predictive distribution: :class:`pdesurrogates.uq.Prediction` with the member
        outputs as ``samples`` (``(K, ...)``), their mean and (unbiased) std.

        The prediction has the members' output shape, channel-first ``(N, C, X, Y)`` for a
        ``(N, C, X, Y)`` input, the layout a dataset gives: ``evaluate(ens.predict(a), u)``
        with ``a, u = ds.load("a"), ds.load("u")`` needs no reshaping.
        :func:`pdesurrogates.uq.evaluate` also accepts a target ``(N, X, Y)`` (a channel
        axis of length 1 may be left out).

        Runs without autograd. Numpy inputs are converted to tensors of the members'
        dtype and device; the prediction then holds numpy arrays (numpy in, numpy out),
        otherwise tensors.
        """
        from pdesurrogates.uq import Prediction

        p = next(self.parameters(), None)
        like = {"dtype": p.dtype, "device": p.device} if p is not None else {}
        as_numpy = any(isinstance(a, np.ndarray) for a in (*args, *kwargs.values()))

        def tensor(a):
            return torch.as_tensor(a, **like) if isinstance(a, np.ndarray) else a

        with torch.no_grad():
            samples = self.member_outputs(
                *map(tensor, args), **{k: tensor(v) for k, v in kwargs.items()}
            )
        if as_numpy:
            samples = samples.cpu().numpy()
        return Prediction(samples.mean(0), samples=samples)
