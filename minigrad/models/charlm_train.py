"""Training a character-level language model as nanoGPT's ``train.py`` does (``minigrad train-lm``).

The text's first 90% trains, the last 10% validates. Each step draws `batch_size` random
contiguous blocks of `block_size` + 1 characters (from minigrad's random generator) and takes one
AdamW step (betas (0.9, beta2), weight decay on matrices only) with a linear warm-up then cosine
decay of the learning rate, and gradient clipping. Every `eval_interval` steps the train and
validation losses are estimated on `eval_iters` batches each; every `checkpoint_every` steps a
checkpoint is written (model, optimizer, scheduler, step, random state, tokenizer and run
options: `minigrad.finetune.save_checkpoint`). A run resumed from its latest checkpoint
reproduces the uninterrupted run's losses (bitwise on the CPU).

The steps go through `minigrad.train.fit`, the one training loop, as one epoch of random batches
with three hooks: `GradientClipping`, a per-step `LRSchedulerCallback`, and `RunMonitor` (the
log, a progress bar per evaluation interval, checkpoints and loss estimates).

An output folder receives ``ckpt-NNNNNN.safetensors`` checkpoints, ``log.jsonl`` (one JSON object
per training step and per evaluation) and ``summary.json``.

Example:
    >>> import math
    >>> import numpy as np
    >>> import minigrad as mg
    >>> mg.manual_seed(0)
    >>> data = np.arange(100) % 7                        # token ids of a "text"
    >>> x, y = get_batch(data, block_size=8, batch_size=4, device="cpu")
    >>> x.shape, bool((x.numpy()[:, 1:] == y.numpy()[:, :-1]).all())  # y is x shifted by one
    ((4, 8), True)
    >>> model = build_model(dict(DEFAULTS, model="gru", hidden=16, layers=1), vocab_size=7)
    >>> abs(lm_loss(model, x, y).item() - math.log(7)) < 0.5  # untrained: about uniform
    True
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from minigrad import backend, optim
from minigrad.autograd import no_grad
from minigrad.data.datasets import CharTokenizer, DatasetError, text
from minigrad.finetune.checkpoint import (
    CheckpointError,
    load_checkpoint,
    read_checkpoint_info,
    save_checkpoint,
)
from minigrad.models.charlm import CharRNN, TransformerLM, generate, lm_from_config
from minigrad.nn import functional as F
from minigrad.nn.module import Module
from minigrad.optim import lr_scheduler
from minigrad.tensor import Tensor, randint, tensor
from minigrad.train import Callback, GradientClipping, LRSchedulerCallback, fit
from minigrad.utils.progress import Progbar

__all__ = [
    "DEFAULTS",
    "RUN_OPTIONS",
    "CharLMError",
    "CharLMRun",
    "OptionsError",
    "RandomBlocks",
    "RunMonitor",
    "TrainingLog",
    "build_model",
    "build_optimizer",
    "check_options",
    "checkpoint_path",
    "default_start",
    "estimate_loss",
    "format_seconds",
    "get_batch",
    "list_checkpoints",
    "lm_loss",
    "load_lm",
    "load_text",
    "next_token_loss",
    "read_lm_checkpoint",
    "resolve_options",
    "sample_text",
]

CHECKPOINT_KIND = "minigrad.charlm"
CHECKPOINT_RE = re.compile(r"^ckpt-(\d+)\.safetensors$")

# The default options of a run (nanoGPT's tiny-Shakespeare character config, on a CPU).
DEFAULTS: dict[str, Any] = {
    "model": None, "block_size": 64, "batch_size": 12, "iters": 2000, "lr": 1e-3,
    "min_lr": None, "warmup": 100, "weight_decay": 0.1, "beta2": 0.99, "grad_clip": 1.0,
    "n_layer": 4, "n_head": 4, "n_embd": 128, "hidden": 256, "layers": 2, "dropout": 0.0,
    "eval_interval": 200, "eval_iters": 20, "seed": 1337,
    "checkpoint_every": None, "keep_checkpoints": 3, "stop_at": None, "device": "cpu",
    "sample_chars": 300, "out": "minigrad-lm", "encoding": "utf-8",
}
# The warm-up left to its default is this share of --iters, capped at DEFAULTS["warmup"]
# (100 steps of the default 2000), so a short run of any length keeps a valid schedule.
WARMUP_SHARE = 20
# The options that define a run (its data, model, schedule and random draws): a resumed run
# takes them from its checkpoint and refuses different values.
RUN_OPTIONS = ("text", "encoding", "model", "block_size", "batch_size", "iters", "lr", "min_lr",
               "warmup", "weight_decay", "beta2", "grad_clip", "n_layer", "n_head", "n_embd",
               "hidden", "layers", "dropout", "eval_interval", "eval_iters", "seed")


class CharLMError(Exception):
    """A problem with a char-LM run, its text or its checkpoint that the user can fix."""


class OptionsError(CharLMError):
    """Options that are invalid, or that clash with the run being resumed."""


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


# ------------------------------------------------------------------------------------------
# options
# ------------------------------------------------------------------------------------------


def resolve_options(given: dict, resume: bool = False) -> tuple[dict, dict | None]:
    """The options of a run, and the checkpoint it continues when `resume` is set.

    Args:
        given: the options the user set (those left out are absent or None); keys as in
            `DEFAULTS`, plus ``"text"``.
        resume: continue the latest checkpoint in ``given["out"]``: its run options are
            reused, and `given` may not contradict them.

    Returns:
        ``(options, checkpoint)``: every option (defaults filled in, ``min_lr`` and
        ``checkpoint_every`` derived), and the checkpoint's `read_lm_checkpoint` dict (None
        for a new run).

    Raises:
        OptionsError: missing, invalid or clashing options, or an output folder that holds
            another run (or, with `resume`, none).
    """
    given = {k: v for k, v in given.items() if v is not None}
    if "text" in given:  # absolute, so that a resume from another folder finds it
        given["text"] = str(Path(given["text"]).expanduser().resolve())
    out = Path(given.get("out", DEFAULTS["out"]))
    existing = list_checkpoints(out)
    checkpoint = None
    if resume:
        if not existing:
            raise OptionsError(
                f"--resume: no checkpoint (ckpt-*.safetensors) in {out} to continue")
        checkpoint = read_lm_checkpoint(existing[-1][1])
        saved = checkpoint["args"]
        # NOTE: an option a checkpoint predates (e.g. encoding) had its default value
        clashes = [f"{_flag(k)} {given[k]} (the run has {saved.get(k, DEFAULTS.get(k))})"
                   for k in RUN_OPTIONS
                   if k in given and given[k] != saved.get(k, DEFAULTS.get(k))]
        if clashes:
            raise OptionsError("--resume continues the run saved in " + str(out) + ", which "
                               "was started with other options: " + "; ".join(clashes)
                               + ". Leave them out, or start a new run in another --out")
        options = dict(DEFAULTS)
        options.update({k: saved[k] for k in RUN_OPTIONS if k in saved})
        options.update({k: v for k, v in given.items() if k not in RUN_OPTIONS})
    else:
        if existing:
            raise OptionsError(f"{out} already holds checkpoints of a run (latest step "
                               f"{existing[-1][0]}); pass --resume to continue it, or choose "
                               "another --out")
        missing = [_flag(k) for k in ("text", "model") if k not in given]
        if missing:
            raise OptionsError(f"{' and '.join(missing)} required (unless --resume)")
        options = dict(DEFAULTS)
        options.update(given)
        if "warmup" not in given:
            options["warmup"] = default_warmup(options["iters"])
    options["text"] = str(options["text"])
    if options["min_lr"] is None:
        options["min_lr"] = options["lr"] / 10
    if options["checkpoint_every"] is None:
        options["checkpoint_every"] = options["eval_interval"]
    check_options(options)
    return options, checkpoint


def default_warmup(iters: int) -> int:
    """The warm-up steps of a run of `iters` steps when ``--warmup`` is left out: 100 for the
    default 2000 steps and longer runs, proportionally fewer for shorter ones (0 for
    ``iters < 20``).

    Example:
        >>> default_warmup(2000), default_warmup(100), default_warmup(1)
        (100, 5, 0)
    """
    return min(DEFAULTS["warmup"], max(int(iters), 0) // WARMUP_SHARE)


def check_options(o: dict) -> None:
    """Raises `OptionsError` on an option out of its range."""
    positive = ["block_size", "batch_size", "iters", "eval_interval", "eval_iters",
                "checkpoint_every"]
    if o["model"] == "transformer":
        positive += ["n_layer", "n_head", "n_embd"]
    else:
        positive += ["hidden", "layers"]
    for name in positive:
        if o[name] < 1:
            raise OptionsError(f"{_flag(name)} must be a positive integer, got {o[name]}")
    if o["model"] == "transformer" and o["n_embd"] % o["n_head"]:
        raise OptionsError(f"--n-embd ({o['n_embd']}) must be divisible by --n-head "
                           f"({o['n_head']})")
    if not 0 <= o["warmup"] < o["iters"]:
        raise OptionsError(f"--warmup must be in [0, --iters), got {o['warmup']}")
    if not 0.0 <= o["dropout"] < 1.0:
        raise OptionsError(f"--dropout must be in [0, 1), got {o['dropout']}")
    if not o["lr"] > 0 or not 0 <= o["min_lr"] <= o["lr"]:
        raise OptionsError(f"need 0 < --lr and 0 <= --min-lr <= --lr; got lr {o['lr']}, "
                           f"min-lr {o['min_lr']}")
    if o["keep_checkpoints"] < 0:
        raise OptionsError(f"--keep-checkpoints must be >= 0, got {o['keep_checkpoints']}")
    if o["stop_at"] is not None and not 0 < o["stop_at"] <= o["iters"]:
        raise OptionsError(f"--stop-at must be in 1..--iters ({o['iters']}), got "
                           f"{o['stop_at']}")


# ------------------------------------------------------------------------------------------
# data, loss and evaluation
# ------------------------------------------------------------------------------------------


def load_text(o: dict, checkpoint: dict | None) -> tuple:
    """The text as token ids split 90/10, its tokenizer and its sha256.

    A resumed run (`checkpoint` given) keeps the checkpoint's tokenizer and needs the same
    text. Raises `CharLMError` when the text is missing, changed, or too short for the block
    size.
    """
    try:
        corpus = text(o["text"], encoding=o.get("encoding", "utf-8"))
    except LookupError as exc:  # an unknown codec name
        raise CharLMError(f"--encoding: {exc}") from None
    except DatasetError as exc:  # bytes not valid in the encoding
        raise CharLMError(f"{exc} (the option --encoding)") from None
    except FileNotFoundError as exc:
        raise CharLMError(str(exc)) from None
    digest = hashlib.sha256(corpus.encode("utf-8", "surrogatepass")).hexdigest()
    if checkpoint is not None and checkpoint.get("text_sha256") != digest:
        raise CharLMError(f"{o['text']} changed since the run in {o['out']} started (its "
                          "sha256 differs); resume needs the same text")
    if checkpoint is not None:
        tokenizer = CharTokenizer.from_dict(checkpoint["tokenizer"])
    else:
        tokenizer = CharTokenizer(corpus)
    data = tokenizer.encode(corpus)
    n = int(0.9 * len(data))
    train, val = data[:n], data[n:]
    need = o["block_size"] + 1
    if len(val) < need:
        raise CharLMError(
            f"{o['text']} is too short for --block-size {o['block_size']}: it has "
            f"{len(data):,} characters, so the validation split (the last 10%) has "
            f"{len(val):,}; each split needs at least block size + 1 = {need:,} (a text of at "
            f"least {need * 10:,} characters, or a smaller --block-size)")
    return train, val, tokenizer, digest


def get_batch(data: np.ndarray, block_size: int, batch_size: int, device) -> tuple:
    """`batch_size` random blocks of `data`: inputs ``x`` and targets ``y`` (x shifted by one).

    The start positions come from minigrad's CPU generator (``mg.manual_seed``).

    Returns:
        ``(x, y)``, int64 tensors of shape ``(batch_size, block_size)`` on `device`.
    """
    starts = randint(len(data) - block_size, size=(batch_size,), device="cpu").numpy()
    blocks = data[starts[:, None] + np.arange(block_size + 1)]  # (B, T + 1)
    x = tensor(blocks[:, :-1], device=device)
    y = tensor(blocks[:, 1:], device=device)
    return x, y


class RandomBlocks:
    """`steps` batches of `get_batch`, each drawn when the loop asks for it.

    Drawn lazily, so whatever else uses the random generator between two steps (dropout, a
    loss estimate) does so in the same order as in nanoGPT's loop.
    """

    def __init__(self, data: np.ndarray, block_size: int, batch_size: int, device,
                 steps: int) -> None:
        self.data, self.block_size, self.batch_size = data, block_size, batch_size
        self.device, self.steps = device, steps

    def __len__(self) -> int:
        return self.steps

    def __iter__(self):
        for _ in range(self.steps):
            yield get_batch(self.data, self.block_size, self.batch_size, self.device)


def next_token_loss(logits: Tensor, y: Tensor) -> Tensor:
    """Mean cross-entropy of next-character logits ``(B, T, V)`` against targets ``(B, T)``."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def lm_loss(model: Module, x: Tensor, y: Tensor) -> Tensor:
    """Mean cross-entropy of the next-character logits ``model(x)`` against ``y``."""
    return next_token_loss(model(x), y)


