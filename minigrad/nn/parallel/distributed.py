"""`DistributedDataParallel`: one model per process, gradients averaged by all-reduce.

Every rank holds the whole model and trains on its own shard of each batch. At wrap time rank
0's parameters and buffers are broadcast, so every rank starts from the same weights. In each
backward pass the gradients are averaged over the ranks before the optimizer sees them, so
every rank takes the same step and the replicas stay equal, bit for bit.

How the averaging overlaps the backward pass (PyTorch's design, on MPI or NCCL):

1. The trainable parameters, in reverse order (roughly the order backward reaches them), are
   laid end to end in one flat buffer per device and dtype, cut into buckets of
   ``bucket_cap_mb`` (a parameter may straddle two buckets). A step needs
   ``ceil(bytes / bucket)`` all-reduce calls.
2. ``forward`` arms the buckets. When the backward pass has finished a parameter's gradient
   (a post-accumulate-grad hook), the gradient is written into its place in the buffer already
   divided by the world size (one pass: the copy is the division, as in PyTorch's reducer); a
   bucket whose parameters are all in starts its all-reduce at once (on MPI a persistent
   all-reduce set up at wrap time, ``MPI_Allreduce_init``, where the MPI library has them,
   else ``Iallreduce``; NCCL on a side stream) while backward goes on with the layers below.
   Buckets start in one fixed order on every rank, as MPI and NCCL need. On Open MPI a bucket
   is summed by a blocking ``MPI_Allreduce`` when it is complete instead (the backward pass
   waits for it): Open MPI's non-blocking and persistent collectives run 2-4x slower than
   its blocking ones (`ProcessGroup.prefers_blocking`; ``MINIGRAD_MPI_BLOCKING=1`` or ``0``
   chooses).
3. When the backward pass ends (a callback the engine runs after it), the buckets not yet
   started are started, all are waited for, and each ``.grad`` receives its averaged slice. The
   optimizer and gradient clipping, which come later, see averaged gradients.

With ``gradient_as_bucket_view=True`` (PyTorch's option, off by default as there) ``.grad`` is
a view of its slice of the bucket instead of a tensor of its own: the copy back after the
all-reduce disappears, and so does the copy in when ``.grad`` is kept between steps
(``optimizer.zero_grad(set_to_none=False)``: the engine then accumulates into the bucket
itself, and the hook only scales it in place). Nothing is allocated per step but what the
backward pass itself computes.

A parameter that gets no gradient in a step on some rank (a branch not taken) counts as a zero
gradient there; one that gets none on any rank keeps ``.grad`` None everywhere, as it would in
one process. A count of the ranks that had a gradient for each parameter travels in the last
bucket, so this costs no extra call. Frozen parameters (``requires_grad=False``) have no place
in the buckets; freezing or unfreezing between steps rebuilds the buckets. Every rank must make
the same change: different changes are an error naming the parameter; a change made on some
ranks only leaves the others in a different collective, which ends in the timeout's abort.

Mixed precision: a gradient scaler's "found inf" flag is the same on every rank, since it is
computed from the averaged gradients (an inf on one rank is an inf in the sum); a scaler that
checks gradients before they are averaged must combine its flag with
``dist.all_reduce(flag, dist.ReduceOp.MAX)`` so that every rank skips the same steps.
"""

from __future__ import annotations

import contextlib
import math
import weakref
import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from minigrad import backend
from minigrad.autograd import is_grad_enabled, queue_callback
from minigrad.distributed.group import ProcessGroup, Work, world
from minigrad.nn.module import Module
from minigrad.tensor import Tensor

__all__ = ["DistributedDataParallel"]


_DONE = Work()  # the finished work of a blocking all-reduce


class _Slot:
    """One parameter's place in its group's flat buffer."""

    __slots__ = ("param", "name", "group", "offset", "size", "chunks", "ready", "shaped",
                 "tensor")

    def __init__(self, param: Tensor, name: str, group: "_Group", offset: int) -> None:
        self.param, self.name, self.group, self.offset = param, name, group, offset
        self.size = int(param.data.size)
        self.chunks: list = []
        self.ready = False
        self.shaped = None  # its slice of the bucket, in the parameter's shape (at allocate)
        self.tensor = None  # `shaped` as the .grad of gradient_as_bucket_view

    def view(self) -> Any:
        return self.group.flat[self.offset : self.offset + self.size]


