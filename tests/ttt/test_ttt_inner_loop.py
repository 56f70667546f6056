"""Inner loop: chunked prefill against a token-by-token reference, causality, modes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tworail.rails.ttt.config import ConfigError, InnerLoopConfig, ModelConfig
from tworail.rails.ttt.decode import feed_token, maybe_inner_step, start_decode
from tworail.rails.ttt.inner_loop import batch_fast_weights, run_inner_loop
from tworail.rails.ttt.model import KVCache, TTTModel


def reference_token_by_token(
    model: TTTModel, tokens: torch.Tensor, lr: float, clip: float
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Run TTT-E2E one token at a time with per-layer caches; return per-token losses and final W.

    Written independently of `run_inner_loop`, every token goes through all blocks
    alone. After each mini-batch the suffix is re-run on that mini-batch from the
    caches it started with, and a hand-written clipped SGD step gives the next W.
    """
    config = model.config
    b = config.mini_batch
    inputs, targets = tokens[:-1], tokens[1:]
    fast = {name: value.detach().clone() for name, value in model.w0().items()}
    caches: list[KVCache | None] = [None] * config.n_layers
    block_start_caches = caches[config.n_prefix :]
    block_hidden: list[torch.Tensor] = []
    losses = []
    for position, token in enumerate(inputs.tolist()):
        positions = torch.tensor([position])
        h, prefix_caches = model.run_prefix(torch.tensor([[token]]), positions, caches[: config.n_prefix])
        out, suffix_caches = model.run_suffix(h, positions, caches[config.n_prefix :], fast)
        caches = [*prefix_caches, *suffix_caches]
        block_hidden.append(h)
        losses.append(F.cross_entropy(model.lm_head(out)[0], targets[position : position + 1]))
        block_done = (position + 1) % b == 0 or position + 1 == len(inputs)
        if not block_done:
            continue
        start = position + 1 - len(block_hidden)
        leaf = {name: value.clone().requires_grad_(True) for name, value in fast.items()}
        with torch.enable_grad():
            out, _ = model.run_suffix(
                torch.cat(block_hidden, dim=1), torch.arange(start, position + 1), block_start_caches, leaf
            )
            loss = F.cross_entropy(model.lm_head(out)[0], targets[start : position + 1])
            grads = torch.autograd.grad(loss, list(leaf.values()))
        norm = torch.sqrt(sum(g.pow(2).sum() for g in grads))
        scale = min(1.0, clip / float(norm))
        fast = {name: value - lr * scale * g for (name, value), g in zip(fast.items(), grads)}
        block_start_caches = caches[config.n_prefix :]
        block_hidden = []
    return torch.stack(losses), fast


def chunked(model: TTTModel, tokens: torch.Tensor, update: bool = True, lr: float = 1.0, clip: float = 1.0, **kwargs):
    """Run `run_inner_loop` on one sequence (T + 1,) in inference mode."""
    batch = tokens.unsqueeze(0)
    fast = batch_fast_weights(model.w0(), 1)
    inner = InnerLoopConfig.for_model(model.config, learning_rate=lr, grad_clip=clip)
    return run_inner_loop(model, batch[:, :-1], batch[:, 1:], fast, inner, update=update, **kwargs)


@pytest.mark.parametrize(("lr", "clip"), [(1.0, 1.0), (3.0, 0.01)])
def test_chunked_prefill_matches_token_by_token(tiny_model: TTTModel, lr: float, clip: float) -> None:
    torch.manual_seed(1)
    tokens = torch.randint(0, tiny_model.config.vocab_size, (31,))  # 30 inputs: 7 full mini-batches + 2
    result = chunked(tiny_model, tokens, lr=lr, clip=clip)
    ref_losses, ref_fast = reference_token_by_token(tiny_model, tokens, lr=lr, clip=clip)
    torch.testing.assert_close(result.token_losses[0], ref_losses, rtol=1e-9, atol=1e-9)
    for name, value in ref_fast.items():
        torch.testing.assert_close(result.fast_weights[name][0], value, rtol=1e-9, atol=1e-9)


def test_updates_change_later_predictions(tiny_model: TTTModel) -> None:
    torch.manual_seed(2)
    tokens = torch.randint(0, tiny_model.config.vocab_size, (25,))
    learned = chunked(tiny_model, tokens).token_losses[0]
    frozen = chunked(tiny_model, tokens, update=False).token_losses[0]
    b = tiny_model.config.mini_batch
    torch.testing.assert_close(learned[:b], frozen[:b])  # mini-batch 0 is scored with W0
    assert (learned[b:] - frozen[b:]).abs().max() > 1e-6