def estimate_loss(model: Module, splits: dict, o: dict, device) -> dict:
    """Mean loss over `eval_iters` random batches of each split, in eval mode, no gradients."""
    model.eval()
    out = {}
    with no_grad():
        for name, data in splits.items():
            losses = [lm_loss(model, *get_batch(data, o["block_size"], o["batch_size"],
                                                device)).item()
                      for _ in range(o["eval_iters"])]
            out[name] = float(np.mean(losses))
    model.train()
    return out


# ------------------------------------------------------------------------------------------
# model and optimizer
# ------------------------------------------------------------------------------------------


def build_model(o: dict, vocab_size: int) -> Module:
    """The model the options describe (a `CharRNN` or a `TransformerLM`)."""
    if o["model"] == "transformer":
        return TransformerLM(vocab_size, o["block_size"], n_layer=o["n_layer"],
                             n_head=o["n_head"], n_embd=o["n_embd"], dropout=o["dropout"])
    return CharRNN(vocab_size, hidden=o["hidden"], layers=o["layers"], cell=o["model"],
                   dropout=o["dropout"])


def build_optimizer(model: Module, o: dict) -> tuple:
    """AdamW with nanoGPT's groups (weight decay on matrices only) and warm-up + cosine decay.

    The schedule is nanoGPT's: ``lr * (t + 1) / (warmup + 1)`` for the first `warmup` steps
    (`LinearLR`), then half a cosine from `lr` down to `min_lr` at step `iters`
    (`CosineAnnealingLR`).

    Returns:
        ``(optimizer, scheduler)``; the scheduler is stepped once per step.
    """
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