class _Chunk:
    """One all-reduce call: a contiguous range of a group's flat buffer."""

    __slots__ = ("group", "start", "stop", "slots", "pending", "work", "last", "persistent",
                 "blocking")

    def __init__(self, group: "_Group", start: int, stop: int) -> None:
        self.group, self.start, self.stop = group, start, stop
        self.slots: list = []
        self.pending = 0
        self.work: Work | None = None
        self.persistent = None  # its all-reduce set up once (MPI on host arrays), or None
        self.blocking = False  # summed by a blocking call when complete (Open MPI)
        self.last = False  # carries the group's "had a gradient" counts after its gradients


class _Group:
    """The trainable parameters of one device and dtype, end to end in one flat buffer, with
    one count per parameter after them."""

    def __init__(self, device: backend.Device, dtype: np.dtype) -> None:
        self.device, self.dtype = device, dtype
        self.slots: list = []
        self.numel = 0
        self.flat = None
        self.n_ready = 0  # slots with a gradient in this step

    def allocate(self) -> None:
        xp = backend.xp_for(self.device)
        self.flat = xp.zeros(self.numel + len(self.slots), dtype=self.dtype)
        for slot in self.slots:
            slot.shaped = slot.view().reshape(slot.param.data.shape)
            slot.tensor = Tensor._make(slot.shaped)

    def counts(self) -> Any:
        return self.flat[self.numel :]


