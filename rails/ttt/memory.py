"""Measure the memory autograd holds for a backward pass, by counting the tensors it saves."""

from __future__ import annotations

from collections.abc import Callable

import torch


def saved_tensor_bytes(build_graph: Callable[[], object]) -> int:
    """Return the bytes of the distinct storages autograd saves while `build_graph()` runs.

    Storages shared by several saved tensors (views, repeated saves) count once.
    Tensors saved inside an activation-checkpointed region are not kept, so they
    do not count; the region's inputs and outputs saved by later operations do.
    """
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        build_graph()
    return sum(storages.values())