# ------------------------------------------------------------------------------------------
# checkpoints
# ------------------------------------------------------------------------------------------


def list_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of the ``ckpt-NNNNNN.safetensors`` files in `folder`, by step."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = CHECKPOINT_RE.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def checkpoint_path(folder: Path, step: int) -> Path:
    """The checkpoint file of step `step` in `folder`."""
    return Path(folder) / f"ckpt-{step:06d}.safetensors"


def read_lm_checkpoint(path: Path) -> dict:
    """The ``extra`` dict of a train-lm checkpoint, checked.

    Args:
        path: a checkpoint file, or a folder whose latest ``ckpt-*.safetensors`` is used.

    Returns:
        The dict the run saved: ``kind``, ``model_config``, ``tokenizer``, ``args``, ...,
        plus ``"path"`` (the file) and ``"step"``.

    Raises:
        CharLMError: no such file, or not a train-lm checkpoint.
    """
    path = Path(path)
    if path.is_dir():
        found = list_checkpoints(path)
        if not found:
            raise CharLMError(
                f"no train-lm checkpoint (ckpt-*.safetensors) in the folder {path}")
        path = found[-1][1]
    if not path.exists():
        raise CharLMError(f"checkpoint not found: {path}")
    try:
        info = read_checkpoint_info(path)
    except (CheckpointError, OSError) as exc:
        raise CharLMError(f"{path} is not a train-lm checkpoint: {exc}") from None
    extra = info.get("extra")
    if not isinstance(extra, dict) or extra.get("kind") != CHECKPOINT_KIND:
        raise CharLMError(f"{path} is a minigrad checkpoint but not a language model written "
                          "by 'minigrad train-lm' (it has no model config and tokenizer)")
    return dict(extra, path=str(path), step=info.get("step"))