def test_no_update_equals_full_forward(tiny_model: TTTModel) -> None:
    """Without updates, the chunked inner loop equals one masked forward over the whole sequence."""
    torch.manual_seed(3)
    tokens = torch.randint(0, tiny_model.config.vocab_size, (2, 30))
    logits = tiny_model(tokens[:, :-1])
    full = F.cross_entropy(logits.flatten(0, 1), tokens[:, 1:].flatten(), reduction="none").view(2, -1)
    inner = InnerLoopConfig.for_model(tiny_model.config)
    result = run_inner_loop(
        tiny_model, tokens[:, :-1], tokens[:, 1:], batch_fast_weights(tiny_model.w0(), 2), inner, update=False
    )
    torch.testing.assert_close(result.token_losses, full)


def test_prediction_ignores_later_tokens(tiny_model: TTTModel) -> None:
    torch.manual_seed(4)
    tokens = torch.randint(0, tiny_model.config.vocab_size, (25,))
    base = chunked(tiny_model, tokens).token_losses[0]
    for cut in (5, 10, 13, 20):
        changed = tokens.clone()
        changed[cut + 1 :] = (changed[cut + 1 :] + 7) % tiny_model.config.vocab_size
        # Losses of inputs 0..cut-1 predict tokens 1..cut, which are unchanged.
        other = chunked(tiny_model, changed).token_losses[0]
        torch.testing.assert_close(other[:cut], base[:cut], rtol=0, atol=0)
        assert (other[cut:] - base[cut:]).abs().max() > 0


def test_own_minibatch_update_not_used(tiny_model: TTTModel) -> None:
    """Changing the last target of mini-batch 1 changes its update but not its other scores."""
    torch.manual_seed(5)
    b = tiny_model.config.mini_batch
    tokens = torch.randint(0, tiny_model.config.vocab_size, (4 * b + 1,))
    base = chunked(tiny_model, tokens).token_losses[0]
    changed = tokens.clone()
    last_target = 2 * b  # target of input 2b - 1, the last input of mini-batch 1
    changed[last_target] = (changed[last_target] + 1) % tiny_model.config.vocab_size
    other = chunked(tiny_model, changed).token_losses[0]
    torch.testing.assert_close(other[: 2 * b - 1], base[: 2 * b - 1], rtol=0, atol=0)
    # Input 2b reads the changed token itself, so compare from 2b + 1: there only the update differs.
    assert (other[2 * b + 1 :] - base[2 * b + 1 :]).abs().max() > 0


def test_inner_loop_rejects_misaligned_start(tiny_model: TTTModel) -> None:
    tokens = torch.randint(0, tiny_model.config.vocab_size, (9,))
    with pytest.raises(ConfigError, match="start_position=3"):
        chunked(tiny_model, tokens, start_position=3)


def test_inner_loop_rejects_other_minibatch(tiny_model: TTTModel) -> None:
    batch = torch.randint(0, tiny_model.config.vocab_size, (1, 9))
    inner = InnerLoopConfig(mini_batch=tiny_model.config.mini_batch * 2)
    with pytest.raises(ConfigError, match="differs from the model's mini_batch"):
        run_inner_loop(tiny_model, batch[:, :-1], batch[:, 1:], batch_fast_weights(tiny_model.w0(), 1), inner)


def test_sequences_in_batch_independent(tiny_config: ModelConfig) -> None:
    torch.manual_seed(6)
    model = TTTModel(tiny_config).double().requires_grad_(False)
    tokens = torch.randint(0, tiny_config.vocab_size, (3, 21))
    inner = InnerLoopConfig.for_model(tiny_config)
    together = run_inner_loop(model, tokens[:, :-1], tokens[:, 1:], batch_fast_weights(model.w0(), 3), inner)
    for row in range(3):
        alone = chunked(model, tokens[row])
        torch.testing.assert_close(together.token_losses[row], alone.token_losses[0])


def test_decode_matches_chunked_prefill(tiny_model: TTTModel) -> None:
    """Feeding tokens one by one with decode-time inner steps reproduces the chunked inner loop."""
    torch.manual_seed(7)
    tokens = torch.randint(0, tiny_model.config.vocab_size, (29,))
    result = chunked(tiny_model, tokens)
    inner = InnerLoopConfig.for_model(tiny_model.config)
    state = start_decode(tiny_model, [None] * tiny_model.config.n_layers, batch_fast_weights(tiny_model.w0(), 1), 0)
    losses = []
    for position in range(len(tokens) - 1):
        logits = feed_token(tiny_model, state, int(tokens[position]))
        losses.append(F.cross_entropy(logits, tokens[position + 1]))
        maybe_inner_step(tiny_model, state, int(tokens[position + 1]), inner)
    # 28 inputs are 7 whole mini-batches, so both paths take the same 7 steps.
    torch.testing.assert_close(torch.stack(losses), result.token_losses[0])
    for name, value in result.fast_weights.items():
        torch.testing.assert_close(state.fast[name], value)
