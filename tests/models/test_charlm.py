"""Tests for the character-level language models (minigrad/models/charlm.py)."""

import math

import numpy as np
import pytest

import minigrad as mg
from minigrad import optim
from minigrad.autograd import gradcheck
from minigrad.data.datasets import CharTokenizer
from minigrad.models import charlm_train
from minigrad.models.charlm import Block, CharRNN, TransformerLM, generate, lm_from_config
from minigrad.models.charlm_train import lm_loss
from minigrad.nn.utils import clip_grad_norm_


def tiny_transformer(**kw):
    args = dict(vocab_size=7, block_size=8, n_layer=2, n_head=2, n_embd=8)
    args.update(kw)
    return TransformerLM(**args)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_charrnn_shapes_and_state(cell):
    model = CharRNN(vocab_size=6, hidden=10, layers=2, cell=cell, dropout=0.2)
    idx = mg.randint(6, size=(3, 5))
    assert model(idx).shape == (3, 5, 6)
    logits, state = model(idx, return_state=True)
    h = state[0] if cell == "lstm" else state
    assert logits.shape == (3, 5, 6) and h.shape == (2, 3, 10)
    # continuing from the state equals reading the whole sequence at once
    model.eval()
    full = model(idx).detach().numpy()
    first, state = model(idx[:, :3], return_state=True)
    rest = model(idx[:, 3:], state)
    joined = np.concatenate([first.detach().numpy(), rest.detach().numpy()], axis=1)
    np.testing.assert_allclose(joined, full, rtol=1e-5, atol=1e-6)


def test_transformer_shapes_names_and_tied_head():
    model = tiny_transformer()
    assert model(mg.randint(7, size=(2, 8))).shape == (2, 8, 7)
    assert model(mg.randint(7, size=(1, 1))).shape == (1, 1, 7)
    names = set(model.state_dict())
    # nanoGPT's names, biases off (its train.py default)
    for name in ("transformer.wte.weight", "transformer.wpe.weight", "transformer.ln_f.weight",
                 "transformer.h.1.attn.c_attn.weight", "transformer.h.1.mlp.c_proj.weight",
                 "lm_head.weight"):
        assert name in names
    assert not any(n.endswith(".bias") for n in names)
    assert model.lm_head.weight is model.transformer.wte.weight
    assert sum(1 for _ in model.parameters()) == len(names) - 1  # the tied matrix counts once
    untied = tiny_transformer(tie_weights=False, bias=True)
    assert untied.lm_head.weight is not untied.transformer.wte.weight
    assert "transformer.h.0.attn.c_attn.bias" in untied.state_dict()


def test_transformer_init_is_nanogpts():
    model = TransformerLM(vocab_size=50, block_size=64, n_layer=4, n_head=4, n_embd=128)
    std = lambda p: float(p.detach().numpy().std())  # noqa: E731
    assert abs(std(model.transformer.wte.weight) - 0.02) < 0.002
    assert abs(std(model.transformer.h[0].mlp.c_fc.weight) - 0.02) < 0.001
    assert abs(std(model.transformer.h[0].attn.c_proj.weight) - 0.02 / 8**0.5) < 0.001


def test_transformer_errors():
    model = tiny_transformer()
    with pytest.raises(ValueError, match="block size is only 8"):
        model(mg.randint(7, size=(1, 9)))
    with pytest.raises(ValueError, match=r"\(B, T\) integer"):
        model(mg.randn(2, 3))
    with pytest.raises(ValueError, match="divisible"):
        TransformerLM(7, 8, n_head=3, n_embd=8)
    with pytest.raises(ValueError, match="cell must be"):
        CharRNN(7, cell="rnn")


@pytest.mark.parametrize("make", [tiny_transformer,
                                  lambda: CharRNN(7, hidden=8, layers=2, cell="gru")])
def test_causal_output_at_t_ignores_later_inputs(make):
    model = make().eval()
    idx = mg.randint(7, size=(2, 8))
    base = model(idx).detach().numpy()
    for t in range(7):
        changed = idx.numpy().copy()
        changed[:, t + 1:] = (changed[:, t + 1:] + 1) % 7  # every later token differs
        out = model(mg.tensor(changed)).detach().numpy()
        np.testing.assert_array_equal(out[:, : t + 1], base[:, : t + 1])
        assert not np.allclose(out[:, t + 1:], base[:, t + 1:])  # later outputs do change


def test_block_gradcheck_float64():
    block = Block(n_embd=4, n_head=2, dropout=0.0, bias=True).double()
    x = mg.randn(2, 3, 4, dtype=mg.float64, requires_grad=True)
    params = list(block.parameters())
    assert gradcheck(lambda x, *ps: block(x), [x, *params], atol=1e-6, rtol=1e-4)