def load_lm(path: Path, device) -> tuple[Module, CharTokenizer, dict]:
    """The model (on `device`) and tokenizer of a train-lm checkpoint.

    Args:
        path: a checkpoint file, or a train-lm output folder (its latest checkpoint).
        device: where the model goes.

    Returns:
        ``(model, tokenizer, info)``, `info` as `read_lm_checkpoint` gives it.
    """
    info = read_lm_checkpoint(path)
    try:
        tokenizer = CharTokenizer.from_dict(info["tokenizer"])
        model = lm_from_config(info["model_config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CharLMError(f"{info['path']}: damaged train-lm checkpoint ({exc})") from None
    load_checkpoint(info["path"], model=model, restore_rng=False)
    return model.to(device), tokenizer, info


def default_start(tokenizer: CharTokenizer) -> str:
    """The prompt of a sample when none is given: a newline, or the vocabulary's first
    character."""
    return "\n" if "\n" in tokenizer.stoi else tokenizer.itos[0]


def sample_text(model: Module, tokenizer: CharTokenizer, chars: int, start: str | None = None,
                temperature: float = 1.0, top_k: int | None = None, device=None) -> str:
    """`start` (default `default_start`) followed by `chars` sampled characters.

    Raises:
        ValueError: `start` holds a character outside the tokenizer's vocabulary.
    """
    start = default_start(tokenizer) if start is None else start
    prompt = tokenizer.encode(start)
    ids = generate(model, tensor(prompt[None, :], device=device), chars,
                   temperature=temperature, top_k=top_k)
    return tokenizer.decode(ids[0].tolist())


def format_seconds(seconds: float) -> str:
    """A duration as ``'12.3s'`` or ``'4m 05.6s'``.

    Example:
        >>> format_seconds(12.34), format_seconds(245.6)
        ('12.3s', '4m 05.6s')
    """
    minutes, secs = divmod(seconds, 60)
    return f"{int(minutes)}m {secs:04.1f}s" if minutes else f"{secs:.1f}s"


# ------------------------------------------------------------------------------------------
# a run
# ------------------------------------------------------------------------------------------


class TrainingLog:
    """``log.jsonl`` in the output folder: one JSON object per step and per evaluation.

    A resumed run (`resume_step` given) drops what the interrupted run logged after its
    checkpoint, so that the log reads as one uninterrupted run.
    """

    def __init__(self, path: Path, resume_step: int | None) -> None:
        self.path = path
        if resume_step is None:
            path.write_text("")
        else:
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
        """Append one JSON line with the given fields, flushed at once."""
        self.file.write(json.dumps(entry) + "\n")
        self.file.flush()

    def close(self) -> None:
        """Close the log file."""
        self.file.close()


class RunMonitor(Callback):
    """The bookkeeping of a `CharLMRun` around each step of the loop: the log, a progress bar
    per evaluation interval, checkpoints, and the loss estimates every `eval_interval` steps.

    The estimates come after a step's checkpoint and before the next batch is drawn, as in
    nanoGPT's loop, so the random draws (and a resumed run's losses) stay the same.
    """

    def __init__(self, run: CharLMRun, log: TrainingLog, stop: int, verbose: bool) -> None:
        super().__init__()
        self.run, self.log, self.stop, self.verbose = run, log, stop, verbose
        self.step = run.start_step  # optimizer steps done so far
        self.interval = run.options["eval_interval"]
        self.bar: Progbar | None = None
        self.bar_end = 0
        self.lr = 0.0

    def on_train_begin(self, logs: dict | None = None) -> None:
        if self.step < self.stop and self.step % self.interval == 0:
            self.run.evaluate(self.step, self.log, self.verbose)

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if self.bar is None:  # one bar per evaluation interval
            self.bar_end = min(self.stop, (self.step // self.interval + 1) * self.interval)
            self.bar = Progbar(self.bar_end - self.step, verbose=int(self.verbose),
                               stateful_metrics=["lr"])
        self.lr = self.run.optimizer.param_groups[0]["lr"]  # the rate this step uses

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.step += 1
        loss = logs["loss"].item()
        self.log.write(step=self.step, loss=loss, lr=self.lr)
        self.bar.add(1, values=[("loss", loss), ("lr", self.lr)])
        if self.step == self.bar_end:
            self.bar = None
        if self.step % self.run.options["checkpoint_every"] == 0 or self.step == self.stop:
            self.run.save_checkpoint(self.step)
        if self.step % self.interval == 0 and self.step < self.stop:
            self.run.evaluate(self.step, self.log, self.verbose)


class CharLMRun:
    """A train-lm run: the text, model, optimizer and schedule its options describe, resumed
    from its checkpoint when one is given.

    Args:
        options: every option, as `resolve_options` returns them.
        checkpoint: the checkpoint to continue (`read_lm_checkpoint`'s dict), or None.
        device: where the model trains.

    Attributes:
        model, optimizer, scheduler, tokenizer: the run's pieces.
        train_data, val_data: the token ids of the two splits.
        start_step: the optimizer steps already done (0, or the checkpoint's step).
        out: the output folder.
    """

    def __init__(self, options: dict, checkpoint: dict | None, device) -> None:
        o = self.options = options
        self.checkpoint, self.device = checkpoint, device
        self.train_data, self.val_data, self.tokenizer, digest = load_text(o, checkpoint)
        self.out = Path(o["out"])
        self.out.mkdir(parents=True, exist_ok=True)

        backend.manual_seed(o["seed"])
        self.model = build_model(o, self.tokenizer.vocab_size).to(device)
        self.optimizer, self.scheduler = build_optimizer(self.model, o)
        self.start_step, self._elapsed_before = 0, 0.0
        if checkpoint is not None:
            load_checkpoint(checkpoint["path"], model=self.model, optimizer=self.optimizer,
                            scheduler=self.scheduler)
            self.start_step = checkpoint["step"]
            self._elapsed_before = checkpoint.get("elapsed", 0.0)
        self.run_args = {k: o[k] for k in RUN_OPTIONS}
        self._extra = {"kind": CHECKPOINT_KIND, "model_config": self.model.config,
                       "tokenizer": self.tokenizer.to_dict(), "args": self.run_args,
                       "text_sha256": digest}
        self._t0 = time.perf_counter()

    @property
    def num_parameters(self) -> int:
        """The number of scalars in the model's parameters."""
        return sum(p.numel() for p in self.model.parameters())

    def elapsed(self) -> float:
        """Seconds of training so far, over every session of the run."""
        return self._elapsed_before + time.perf_counter() - self._t0

    def evaluate(self, step: int, log: TrainingLog, verbose: bool = True) -> dict:
        """Estimates the train and val losses, logs them and (verbose) prints them."""
        splits = {"train": self.train_data, "val": self.val_data}
        losses = estimate_loss(self.model, splits, self.options, self.device)
        log.write(step=step, train_loss=losses["train"], val_loss=losses["val"],
                  time=round(self.elapsed(), 3))
        if verbose:
            print(f"step {step}: train loss {losses['train']:.4f}, val loss "
                  f"{losses['val']:.4f} ({format_seconds(self.elapsed())})", flush=True)
        return losses

    def save_checkpoint(self, step: int) -> None:
        """Writes the checkpoint of step `step`, keeping only the latest `keep_checkpoints`."""
        save_checkpoint(checkpoint_path(self.out, step), model=self.model,
                        optimizer=self.optimizer, scheduler=self.scheduler, step=step,
                        extra=dict(self._extra, elapsed=self.elapsed()))
        keep = self.options["keep_checkpoints"]
        if keep:
            for _, old in list_checkpoints(self.out)[:-keep]:
                old.unlink()

    def train(self, verbose: bool = True) -> dict:
        """Trains up to ``stop_at`` (default ``iters``) steps; at ``iters``, estimates the
        final losses and writes ``summary.json``.

        Returns:
            ``{'step': the last step, 'elapsed': seconds over all sessions,
            'seconds_per_step': this session's}``, plus ``'train_loss'`` and ``'val_loss'``
            (the final estimates) when the run reached ``iters``.
        """
        o = self.options
        stop = o["stop_at"] or o["iters"]
        self._t0 = time.perf_counter()
        log = TrainingLog(self.out / "log.jsonl",
                          self.start_step if self.checkpoint is not None else None)
        callbacks = [GradientClipping(o["grad_clip"])] if o["grad_clip"] else []
        callbacks += [LRSchedulerCallback(self.scheduler, "step"),
                      RunMonitor(self, log, stop, verbose)]
        batches = RandomBlocks(self.train_data, o["block_size"], o["batch_size"], self.device,
                               steps=max(stop - self.start_step, 0))
        fit(self.model, next_token_loss, self.optimizer, batches, callbacks=callbacks,
            verbose=0)
        result = {"step": stop, "elapsed": self.elapsed()}
        if stop < o["iters"]:
            log.close()
            return result
        final = self.evaluate(o["iters"], log, verbose)
        log.close()
        seconds = self.elapsed()
        steps_here = o["iters"] - self.start_step
        result.update(elapsed=seconds, train_loss=final["train"], val_loss=final["val"],
                      seconds_per_step=(time.perf_counter() - self._t0) / max(steps_here, 1))
        summary = {"model_config": self.model.config, "args": self.run_args,
                   "iters": o["iters"], "final_train_loss": final["train"],
                   "final_val_loss": final["val"], "wall_time_s": round(seconds, 2),
                   "device": str(self.device),
                   "checkpoint": str(checkpoint_path(self.out, o["iters"]))}
        (self.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        return result
