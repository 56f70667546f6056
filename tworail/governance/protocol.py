"""The interface the governance control plane needs from a learnable model.

`tworail.rails.ttt.rail.LearnableRail` satisfies it, and so does the toy model
in `tworail.governance.toy` that the unit tests use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from torch import Tensor

from tworail.records import LearnReport

FastWeightState = dict[str, Tensor]
"""Fast weights by parameter name, float32 tensors on the CPU."""


@runtime_checkable
class FastWeightModel(Protocol):
    """A model whose fast weights change when it reads text."""

    def learn(self, text: str) -> LearnReport:
        """Take inner-loop gradient steps on `text`; the changed fast weights persist."""
        ...

    def score(self, text: str) -> Tensor:
        """Return the per-token next-token loss of `text` in nats, without updating anything."""
        ...

    def fast_weights(self) -> FastWeightState:
        """Return copies of the current fast weights."""
        ...

    def load_fast_weights(self, state: Mapping[str, Tensor]) -> None:
        """Replace the current fast weights with `state`."""
        ...

    def reset(self) -> None:
        """Restore the fast weights to their trained values W0."""
        ...

    def w0(self) -> FastWeightState:
        """Return copies of the trained fast weights W0."""
        ...