def test_tiny_transformer_gradcheck_float64():
    model = TransformerLM(vocab_size=5, block_size=4, n_layer=1, n_head=2, n_embd=4).double()
    idx = mg.tensor([[0, 3, 1, 4], [2, 2, 0, 1]])
    wte = model.transformer.wte.weight  # tied: gets gradients from the input and the head
    assert gradcheck(lambda *ps: model(idx), [wte, model.transformer.wpe.weight], atol=1e-6,
                     rtol=1e-4)


def test_generate_length_determinism_and_greedy():
    model = tiny_transformer()
    prompt = mg.tensor([[1, 2], [3, 4]])
    mg.manual_seed(5)
    a = generate(model, prompt, 20)  # longer than the block size: the context is cropped
    mg.manual_seed(5)
    b = generate(model, prompt, 20)
    assert a.shape == (2, 22) and a.dtype == mg.int64
    assert a[:, :2].tolist() == [[1, 2], [3, 4]] and a.tolist() == b.tolist()
    assert 0 <= int(a.detach().numpy().min()) and int(a.detach().numpy().max()) < 7
    assert model.training  # the mode is restored
    # top_k=1 is greedy decoding
    greedy = generate(model, prompt[:1], 3, top_k=1).tolist()[0]
    seq = [1, 2]
    model.eval()
    for _ in range(3):
        seq.append(int(model(mg.tensor([seq[-8:]])).detach().numpy()[0, -1].argmax()))
    assert greedy == seq
    assert generate(model, prompt, 0).tolist() == prompt.tolist()
    with pytest.raises(ValueError, match="temperature"):
        generate(model, prompt, 3, temperature=0)
    with pytest.raises(ValueError, match="top_k"):
        generate(model, prompt, 3, top_k=0)


def test_generate_samples_the_distribution():
    # a model whose logits ignore the input: bias only, probabilities softmax(bias)
    model = CharRNN(vocab_size=3, hidden=2)
    model.head.weight.data[...] = 0
    model.head.bias.data[...] = np.log([0.2, 0.5, 0.3]).astype(np.float32)
    prompts = mg.zeros(500, 1, dtype=mg.int64)  # 500 rows x 6 draws
    ids = generate(model, prompts, 6).numpy()[:, 1:].ravel()
    freq = np.bincount(ids, minlength=3) / ids.size
    np.testing.assert_allclose(freq, [0.2, 0.5, 0.3], atol=0.03)
    ids = generate(model, prompts, 2, top_k=2).numpy()[:, 1:]
    assert set(ids.ravel().tolist()) == {1, 2}
    cold = generate(model, prompts, 2, temperature=0.1).numpy()[:, 1:]
    assert (cold == 1).mean() > 0.95


def test_config_round_trip():
    for model in (tiny_transformer(dropout=0.1), CharRNN(7, hidden=8, layers=2, cell="lstm")):
        rebuilt = lm_from_config(model.config)
        assert type(rebuilt) is type(model) and rebuilt.config == model.config
        rebuilt.load_state_dict(model.state_dict())
    with pytest.raises(ValueError, match="unknown char-LM model"):
        lm_from_config({"model": "rnn"})
    with pytest.raises(ValueError, match="bad transformer config"):
        lm_from_config({"model": "transformer", "vocab_size": 3, "block_size": 4, "depth": 2})


@pytest.mark.parametrize("make", [
    lambda v: TransformerLM(v, block_size=16, n_layer=1, n_head=2, n_embd=16),
    lambda v: CharRNN(v, hidden=32, layers=1, cell="gru"),
])
def test_tiny_model_overfits_tiny_text(make):
    text = "the cat sat on the mat. " * 4
    tok = CharTokenizer(text)
    data = tok.encode(text)
    model = make(tok.vocab_size)
    opt = optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    starts = np.arange(0, len(data) - 17, 3)
    blocks = np.stack([data[s:s + 17] for s in starts])
    x, y = mg.tensor(blocks[:, :-1]), mg.tensor(blocks[:, 1:])
    for _ in range(100):
        opt.zero_grad()
        loss = lm_loss(model, x, y)
        loss.backward()
        opt.step()
    assert loss.item() < 0.2
    # it reproduces the text from a prompt (greedy)
    out = generate(model, mg.tensor(tok.encode("the cat")[None]), 9, top_k=1)
    assert tok.decode(out[0].tolist()) == "the cat sat on t"


def test_on_device(device):
    model = tiny_transformer().to(device)
    idx = mg.randint(7, size=(2, 8), device=device)
    loss = lm_loss(model, idx, idx)
    loss.backward()
    assert model.transformer.wte.weight.grad.device == idx.device
    assert generate(model, idx[:, :2], 4).shape == (2, 6)