class DistributedDataParallel(Module):
    """Data-parallel training: wraps `module` so that its gradients are averaged over all
    ranks during the backward pass (PyTorch's ``torch.nn.parallel.DistributedDataParallel``).

    Call `minigrad.distributed.init_process_group` first. Use the wrapper as the model (its
    ``forward`` is the module's) and build the optimizer on ``ddp.parameters()`` (the same
    Parameter objects as the module's).

    Args:
        module: the model, the same on every rank (parameter names, shapes and dtypes are
            checked).
        device_ids: accepted for PyTorch's signature; the device is the parameters'.
        output_device: accepted for PyTorch's signature.
        broadcast_buffers: copy rank 0's buffers (BatchNorm's running statistics) to every
            rank before each training forward, as PyTorch does (one call per step, only when
            the module has buffers).
        process_group: the group (default: the default group).
        bucket_cap_mb: the size of a gradient bucket, in MiB.
        find_unused_parameters: accepted for PyTorch's signature; unused parameters are always
            handled (see the module docstring).
        gradient_as_bucket_view: make each ``.grad`` a view of its slice of the gradient
            bucket (no copy back after the all-reduce, no gradient memory of its own). The
            gradients are then overwritten by the next synchronised backward pass, as in
            PyTorch.

    Attributes:
        module: the wrapped model (``ddp.module.state_dict()`` has no prefix; so has
            ``ddp.state_dict()``, so that checkpoints load with or without the wrapper).

    Example:
        >>> import minigrad as mg
        >>> import minigrad.distributed as dist
        >>> from minigrad import nn
        >>> dist.init_process_group()                      # alone here: a world of one
        >>> model = DistributedDataParallel(nn.Linear(3, 1))
        >>> model(mg.ones(2, 3)).sum().backward()          # gradients averaged over ranks
        >>> model.module.weight.grad.shape
        (1, 3)
        >>> sorted(model.state_dict())
        ['bias', 'weight']
        >>> dist.destroy_process_group()
    """

    def __init__(self, module: Module, device_ids: Any = None, output_device: Any = None,
                 broadcast_buffers: bool = True, process_group: ProcessGroup | None = None,
                 bucket_cap_mb: float = 25, find_unused_parameters: bool = False,
                 gradient_as_bucket_view: bool = False) -> None:
        super().__init__()
        pg = process_group if process_group is not None else world()
        if pg is None:
            raise RuntimeError(
                "DistributedDataParallel needs a process group: call "
                "minigrad.distributed.init_process_group() first")
        if bucket_cap_mb <= 0:
            raise ValueError(f"bucket_cap_mb must be positive, got {bucket_cap_mb}")
        self.module = module
        self._pg = pg
        self.broadcast_buffers = bool(broadcast_buffers)
        self.bucket_bytes = int(bucket_cap_mb * 1024 * 1024)
        self.require_backward_grad_sync = True
        self.find_unused_parameters = bool(find_unused_parameters)
        self.gradient_as_bucket_view = bool(gradient_as_bucket_view)
        self._scale = 1.0 / pg.size  # the averaging, folded into the copy into the bucket
        self._groups = []
        self._chunks = []
        self._slot_of = {}
        self._hook_handles = {}
        self._layout = None
        self._armed = False
        self._queued = False
        self._next = 0
        self._stream = None
        if pg.size > 1:
            self._check_same_model()
            self._sync_module_states()
            self._build()

    # ---------------------------------------------------------------- the model
    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        """Arms the gradient buckets (when a backward pass may follow), syncs the buffers, and
        runs the module."""
        if self._pg.size > 1 and is_grad_enabled():
            if self.require_backward_grad_sync:
                self._arm()
            if self.broadcast_buffers and self.module.training:
                self._sync_buffers()
        return self.module(*inputs, **kwargs)

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        """Within the block, backward passes keep their gradients local (they accumulate in
        ``.grad``); the first backward after it averages the accumulated sum. For gradient
        accumulation without a call per micro-batch.

        Example:
            >>> # for x, y in micro_batches[:-1]:
            >>> #     with ddp.no_sync():
            >>> #         loss_fn(ddp(x), y).backward()
            >>> # loss_fn(ddp(x_last), y_last).backward()   # averages the sum here
        """
        previous = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous

    def state_dict(self, destination: Any = None, prefix: str = "", keep_vars: bool = False):
        """The module's state dict, without a ``module.`` prefix."""
        return self.module.state_dict(destination, prefix, keep_vars)

    def load_state_dict(self, state_dict: dict, strict: bool = True):
        """Loads into the module (keys without a ``module.`` prefix; prefixed ones are
        accepted too)."""
        if state_dict and all(key.startswith("module.") for key in state_dict):
            state_dict = {key[len("module."):]: value for key, value in state_dict.items()}
        return self.module.load_state_dict(state_dict, strict)

    def remove_hooks(self) -> None:
        """Unregisters the gradient hooks: backward passes no longer average (for a wrapper made
        for one run, as `keras.Model.fit` makes; minigrad's own, not PyTorch's)."""
        for handle in self._hook_handles.values():
            handle.remove()
        self._hook_handles = {}
        self._armed = False

    def extra_repr(self) -> str:
        view = ", gradient_as_bucket_view=True" if self.gradient_as_bucket_view else ""
        return f"world_size={self._pg.size}, bucket_cap_mb={self.bucket_bytes / 2**20:g}{view}"

    # ---------------------------------------------------------------- at wrap time
    def _check_same_model(self) -> None:
        """Every rank must wrap the same model: compares a fingerprint of the names, shapes
        and dtypes of the parameters and buffers with rank 0's."""
        text = "|".join(f"{name}:{tuple(t.shape)}:{t.dtype}" for name, t in
                        [*self.module.named_parameters(), *self.module.named_buffers()])
        mine = np.array([len(text), zlib.crc32(text.encode())], dtype=np.int64)
        everyone = [np.zeros_like(mine) for _ in range(self._pg.size)]
        self._pg.all_gather(everyone, mine)
        differ = [r for r, theirs in enumerate(everyone) if not np.array_equal(theirs,
                                                                               everyone[0])]
        if differ:
            raise RuntimeError(
                f"DistributedDataParallel: rank {self._pg.rank}: the model on rank(s) "
                f"{differ} differs from rank 0's (parameter or buffer names, shapes or "
                "dtypes); every rank must wrap the same model")

    def _sync_module_states(self) -> None:
        """Copies rank 0's parameters (frozen ones too) and buffers to every rank."""
        tensors = [p for p in self.module.parameters()]
        tensors += [b for b in self.module.buffers()]
        self._broadcast_packed(tensors)

    def _sync_buffers(self) -> None:
        buffers = list(self.module.buffers())
        if buffers:
            self._broadcast_packed(buffers)

    def _broadcast_packed(self, tensors: list) -> None:
        """Broadcasts the tensors from rank 0 as the bytes of one buffer per device (one call
        per device, whatever their dtypes)."""
        by_device: dict = {}
        for t in tensors:
            by_device.setdefault(backend.device_of(t.data), []).append(t)
        for device, group in by_device.items():
            xp = backend.xp_for(device)
            parts = [xp.ascontiguousarray(t.data).reshape(-1).view(np.uint8) for t in group]
            packed = xp.concatenate(parts) if parts else xp.zeros(0, dtype=np.uint8)
            self._pg.broadcast(packed, 0)
            if self._pg.rank != 0:
                offset = 0
                for t, part in zip(group, parts):
                    raw = packed[offset : offset + part.size]
                    t.data[...] = raw.view(t.data.dtype).reshape(t.data.shape)
                    offset += part.size

    # ---------------------------------------------------------------- buckets
    def _layout_key(self) -> tuple:
        return tuple((id(p), p.requires_grad, backend.device_of(p.data), p.data.dtype.str)
                     for p in self.module.parameters())

    def _build(self) -> None:
        """Lays the trainable parameters, in reverse order, into flat buffers cut in chunks."""
        named = [(name, p) for name, p in self.module.named_parameters() if p.requires_grad]
        groups: dict = {}
        slot_of = {}
        order = []  # slots in the order backward is expected to finish them
        for name, p in reversed(named):
            key = (backend.device_of(p.data), np.dtype(p.data.dtype))
            group = groups.get(key)
            if group is None:
                group = groups[key] = _Group(*key)
            slot = _Slot(p, name, group, group.numel)
            group.slots.append(slot)
            group.numel += slot.size
            slot_of[id(p)] = slot
            order.append(slot)
        rank_of = {id(slot): i for i, slot in enumerate(order)}
        chunks = []
        for group in groups.values():
            group.allocate()
            per_chunk = max(1, self.bucket_bytes // group.dtype.itemsize)
            n_chunks = max(1, math.ceil(group.numel / per_chunk))
            mine = [_Chunk(group, k * per_chunk, min((k + 1) * per_chunk, group.numel))
                    for k in range(n_chunks)]
            mine[-1].stop = group.numel + len(group.slots)  # the counts ride in the last one
            mine[-1].last = True
            for slot in group.slots:
                first = min(slot.offset // per_chunk, n_chunks - 1)
                final = min(max(slot.offset + slot.size - 1, slot.offset) // per_chunk,
                            n_chunks - 1)
                slot.chunks = mine[first : final + 1]
                for chunk in slot.chunks:
                    chunk.slots.append(slot)
            chunks += mine
        # one fixed launch order on every rank: a chunk goes when its last parameter is in
        chunks.sort(key=lambda c: max((rank_of[id(s)] for s in c.slots), default=-1))
        for chunk in self._chunks:  # the previous layout's
            if chunk.persistent is not None:
                chunk.persistent.free()
        for chunk in chunks:  # (a collective: every rank sets them up in this same order)
            buffer = chunk.group.flat[chunk.start : chunk.stop]
            chunk.blocking = self._pg.prefers_blocking(buffer)
            if not chunk.blocking:
                chunk.persistent = self._pg.all_reduce_init(buffer, "sum")
        self._groups = list(groups.values())
        self._chunks = chunks
        self._slot_of = slot_of
        self._layout = self._layout_key()
        self._register_hooks()

    def _register_hooks(self) -> None:
        owner = weakref.ref(self)

        def on_gradient(param: Tensor) -> None:
            ddp = owner()
            if ddp is not None:
                ddp._gradient_ready(param)

        for slot in self._slot_of.values():
            if id(slot.param) not in self._hook_handles:
                handle = slot.param.register_post_accumulate_grad_hook(on_gradient)
                self._hook_handles[id(slot.param)] = handle

    def _check_layout(self) -> None:
        """Rebuilds the buckets when parameters were frozen, unfrozen or moved since the last
        step, after checking that every rank did the same."""
        if self._layout_key() == self._layout:
            return
        names = [name for name, _ in self.module.named_parameters()]
        flags = np.array([p.requires_grad for p in self.module.parameters()], dtype=np.uint8)
        everyone = [np.zeros_like(flags) for _ in range(self._pg.size)]
        self._pg.all_gather(everyone, flags)
        for r, theirs in enumerate(everyone):
            different = np.flatnonzero(theirs != flags)
            if different.size:
                name = names[int(different[0])]
                raise RuntimeError(
                    f"DistributedDataParallel: parameter {name!r} has requires_grad="
                    f"{bool(flags[different[0]])} on rank {self._pg.rank} but "
                    f"{bool(theirs[different[0]])} on rank {r}; freeze and unfreeze the same "
                    "parameters on every rank")
        self._build()

    # ---------------------------------------------------------------- one step
    def _arm(self) -> None:
        """Gets the buckets ready for the next backward pass."""
        if self._armed and self._next > 0:
            raise RuntimeError(
                "DistributedDataParallel: a forward pass started before the previous backward "
                "pass finished averaging its gradients")
        self._check_layout()
        for slot in self._slot_of.values():
            slot.ready = False
        for group in self._groups:
            group.n_ready = 0
        for chunk in self._chunks:
            chunk.pending = len(chunk.slots)
            chunk.work = None
        self._next = 0
        self._queued = False
        self._armed = True

    def _gradient_ready(self, param: Tensor) -> None:
        """The engine finished `param`'s gradient: copy it into its bucket, start the buckets
        that are complete."""
        if not self._armed:
            return  # no forward through the wrapper (or under no_sync): the gradient stays local
        slot = self._slot_of.get(id(param))
        if slot is None or slot.ready:
            return
        if not self._queued:
            self._queued = True
            queue_callback(self._finish)
        self._take_gradient(slot, param.grad)
        for chunk in slot.chunks:
            chunk.pending -= 1
        self._launch_ready()

    def _take_gradient(self, slot: _Slot, grad: Tensor) -> None:
        """Writes ``grad / world size`` into the slot's place in its bucket (in place when
        ``.grad`` already is that place), and points ``.grad`` there in bucket-view mode."""
        shaped = slot.shaped
        xp = backend.array_module(shaped)
        if grad is slot.tensor and grad.data is shaped:
            xp.multiply(shaped, self._scale, out=shaped)
        else:
            xp.multiply(grad.data, self._scale, out=shaped)
            if self.gradient_as_bucket_view:
                slot.param.grad = slot.tensor
        slot.ready = True
        slot.group.n_ready += 1

    def _launch_ready(self) -> None:
        """Starts the complete chunks, in the fixed order."""
        chunks, k = self._chunks, self._next
        while k < len(chunks) and chunks[k].pending == 0:
            self._launch(chunks[k])
            k += 1
        if k > self._next:
            self._next = k
        elif k > 0:
            chunks[k - 1].work.is_completed()  # lets MPI move the started ones along

    def _launch(self, chunk: _Chunk) -> None:
        group = chunk.group
        if chunk.last:  # 1 for each parameter that has a gradient on this rank
            if group.n_ready == len(group.slots):
                group.counts().fill(1)
            else:
                ready = np.array([s.ready for s in group.slots], dtype=group.dtype)
                group.counts()[...] = backend.to_device(ready, group.device)
        if chunk.blocking:
            self._pg.all_reduce(group.flat[chunk.start : chunk.stop], "sum")
            chunk.work = _DONE
            return
        if chunk.persistent is not None:
            chunk.work = chunk.persistent.start()
            return
        stream = self._side_stream(group.device)
        chunk.work = self._pg.all_reduce(group.flat[chunk.start : chunk.stop], "sum",
                                         async_op=True, stream=stream)

    def _side_stream(self, device: backend.Device) -> Any:
        """A CUDA stream for NCCL that first waits for the gradients queued so far (None on
        the CPU or when GPU arrays go through MPI)."""
        if device.type != "cuda" or self._pg.backend != "nccl":
            return None
        cp = backend._import_cupy()
        if self._stream is None:
            self._stream = cp.cuda.Stream(non_blocking=True)
        copied = cp.cuda.Event()
        copied.record(cp.cuda.get_current_stream())
        self._stream.wait_event(copied)
        return self._stream

    def _finish(self) -> None:
        """After the backward pass: start what is left, wait for everything, and write the
        averaged gradients to ``.grad``."""
        if not self._armed:
            return
        self._armed = False
        missing = False
        for chunk in self._chunks[self._next :]:
            for slot in chunk.slots:
                if not slot.ready:  # no gradient from this backward pass: .grad or zeros
                    missing = True
                    grad = slot.param.grad
                    if grad is None:
                        slot.shaped[...] = 0
                    else:
                        self._take_gradient(slot, grad)
            chunk.pending = 0
        if self._next < len(self._chunks):  # (none left: no MPI_Test just before the waits)
            self._launch_ready()
        for chunk in self._chunks:
            chunk.work.wait()
        as_view = self.gradient_as_bucket_view
        for group in self._groups:
            counts = None
            if missing:  # which parameters had a gradient on some rank (reads the device)
                counts = backend.to_device(group.counts(), backend.CPU)
            for i, slot in enumerate(group.slots):
                if counts is not None and counts[i] == 0:
                    continue  # no rank had one: .grad stays None, as in one process
                grad = slot.param.grad
                if grad is slot.tensor:
                    continue  # bucket-view mode: .grad is the averaged slice already
                if as_view:
                    slot.param.grad = slot.tensor
                elif grad is None:
                    slot.param.grad = Tensor._make(slot.shaped.copy())
                else:
                    grad.data[...] = slot.shaped
        self._next = 0
