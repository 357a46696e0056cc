"""``minigrad train-lm`` and ``minigrad sample``: character-level language models on a text file.

``train-lm`` follows nanoGPT's ``train.py`` with its tiny-Shakespeare character config: the
text's first 90% trains, the last 10% validates; each step draws `batch_size` random contiguous
blocks of `block_size` + 1 characters (from minigrad's random generator) and takes one AdamW
step (betas (0.9, 0.99), weight decay 0.1 on matrices only) with a linear warm-up then cosine
decay of the learning rate and gradient clipping at 1.0. Every `eval_interval` steps it
estimates the train and validation losses on `eval_iters` batches each; every
`checkpoint_every` steps it writes a checkpoint (model, optimizer, scheduler, step, random
state, tokenizer and run options: `minigrad.finetune.save_checkpoint`). ``--resume`` continues
the latest checkpoint in ``--out`` and reproduces the uninterrupted run's losses (bitwise on the
CPU). At the end it prints the final validation loss, the wall time and a sample.

nanoGPT's small CPU configuration (val loss about 1.88)::

    minigrad train-lm --text tinyshakespeare/input.txt --model transformer --n-layer 4 \\
        --n-head 4 --n-embd 128 --block-size 64 --batch-size 12 --iters 2000 --dropout 0

``--out`` (default ``./minigrad-lm``) receives ``ckpt-NNNNNN.safetensors`` checkpoints,
``log.jsonl`` (one JSON object per training step and per evaluation) and ``summary.json``.

``minigrad sample --checkpoint FILE_OR_DIR`` rebuilds the model from a checkpoint and prints a
sample (``--start``, ``--chars``, ``--temperature``, ``--top-k``, ``--seed``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

CHECKPOINT_KIND = "minigrad.charlm"
CHECKPOINT_RE = re.compile(r"^ckpt-(\d+)\.safetensors$")

# Defaults of train-lm's options. The parser's defaults are None, so that on --resume an option
# given on the command line can be told apart from one left out (taken from the checkpoint).
TRAIN_DEFAULTS: Dict[str, Any] = {
    "model": None, "block_size": 64, "batch_size": 12, "iters": 2000, "lr": 1e-3,
    "min_lr": None, "warmup": 100, "weight_decay": 0.1, "beta2": 0.99, "grad_clip": 1.0,
    "n_layer": 4, "n_head": 4, "n_embd": 128, "hidden": 256, "layers": 2, "dropout": 0.0,
    "eval_interval": 200, "eval_iters": 20, "seed": 1337,
    "checkpoint_every": None, "keep_checkpoints": 3, "stop_at": None, "device": "cpu",
    "sample_chars": 300, "out": "minigrad-lm",
}
# The options that define a run (its data, model, schedule and random draws): a resumed run
# takes them from its checkpoint and refuses different values.
RUN_OPTIONS = ("text", "model", "block_size", "batch_size", "iters", "lr", "min_lr", "warmup",
               "weight_decay", "beta2", "grad_clip", "n_layer", "n_head", "n_embd", "hidden",
               "layers", "dropout", "eval_interval", "eval_iters", "seed")


class CLIError(Exception):
    """A problem to report in one line, with an exit status."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


# ------------------------------------------------------------------------------------------
# argument parsing
# ------------------------------------------------------------------------------------------