def _torch_nanogpt(torch, model):
    """nanoGPT's GPT forward (model.py, bias=False, flash path) in PyTorch, on `model`'s
    weights: returns ``forward(idx) -> logits`` and the dict of torch parameters."""
    tf = torch.nn.functional
    params = {k: torch.tensor(v.numpy(), dtype=torch.float64, requires_grad=True)
              for k, v in model.state_dict().items() if k != "lm_head.weight"}
    n_head = model.n_head

    def ln(x, name):
        return tf.layer_norm(x, x.shape[-1:], params[name + ".weight"], None, 1e-5)

    def forward(idx):
        B, T = idx.shape
        x = params["transformer.wte.weight"][idx] + params["transformer.wpe.weight"][:T]
        for i in range(model.n_layer):
            p = f"transformer.h.{i}."
            q, k, v = (ln(x, p + "ln_1") @ params[p + "attn.c_attn.weight"].T).split(
                x.shape[-1], dim=2)
            q, k, v = (t.view(B, T, n_head, -1).transpose(1, 2) for t in (q, k, v))
            y = tf.scaled_dot_product_attention(q, k, v, is_causal=True)
            y = y.transpose(1, 2).reshape(B, T, -1)
            x = x + y @ params[p + "attn.c_proj.weight"].T
            h = tf.gelu(ln(x, p + "ln_2") @ params[p + "mlp.c_fc.weight"].T)
            x = x + h @ params[p + "mlp.c_proj.weight"].T
        return ln(x, "transformer.ln_f") @ params["transformer.wte.weight"].T  # tied head

    return forward, params


def test_transformer_matches_nanogpt_in_pytorch():
    torch = pytest.importorskip("torch")
    model = TransformerLM(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=8).double()
    idx = mg.randint(11, size=(3, 8))
    targets = mg.randint(11, size=(3, 8))
    loss = lm_loss(model, idx, targets)
    loss.backward()
    forward, params = _torch_nanogpt(torch, model)
    t_idx = torch.tensor(idx.numpy())
    t_logits = forward(t_idx)
    np.testing.assert_allclose(model(idx).detach().numpy(), t_logits.detach().numpy(),
                               rtol=1e-10, atol=1e-12)
    t_loss = torch.nn.functional.cross_entropy(t_logits.reshape(-1, 11),
                                               torch.tensor(targets.numpy()).reshape(-1))
    t_loss.backward()
    assert abs(loss.item() - t_loss.item()) < 1e-12
    own = dict(model.named_parameters())
    for name, p in params.items():
        np.testing.assert_allclose(own[name].grad.numpy(), p.grad.numpy(), rtol=1e-8,
                                   atol=1e-12, err_msg=name)


def test_training_steps_match_nanogpt_in_pytorch():
    """train-lm's optimizer, schedule and clipping take PyTorch's (nanoGPT's) steps, to 1e-12."""
    torch = pytest.importorskip("torch")
    model = TransformerLM(vocab_size=9, block_size=8, n_layer=2, n_head=2, n_embd=8).double()
    opts = dict(charlm_train.DEFAULTS, lr=1e-2, min_lr=1e-3, iters=12, warmup=3)
    optimizer, scheduler = charlm_train.build_optimizer(model, opts)
    forward, params = _torch_nanogpt(torch, model)
    t_params = list(params.values())
    t_opt = torch.optim.AdamW(
        [{"params": [p for p in t_params if p.dim() >= 2], "weight_decay": 0.1},
         {"params": [p for p in t_params if p.dim() < 2], "weight_decay": 0.0}],
        lr=1e-2, betas=(0.9, 0.99))

    def nanogpt_lr(it, lr=1e-2, warmup=3, decay_iters=12, min_lr=1e-3):  # nanoGPT's get_lr
        if it < warmup:
            return lr * (it + 1) / (warmup + 1)
        ratio = (it - warmup) / (decay_iters - warmup)
        return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (lr - min_lr)

    rng = np.random.default_rng(0)
    for it in range(12):
        x, y = rng.integers(0, 9, (4, 8)), rng.integers(0, 9, (4, 8))
        optimizer.zero_grad()
        loss = lm_loss(model, mg.tensor(x), mg.tensor(y))
        loss.backward()
        clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        for group in t_opt.param_groups:
            group["lr"] = nanogpt_lr(it)
        t_loss = torch.nn.functional.cross_entropy(forward(torch.tensor(x)).reshape(-1, 9),
                                                   torch.tensor(y).reshape(-1))
        t_opt.zero_grad()
        t_loss.backward()
        torch.nn.utils.clip_grad_norm_(t_params, 1.0)
        t_opt.step()
        assert abs(loss.item() - t_loss.item()) < 1e-12
    own = dict(model.named_parameters())
    for name, p in params.items():
        np.testing.assert_allclose(own[name].detach().numpy(), p.detach().numpy(), rtol=0,
                                   atol=1e-12, err_msg=name)
