"""Meta-gradient: gradcheck / gradgradcheck in float64 on a micro model, schedules, modes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tworail.rails.ttt.config import InnerLoopConfig
from tworail.rails.ttt.inner_loop import batch_fast_weights, run_inner_loop
from tworail.rails.ttt.meta import inner_lr_multiplier, meta_loss
from tworail.rails.ttt.model import TTTModel

def meta_loss_of_w_down(model: TTTModel, tokens: torch.Tensor, mode: str):
    """Return L as a function of the suffix prime MLP's w_down (the other fast weights fixed)."""
    name = "blocks.3.prime.w_down"
    inner = InnerLoopConfig.for_model(model.config, learning_rate=0.5, grad_clip=100.0)

    def loss(w_down: torch.Tensor) -> torch.Tensor:
        fast = dict(model.w0())
        fast[name] = w_down
        result = run_inner_loop(
            model, tokens[:, :-1], tokens[:, 1:], batch_fast_weights(fast, 1), inner, mode=mode
        )
        return result.mini_batch_losses.mean()

    return loss, model.w0()[name].detach().clone()


def test_meta_gradient_gradcheck(micro) -> None:
    model, tokens = micro
    loss, w_down = meta_loss_of_w_down(model, tokens, "exact")
    assert torch.autograd.gradcheck(loss, (w_down.requires_grad_(True),), eps=1e-6, atol=1e-6)


def test_meta_gradient_gradgradcheck(micro) -> None:
    model, tokens = micro
    loss, w_down = meta_loss_of_w_down(model, tokens, "exact")
    assert torch.autograd.gradgradcheck(loss, (w_down.requires_grad_(True),), eps=1e-6, atol=1e-5)


def test_first_order_gradient_differs(micro) -> None:
    """First-order MAML drops the second-order terms, so its gradient is not the exact one."""
    model, tokens = micro
    exact, w_down = meta_loss_of_w_down(model, tokens, "exact")
    first, _ = meta_loss_of_w_down(model, tokens, "first_order")
    w_exact = w_down.clone().requires_grad_(True)
    (exact_grad,) = torch.autograd.grad(exact(w_exact), w_exact)
    w_first = w_down.clone().requires_grad_(True)
    (first_grad,) = torch.autograd.grad(first(w_first), w_first)
    assert torch.isfinite(first_grad).all()
    assert (exact_grad - first_grad).abs().max() > 1e-6


def test_inner_loss_twice_differentiable(micro) -> None:
    """gradgradcheck of one mini-batch's loss through the suffix, LM head and cross-entropy."""
    model, tokens = micro
    positions = torch.arange(2)
    h, _ = model.run_prefix(tokens[:, :2], positions, [None] * model.config.n_prefix)
    names = model.fast_weight_names()

    def inner_loss(*weights: torch.Tensor) -> torch.Tensor:
        out, _ = model.run_suffix(h, positions, [None], dict(zip(names, weights)))
        return F.cross_entropy(model.lm_head(out)[0], tokens[0, 1:3])

    weights = tuple(value.detach().clone().requires_grad_(True) for value in model.w0().values())
    assert torch.autograd.gradgradcheck(inner_loss, weights, eps=1e-6, atol=1e-5)


def test_meta_loss_reaches_all_parameters(micro) -> None:
    """The outer gradient of the exact meta-loss reaches W0, attention, norms and embeddings."""
    model, tokens = micro
    model.requires_grad_(True)
    inner = InnerLoopConfig.for_model(model.config)
    meta_loss(model, tokens, inner, "exact", 1.0).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name


def test_meta_loss_rejects_inference_mode(micro) -> None:
    model, tokens = micro
    with pytest.raises(ValueError, match="'exact' or 'first_order'"):
        meta_loss(model, tokens, InnerLoopConfig.for_model(model.config), "inference", 1.0)


def test_inner_lr_warmup() -> None:
    assert inner_lr_multiplier(0, 100) == pytest.approx(0.1)
    assert inner_lr_multiplier(5, 100) == pytest.approx(0.55)
    assert inner_lr_multiplier(10, 100) == 1.0
    assert inner_lr_multiplier(99, 100) == 1.0