def register(subparsers: Any) -> None:
    """Adds ``train-lm`` and ``sample`` to the ``minigrad`` argument parser."""
    p = subparsers.add_parser(
        "train-lm",
        help="train a character-level language model (LSTM, GRU or transformer) on a text file",
        description=(
            "Train a character-level language model on a text file, as nanoGPT's train.py "
            "does with its Shakespeare-char config: 90/10 train/val split, random blocks, AdamW, "
            "warm-up and cosine decay, gradient clipping, periodic train/val loss estimates, "
            "checkpoints (--resume continues the latest one exactly), and a sample at the end."
        ),
    )
    d = TRAIN_DEFAULTS

    def option(group, flag: str, kind=None, help: str = "", **kw) -> None:
        """An option whose help ends with its default (the parser's default stays None)."""
        name = flag[2:].replace("-", "_")
        if name in d and d[name] is not None and "default" not in help:
            help += f" (default {d[name]})"
        if kind is not None:
            kw.update(type=kind, metavar={int: "N", float: "X"}.get(kind, "VALUE"))
        group.add_argument(flag, help=help, **kw)

    g = p.add_argument_group("data and model")
    option(g, "--text", metavar="FILE",
           help="the UTF-8 text file to train on (required unless --resume)")
    option(g, "--model", choices=["lstm", "gru", "transformer"],
           help="the model (required unless --resume)")
    option(g, "--block-size", int, "context length in characters")
    option(g, "--n-layer", int, "transformer: blocks")
    option(g, "--n-head", int, "transformer: attention heads")
    option(g, "--n-embd", int, "transformer: width")
    option(g, "--hidden", int, "lstm/gru: hidden size")
    option(g, "--layers", int, "lstm/gru: stacked recurrent layers")
    option(g, "--dropout", float, "dropout probability")

    g = p.add_argument_group("optimisation")
    option(g, "--batch-size", int, "blocks per step")
    option(g, "--iters", int, "training steps")
    option(g, "--lr", float, "peak learning rate")
    option(g, "--min-lr", float, "learning rate at the end of the cosine decay (default lr / 10)")
    option(g, "--warmup", int, "linear warm-up steps")
    option(g, "--weight-decay", float, "AdamW weight decay of the weight matrices")
    option(g, "--beta2", float, "AdamW beta2")
    option(g, "--grad-clip", float, "clip the gradient norm to this; 0: off")
    option(g, "--seed", int, "random seed")

    g = p.add_argument_group("evaluation, checkpoints and output")
    option(g, "--eval-interval", int, "estimate the train and val losses every N steps")
    option(g, "--eval-iters", int, "batches per loss estimate")
    option(g, "--checkpoint-every", int,
           "write a checkpoint every N steps (default: --eval-interval); one is always "
           "written at the end")
    option(g, "--keep-checkpoints", int, "keep only the latest N checkpoints; 0 keeps all")
    option(g, "--stop-at", int, "stop after N steps with a checkpoint, without changing the "
                                "schedule of --iters steps; continue later with --resume")
    option(g, "--out", metavar="DIR", help="output folder")
    option(g, "--resume", action="store_true",
           help="continue the latest checkpoint in --out (its options are reused)")
    option(g, "--device", help="cpu, cuda or cuda:N")
    option(g, "--sample-chars", int, "characters to sample at the end; 0: none")
    p.set_defaults(func=cmd_train_lm)

    s = subparsers.add_parser(
        "sample",
        help="print text sampled from a train-lm checkpoint",
        description="Rebuild a character-level language model from a train-lm checkpoint and "
                    "print text sampled from it.",
    )
    s.add_argument("--checkpoint", required=True, metavar="PATH",
                   help="a checkpoint file, or a train-lm --out folder (its latest checkpoint)")
    s.add_argument("--start", default=None, metavar="TEXT",
                   help="the prompt (default: a newline, or the vocabulary's first character)")
    s.add_argument("--chars", type=int, default=500, metavar="N",
                   help="characters to sample (default 500)")
    s.add_argument("--temperature", type=float, default=1.0, metavar="X",
                   help="< 1: more conservative, > 1: more random (default 1.0)")
    s.add_argument("--top-k", type=int, default=None, metavar="K",
                   help="sample among the K most likely characters only")
    s.add_argument("--seed", type=int, default=1337, metavar="N",
                   help="random seed (default 1337)")
    s.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    s.set_defaults(func=cmd_sample)


def _error(command: str, exc: CLIError) -> int:
    print(f"minigrad {command}: {exc}", file=sys.stderr)
    return exc.status


