"""A model together with the normalisers of its input and output, saved as one unit."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from pdesurrogates._progress import logger
from pdesurrogates.io import build_model, estimate_parameters, model_spec, register_model

__all__ = ["NormalizedModel"]


def _zero_std(norm) -> list[int]:
    find = getattr(norm, "zero_std_channels", None)
    if find is None or getattr(norm, "std", torch.ones(())).device.type == "meta":
        return []
    return find()


def _check_output_std(norm) -> None:
    """An output normaliser with std = 0 would decode every prediction to its mean."""
    zero = _zero_std(norm)
    if zero:
        raise ValueError(
            f"NormalizedModel: output_normalizer has std = 0 for channel(s) {zero[:10]}: every "
            "prediction of such a channel would be its training mean. The training outputs "
            "are constant there; drop the channel or give a positive std"
        )


def _clamp_input_std(norm, *, warn: bool) -> bool:
    """Set std = 0 entries of an input normaliser to 1; True if there were any."""
    zero = _zero_std(norm)
    if not zero:
        return False
    if warn:
        logger.warning(
            "NormalizedModel: input_normalizer has std = 0 for channel(s) %s (constant in "
            "the training data); using std = 1 there so other values are not amplified "
            "by 1/eps",
            zero[:10],
        )
    with torch.no_grad():
        norm.std.view(-1)[zero] = 1.0
    return True


def _reclamp_after_load(module, incompatible_keys) -> None:
    _clamp_input_std(module.input_normalizer, warn=False)


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
        :class:`Normalizer`); ``None`` is the identity. An output normaliser with
        ``std = 0`` in some channel is refused (``ValueError``): it would decode every
        prediction of that channel to a constant. An input normaliser with ``std = 0``
        (a channel constant in the training data) has that std set to 1, with a warning in
        the log: the training value still encodes to 0, and other values are no longer
        amplified by ``1 / eps``.

    Notes
    -----
    Inputs and outputs are channel-first ``(N, C, *spatial)``; per-channel statistics
    broadcast over them. With one channel, an input without the channel axis
    (``(N, X, Y)``) is passed through as it is, for a wrapped model that accepts it (MgNO
    and FNO do, and then return ``(N, X, Y)``).

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
        _check_output_std(output_normalizer)
        self.model = model
        self.input_normalizer = input_normalizer
        self.output_normalizer = output_normalizer
        if _clamp_input_std(input_normalizer, warn=True):
            self.register_load_state_dict_post_hook(_reclamp_after_load)

    @classmethod
    def estimate_parameters(cls, config: dict[str, Any]) -> int | None:
        """State-dict elements of the model and its normalisers, from their specs."""
        total = 0
        for key in ("model", "input_normalizer", "output_normalizer"):
            spec = config.get(key)
            if spec is not None:
                n = estimate_parameters(spec)
                if n is None:
                    return None
                total += n
        return total

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

        if "model" not in config:
            raise ValueError("NormalizedModel config needs the spec of the wrapped 'model'")
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
