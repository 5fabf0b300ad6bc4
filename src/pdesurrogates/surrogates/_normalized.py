"""A model together with the normalisers of its input and output, saved as one unit."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from pdesurrogates.io import build_model, model_spec, register_model

__all__ = ["NormalizedModel"]


@register_model
class NormalizedModel(nn.Module):
    """``decode(model(encode(x)))``: a surrogate that works in physical units.

    The wrapped network is trained on normalised data, but callers give and receive
    physical fields; the normalisers' statistics are buffers, so
    :func:`pdesurrogates.save` stores them with the weights.

    Parameters
    ----------
    model : nn.Module
        A registered model (``get_config()``), e.g. :class:`MgNO`.
    input_normalizer, output_normalizer : nn.Module or None
        Registered modules with ``encode``/``decode`` (e.g.
        :class:`Normalizer`); ``None`` is the identity.

    Examples
    --------
    >>> import torch
    >>> from pdesurrogates.surrogates import MgNO, NormalizedModel, Normalizer
    >>> net = MgNO(channels=4, levels=2, layers=1, base_resolution=8)
    >>> m = NormalizedModel(net, input_normalizer=Normalizer(mean=5.0, std=2.0),
    ...                     output_normalizer=Normalizer(mean=0.0, std=0.01))
    >>> m(torch.rand(2, 1, 8, 8)).shape
    torch.Size([2, 1, 8, 8])
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        input_normalizer: nn.Module | None = None,
        output_normalizer: nn.Module | None = None,
    ):
        super().__init__()
        if not isinstance(model, nn.Module):
            raise ValueError(f"NormalizedModel: model must be an nn.Module, got {type(model)}")
        for name, norm in (
            ("input_normalizer", input_normalizer),
            ("output_normalizer", output_normalizer),
        ):
            if norm is not None and not (hasattr(norm, "encode") and hasattr(norm, "decode")):
                raise ValueError(f"NormalizedModel: {name} must have encode() and decode() methods")
        self.model = model
        self.input_normalizer = input_normalizer
        self.output_normalizer = output_normalizer

    def get_config(self) -> dict[str, Any]:
        return {
            "model": model_spec(self.model),
            "input_normalizer": None
            if self.input_normalizer is None
            else model_spec(self.input_normalizer),
            "output_normalizer": None
            if self.output_normalizer is None
            else model_spec(self.output_normalizer),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> NormalizedModel:
        def build(spec):
            return None if spec is None else build_model(spec)

        return cls(
            build_model(config["model"]),
            input_normalizer=build(config.get("input_normalizer")),
            output_normalizer=build(config.get("output_normalizer")),
        )

    @property
    def inner(self) -> nn.Module:
        """The wrapped network."""
        return self.model

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        if self.input_normalizer is not None:
            x = self.input_normalizer.encode(x)
        y = self.model(x, *args, **kwargs)
        if self.output_normalizer is not None:
            y = self.output_normalizer.decode(y)
        return y