# ------------------------------------------------------------------------------------------
# checkpoints
# ------------------------------------------------------------------------------------------


def list_checkpoints(folder: Path) -> List[Tuple[int, Path]]:
    """``(step, path)`` of the ``ckpt-NNNNNN.safetensors`` files in `folder`, by step."""
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = CHECKPOINT_RE.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def _checkpoint_path(folder: Path, step: int) -> Path:
    return folder / f"ckpt-{step:06d}.safetensors"


def read_lm_checkpoint(path: Path) -> dict:
    """The ``extra`` dict of a train-lm checkpoint, checked.

    Args:
        path: a checkpoint file, or a folder whose latest ``ckpt-*.safetensors`` is used.

    Returns:
        The dict train-lm saved: ``kind``, ``model_config``, ``tokenizer``, ``args``, ...,
        plus ``"path"`` (the file) and ``"step"``.

    Raises:
        CLIError: no such file, or not a train-lm checkpoint.
    """
    from minigrad.finetune import CheckpointError, read_checkpoint_info

    path = Path(path)
    if path.is_dir():
        found = list_checkpoints(path)
        if not found:
            raise CLIError(f"no train-lm checkpoint (ckpt-*.safetensors) in the folder {path}")
        path = found[-1][1]
    if not path.exists():
        raise CLIError(f"checkpoint not found: {path}")
    try:
        info = read_checkpoint_info(path)
    except (CheckpointError, OSError) as exc:
        raise CLIError(f"{path} is not a train-lm checkpoint: {exc}") from None
    extra = info.get("extra")
    if not isinstance(extra, dict) or extra.get("kind") != CHECKPOINT_KIND:
        raise CLIError(f"{path} is a minigrad checkpoint but not a language model written by "
                       "'minigrad train-lm' (it has no model config and tokenizer)")
    return dict(extra, path=str(path), step=info.get("step"))


# ------------------------------------------------------------------------------------------
# train-lm
# ------------------------------------------------------------------------------------------


def _resolve_options(args: argparse.Namespace) -> Tuple[dict, Optional[dict]]:
    """The run's options (command line, checkpoint, defaults) and the checkpoint to resume."""
    given = {k: v for k, v in vars(args).items() if v is not None and k not in ("func",)}
    if "text" in given:  # absolute, so that a resume from another folder finds it
        given["text"] = str(Path(given["text"]).expanduser().resolve())
    out = Path(given.get("out", TRAIN_DEFAULTS["out"]))
    existing = list_checkpoints(out)
    resume = None
    if args.resume:
        if not existing:
            raise CLIError(f"--resume: no checkpoint (ckpt-*.safetensors) in {out} to continue",
                           2)
        resume = read_lm_checkpoint(existing[-1][1])
        saved = resume["args"]
        clashes = [f"--{k.replace('_', '-')} {given[k]} (the run has {saved.get(k)})"
                   for k in RUN_OPTIONS if k in given and given[k] != saved.get(k)]
        if clashes:
            raise CLIError("--resume continues the run saved in " + str(out) + ", which was "
                           "started with other options: " + "; ".join(clashes)
                           + ". Leave them out, or start a new run in another --out", 2)
        opts = dict(TRAIN_DEFAULTS)
        opts.update({k: saved[k] for k in RUN_OPTIONS if k in saved})
        opts.update({k: v for k, v in given.items() if k not in RUN_OPTIONS})
    else:
        if existing:
            raise CLIError(f"{out} already holds checkpoints of a run (latest step "
                           f"{existing[-1][0]}); pass --resume to continue it, or choose "
                           "another --out", 2)
        missing = [f"--{k}" for k in ("text", "model") if k not in given]
        if missing:
            raise CLIError(f"{' and '.join(missing)} required (unless --resume)", 2)
        opts = dict(TRAIN_DEFAULTS)
        opts.update(given)
    opts.pop("resume", None)
    opts["text"] = str(opts["text"])
    if opts["min_lr"] is None:
        opts["min_lr"] = opts["lr"] / 10
    if opts["checkpoint_every"] is None:
        opts["checkpoint_every"] = opts["eval_interval"]
    _check_options(opts)
    return opts, resume


