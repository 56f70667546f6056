"""Rematerialized inner steps: the same exact meta-gradient with less memory held for the backward pass."""

from __future__ import annotations

import pytest
import torch

from tworail.rails.ttt.config import ConfigError, InnerLoopConfig, ModelConfig
from tworail.rails.ttt.inner_loop import batch_fast_weights, run_inner_loop
from tworail.rails.ttt.meta import meta_loss
from tworail.rails.ttt.model import TTTModel

SMALL = ModelConfig(vocab_size=32, d_model=32, n_layers=4, n_heads=2, window=16, mini_batch=8, seq_len=64)


@pytest.fixture
def small() -> tuple[TTTModel, torch.Tensor]:
    torch.manual_seed(0)
    return TTTModel(SMALL).double(), torch.randint(0, SMALL.vocab_size, (2, SMALL.seq_len + 1))


def meta_gradients(model: TTTModel, tokens: torch.Tensor, rematerialize: bool) -> dict[str, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    inner = InnerLoopConfig.for_model(model.config)
    meta_loss(model, tokens, inner, "exact", 1.0, rematerialize=rematerialize).backward()
    return {name: parameter.grad.clone() for name, parameter in model.named_parameters()}


def test_rematerialized_meta_gradient_is_the_same(small) -> None:
    model, tokens = small
    kept = meta_gradients(model, tokens, rematerialize=False)
    recomputed = meta_gradients(model, tokens, rematerialize=True)
    assert kept.keys() == recomputed.keys()
    for name in kept:
        torch.testing.assert_close(recomputed[name], kept[name], rtol=0, atol=1e-12, msg=name)


def test_rematerialized_meta_gradient_gradgradcheck(micro) -> None:
    model, tokens = micro
    name = "blocks.3.prime.w_down"
    inner = InnerLoopConfig.for_model(model.config, learning_rate=0.5, grad_clip=100.0)

    def loss(w_down: torch.Tensor) -> torch.Tensor:
        fast = {**model.w0(), name: w_down}
        result = run_inner_loop(
            model, tokens[:, :-1], tokens[:, 1:], batch_fast_weights(fast, 1), inner, mode="exact", rematerialize=True
        )
        return result.mini_batch_losses.mean()

    w_down = model.w0()[name].detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(loss, (w_down,), eps=1e-6, atol=1e-6)
    assert torch.autograd.gradgradcheck(loss, (w_down,), eps=1e-6, atol=1e-5)


def saved_tensor_bytes(build_graph) -> int:
    """Return the bytes of the distinct storages autograd saves while `build_graph()` runs.

    Tensors saved inside a checkpointed region are not kept, so they do not count.
    """
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        build_graph()
    return sum(storages.values())


def test_rematerialization_keeps_less_per_mini_batch(small) -> None:
    model, tokens = small
    inner = InnerLoopConfig.for_model(model.config)

    def growth_per_mini_batch(rematerialize: bool) -> float:
        def held(length: int) -> int:
            return saved_tensor_bytes(lambda: meta_loss(model, tokens[:, : length + 1], inner, "exact", 1.0, rematerialize))

        return (held(64) - held(32)) / (32 // SMALL.mini_batch)

    kept, recomputed = growth_per_mini_batch(False), growth_per_mini_batch(True)
    assert recomputed < 0.5 * kept


def test_rematerialize_needs_exact_mode(small) -> None:
    model, tokens = small
    inner = InnerLoopConfig.for_model(model.config)
    fast = batch_fast_weights(model.w0(), 2)
    with pytest.raises(ConfigError, match="rematerialize=True needs mode 'exact', not 'first_order'"):
        run_inner_loop(model, tokens[:, :-1], tokens[:, 1:], fast, inner, mode="first_order", rematerialize=True)