def _check_options(o: dict) -> None:
    positive = ["block_size", "batch_size", "iters", "eval_interval", "eval_iters",
                "checkpoint_every"]
    positive += ["n_layer", "n_head", "n_embd"] if o["model"] == "transformer" else ["hidden",
                                                                                      "layers"]
    for name in positive:
        if o[name] < 1:
            raise CLIError(f"--{name.replace('_', '-')} must be a positive integer, got "
                           f"{o[name]}", 2)
    if o["model"] == "transformer" and o["n_embd"] % o["n_head"]:
        raise CLIError(f"--n-embd ({o['n_embd']}) must be divisible by --n-head "
                       f"({o['n_head']})", 2)
    if not 0 <= o["warmup"] < o["iters"]:
        raise CLIError(f"--warmup must be in [0, --iters), got {o['warmup']}", 2)
    if not 0.0 <= o["dropout"] < 1.0:
        raise CLIError(f"--dropout must be in [0, 1), got {o['dropout']}", 2)
    if not o["lr"] > 0 or not 0 <= o["min_lr"] <= o["lr"]:
        raise CLIError(f"need 0 < --lr and 0 <= --min-lr <= --lr; got lr {o['lr']}, min-lr "
                       f"{o['min_lr']}", 2)
    if o["keep_checkpoints"] < 0:
        raise CLIError(f"--keep-checkpoints must be >= 0, got {o['keep_checkpoints']}", 2)
    if o["stop_at"] is not None and not 0 < o["stop_at"] <= o["iters"]:
        raise CLIError(f"--stop-at must be in 1..--iters ({o['iters']}), got {o['stop_at']}", 2)


def _load_text(o: dict, resume: Optional[dict]):
    """The text as token ids, split 90/10, and its tokenizer; checks it fits the block size."""
    from minigrad.data.datasets import CharTokenizer, DatasetError, text

    try:
        corpus = text(o["text"])
    except (FileNotFoundError, DatasetError) as exc:
        raise CLIError(str(exc)) from None
    digest = hashlib.sha256(corpus.encode("utf-8", "surrogatepass")).hexdigest()
    if resume is not None and resume.get("text_sha256") != digest:
        raise CLIError(f"{o['text']} changed since the run in {o['out']} started (its sha256 "
                       "differs); resume needs the same text")
    if resume is not None:
        tokenizer = CharTokenizer.from_dict(resume["tokenizer"])
    else:
        tokenizer = CharTokenizer(corpus)
    data = tokenizer.encode(corpus)
    n = int(0.9 * len(data))
    train, val = data[:n], data[n:]
    need = o["block_size"] + 1
    if len(val) < need:
        raise CLIError(
            f"{o['text']} is too short for --block-size {o['block_size']}: it has {len(data):,} "
            f"characters, so the validation split (the last 10%) has {len(val):,}; each split "
            f"needs at least block size + 1 = {need:,} (a text of at least {need * 10:,} "
            "characters, or a smaller --block-size)")
    return train, val, tokenizer, digest


def get_batch(data: np.ndarray, block_size: int, batch_size: int, device) -> tuple:
    """`batch_size` random blocks of `data`: inputs ``x`` and targets ``y`` (x shifted by one).

    The start positions come from minigrad's CPU generator (``mg.manual_seed``).

    Returns:
        ``(x, y)``, int64 tensors of shape ``(batch_size, block_size)`` on `device`.
    """
    import minigrad as mg

    starts = mg.randint(len(data) - block_size, size=(batch_size,), device="cpu").numpy()
    blocks = data[starts[:, None] + np.arange(block_size + 1)]  # (B, T + 1)
    x = mg.tensor(blocks[:, :-1], device=device)
    y = mg.tensor(blocks[:, 1:], device=device)
    return x, y


def lm_loss(model, x, y):
    """Mean cross-entropy of the next-character logits ``model(x)`` against ``y``."""
    from minigrad.nn import functional as F

    logits = model(x)  # (B, T, V)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def estimate_loss(model, splits: dict, o: dict, device) -> dict:
    """Mean loss over `eval_iters` random batches of each split, in eval mode, no gradients."""
    import minigrad as mg

    model.eval()
    out = {}
    with mg.no_grad():
        for name, data in splits.items():
            losses = [lm_loss(model, *get_batch(data, o["block_size"], o["batch_size"],
                                                device)).item()
                      for _ in range(o["eval_iters"])]
            out[name] = float(np.mean(losses))
    model.train()
    return out


def build_model(o: dict, vocab_size: int):
    """The model the options describe (a `CharRNN` or a `TransformerLM`)."""
    from minigrad.models.charlm import CharRNN, TransformerLM

    if o["model"] == "transformer":
        return TransformerLM(vocab_size, o["block_size"], n_layer=o["n_layer"],
                             n_head=o["n_head"], n_embd=o["n_embd"], dropout=o["dropout"])
    return CharRNN(vocab_size, hidden=o["hidden"], layers=o["layers"], cell=o["model"],
                   dropout=o["dropout"])


def build_optimizer(model, o: dict):
    """AdamW with nanoGPT's groups (weight decay on matrices only) and warm-up + cosine decay.

    The schedule is nanoGPT's: ``lr * (t + 1) / (warmup + 1)`` for the first `warmup` steps
    (`LinearLR`), then half a cosine from `lr` down to `min_lr` at step `iters`
    (`CosineAnnealingLR`).
    """
    from minigrad import optim
    from minigrad.optim import lr_scheduler

    decay = [p for p in model.parameters() if p.ndim >= 2]  # weights and embeddings
    no_decay = [p for p in model.parameters() if p.ndim < 2]  # biases and LayerNorm gains
    groups = [{"params": decay, "weight_decay": o["weight_decay"]}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    optimizer = optim.AdamW(groups, lr=o["lr"], betas=(0.9, o["beta2"]))
    cosine = lr_scheduler.CosineAnnealingLR(optimizer, T_max=o["iters"] - o["warmup"],
                                            eta_min=o["min_lr"])
    if o["warmup"] == 0:
        return optimizer, cosine
    warmup = lr_scheduler.LinearLR(optimizer, start_factor=1.0 / (o["warmup"] + 1),
                                   end_factor=1.0, total_iters=o["warmup"])
    scheduler = lr_scheduler.SequentialLR(optimizer, [warmup, cosine], milestones=[o["warmup"]])
    return optimizer, scheduler


def _start_char(tokenizer) -> str:
    return "\n" if "\n" in tokenizer.stoi else tokenizer.itos[0]


def _format_seconds(seconds: float) -> str:
    minutes, secs = divmod(seconds, 60)
    return f"{int(minutes)}m {secs:04.1f}s" if minutes else f"{secs:.1f}s"


class _Log:
    """``log.jsonl`` in the output folder: one JSON object per step and per evaluation."""

    def __init__(self, path: Path, resume_step: Optional[int]) -> None:
        self.path = path
        if resume_step is None:
            path.write_text("")
        else:  # drop what the interrupted run logged after its checkpoint
            kept = []
            if path.exists():
                for line in path.read_text().splitlines():
                    entry = json.loads(line)
                    last = resume_step if "loss" in entry else resume_step - 1
                    if entry["step"] <= last:
                        kept.append(line + "\n")
            path.write_text("".join(kept))
        self.file = path.open("a")

    def write(self, **entry: Any) -> None:
        self.file.write(json.dumps(entry) + "\n")
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def cmd_train_lm(args: argparse.Namespace) -> int:
    """``minigrad train-lm``: train a char-level LM with evaluation, checkpoints and resume."""
    try:
        return _train_lm(args)
    except CLIError as exc:
        return _error("train-lm", exc)


def _train_lm(args: argparse.Namespace) -> int:
    import minigrad as mg
    from minigrad.finetune import load_checkpoint, save_checkpoint
    from minigrad.models.charlm import describe, generate
    from minigrad.nn.utils import clip_grad_norm_
    from minigrad.utils.progress import Progbar

    o, resume = _resolve_options(args)
    try:
        device = mg.backend.get_device(o["device"])
        mg.backend.generator(device)  # fails early, with what to install, if unusable
    except (RuntimeError, ValueError) as exc:
        raise CLIError(str(exc), 2) from None
    train_data, val_data, tokenizer, digest = _load_text(o, resume)
    out = Path(o["out"])
    out.mkdir(parents=True, exist_ok=True)

    mg.manual_seed(o["seed"])
    model = build_model(o, tokenizer.vocab_size).to(device)
    optimizer, scheduler = build_optimizer(model, o)
    start_step, elapsed_before = 0, 0.0
    if resume is not None:
        load_checkpoint(resume["path"], model=model, optimizer=optimizer, scheduler=scheduler)
        start_step, elapsed_before = resume["step"], resume.get("elapsed", 0.0)
    run_args = {k: o[k] for k in RUN_OPTIONS}
    extra = {"kind": CHECKPOINT_KIND, "model_config": model.config,
             "tokenizer": tokenizer.to_dict(), "args": run_args, "text_sha256": digest}

    n_params = sum(p.numel() for p in model.parameters())
    count = f"{n_params / 1e6:.2f}M" if n_params >= 100_000 else f"{n_params:,}"
    print(f"minigrad train-lm: {describe(model.config)}, {count} parameters, "
          f"vocabulary {tokenizer.vocab_size}, {len(train_data):,} train / {len(val_data):,} val "
          f"characters, device {device}")
    print(f"batch {o['batch_size']} x block {o['block_size']}, {o['iters']} steps, AdamW lr "
          f"{o['lr']:g} -> {o['min_lr']:g} (warm-up {o['warmup']}, cosine), output {out}")
    if resume is not None:
        print(f"resuming from {resume['path']} at step {start_step}")

    splits = {"train": train_data, "val": val_data}
    log = _Log(out / "log.jsonl", start_step if resume is not None else None)
    stop = o["stop_at"] or o["iters"]
    t0 = time.perf_counter()

    def elapsed() -> float:
        return elapsed_before + time.perf_counter() - t0

    def evaluate(step: int) -> dict:
        losses = estimate_loss(model, splits, o, device)
        log.write(step=step, train_loss=losses["train"], val_loss=losses["val"],
                  time=round(elapsed(), 3))
        print(f"step {step}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f} "
              f"({_format_seconds(elapsed())})", flush=True)
        return losses

    def checkpoint(step: int) -> None:
        save_checkpoint(_checkpoint_path(out, step), model=model, optimizer=optimizer,
                        scheduler=scheduler, step=step, extra=dict(extra, elapsed=elapsed()))
        if o["keep_checkpoints"]:
            for _, old in list_checkpoints(out)[:-o["keep_checkpoints"]]:
                old.unlink()

    bar = None
    model.train()
    for step in range(start_step, stop):  # `step` updates are done so far
        if step % o["eval_interval"] == 0:
            evaluate(step)
        if bar is None:  # one bar per evaluation interval
            bar_end = min(stop, (step // o["eval_interval"] + 1) * o["eval_interval"])
            bar = Progbar(bar_end - step, stateful_metrics=["lr"])

        x, y = get_batch(train_data, o["block_size"], o["batch_size"], device)
        optimizer.zero_grad()
        loss = lm_loss(model, x, y)
        loss.backward()
        if o["grad_clip"]:
            clip_grad_norm_(model.parameters(), o["grad_clip"])
        lr = optimizer.param_groups[0]["lr"]
        optimizer.step()
        scheduler.step()

        loss_value = loss.item()
        log.write(step=step + 1, loss=loss_value, lr=lr)
        bar.add(1, values=[("loss", loss_value), ("lr", lr)])
        if step + 1 == bar_end:
            bar = None
        if (step + 1) % o["checkpoint_every"] == 0 or step + 1 == stop:
            checkpoint(step + 1)

    if stop < o["iters"]:
        log.close()
        print(f"stopped at step {stop} of {o['iters']} ({_format_seconds(elapsed())}); continue "
              f"with: minigrad train-lm --out {out} --resume")
        return 0
    final = evaluate(o["iters"])
    log.close()
    seconds = elapsed()
    steps_here = o["iters"] - start_step
    print(f"final val loss {final['val']:.4f} (train {final['train']:.4f}) after {o['iters']} "
          f"steps; wall time {_format_seconds(seconds)}"
          + (f" ({(time.perf_counter() - t0) / max(steps_here, 1):.3f} s/step this run)"))
    summary = {"model_config": model.config, "args": run_args, "iters": o["iters"],
               "final_train_loss": final["train"], "final_val_loss": final["val"],
               "wall_time_s": round(seconds, 2), "device": str(device),
               "checkpoint": str(_checkpoint_path(out, o["iters"]))}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if o["sample_chars"] > 0:
        start = mg.tensor(tokenizer.encode(_start_char(tokenizer))[None, :], device=device)
        ids = generate(model, start, o["sample_chars"])[0].tolist()
        print(f"--- sample ({o['sample_chars']} characters) ---")
        print(tokenizer.decode(ids[1:]))
    return 0


# ------------------------------------------------------------------------------------------
# sample
# ------------------------------------------------------------------------------------------


def cmd_sample(args: argparse.Namespace) -> int:
    """``minigrad sample``: print text sampled from a train-lm checkpoint."""
    try:
        return _sample(args)
    except CLIError as exc:
        return _error("sample", exc)


def _sample(args: argparse.Namespace) -> int:
    import minigrad as mg
    from minigrad.data.datasets import CharTokenizer
    from minigrad.finetune import load_checkpoint
    from minigrad.models.charlm import generate, lm_from_config

    if args.chars < 0:
        raise CLIError(f"--chars must be >= 0, got {args.chars}", 2)
    if not args.temperature > 0:
        raise CLIError(f"--temperature must be > 0, got {args.temperature}", 2)
    if args.top_k is not None and args.top_k < 1:
        raise CLIError(f"--top-k must be a positive integer, got {args.top_k}", 2)
    try:
        device = mg.backend.get_device(args.device)
        mg.backend.generator(device)
    except (RuntimeError, ValueError) as exc:
        raise CLIError(str(exc), 2) from None
    info = read_lm_checkpoint(Path(args.checkpoint))
    try:
        tokenizer = CharTokenizer.from_dict(info["tokenizer"])
        model = lm_from_config(info["model_config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CLIError(f"{info['path']}: damaged train-lm checkpoint ({exc})") from None
    load_checkpoint(info["path"], model=model, restore_rng=False)
    model.to(device)
    start = _start_char(tokenizer) if args.start is None else args.start
    if not start:
        raise CLIError("--start must not be empty", 2)
    try:
        prompt = tokenizer.encode(start)
    except ValueError as exc:
        raise CLIError(f"--start: {exc}".replace("; fit the tokenizer on a text that has it",
                                                  f"; the model knows only: "
                                                  f"{''.join(tokenizer.itos)!r}"), 2) from None
    mg.manual_seed(args.seed)
    ids = generate(model, mg.tensor(prompt[None, :], device=device), args.chars,
                   temperature=args.temperature, top_k=args.top_k)
    text = tokenizer.decode(ids[0].tolist())
    print(text if args.start is not None else text[len(start):])
    return 0
