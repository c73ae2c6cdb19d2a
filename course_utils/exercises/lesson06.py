"""Lesson 06's exercise: average the gradients of every process with ``dist.all_reduce``, as DDP does.

The check runs the learner's ``average_gradients(model)`` on real processes in a
gloo group: each process builds the same small model, computes the gradient of
its own batch, calls the answer, and sends back its gradients. The reference is
what DDP leaves in every process's ``.grad``: the mean of the local gradients.
"""

from __future__ import annotations

import datetime
import multiprocessing
import multiprocessing.connection
import tempfile
import time
from typing import Any, Callable

import torch
import torch.distributed as dist
from torch import Tensor, nn

from .engine import Case, Exercise, raised, register, variant

Gradients = list[Tensor | None]  # one entry per parameter, None for a parameter without a gradient


def exercise_model(kind: str, seed: int) -> nn.Module:
    """The same small model on every process (seeded); "frozen" has a layer without gradients."""
    torch.manual_seed(seed)
    if kind == "linear":
        return nn.Linear(5, 3)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
    if kind == "frozen":
        model[0].requires_grad_(False)
    return model


def exercise_batch(kind: str, seed: int, rank: int) -> tuple[Tensor, Tensor]:
    """Rank ``rank``'s own batch of 4 inputs ((4, 5) or (4, 1, 6, 6)) and labels (4,)."""
    generator = torch.Generator().manual_seed(seed * 100 + rank + 1)
    shape = (4, 5) if kind == "linear" else (4, 1, 6, 6)
    return torch.randn(shape, generator=generator), torch.randint(0, 3, (4,), generator=generator)


def local_gradients(kind: str, seed: int, rank: int) -> nn.Module:
    """The model after backward on this rank's own batch: each parameter holds its local gradient."""
    model = exercise_model(kind, seed)
    x, y = exercise_batch(kind, seed, rank)
    torch.nn.functional.cross_entropy(model(x), y).backward()
    return model


def gradients(model: nn.Module) -> Gradients:
    """A copy of each parameter's gradient, in model.parameters() order."""
    return [None if p.grad is None else p.grad.detach().clone() for p in model.parameters()]


def average_of_local_gradients(world_size: int, kind: str, seed: int) -> Gradients:
    """What DDP leaves in every process's ``.grad`` after backward: the mean over the
    processes of their local gradients (None for parameters without gradients). Computed
    here in one process, by building each rank's local gradients in turn."""
    per_rank = [gradients(local_gradients(kind, seed, rank)) for rank in range(world_size)]
    return [None if grads[0] is None else torch.stack(grads).mean(0) for grads in zip(*per_rank)]


def process_inputs(args: tuple) -> list[list[tuple[Tensor, Tensor | None]]]:
    """Each process's parameters with their local gradients, for a case's args (world_size, kind, seed):
    what the grader's sandbox, which cannot build the model itself, turns back into a model."""
    world_size, kind, seed = args
    return [[(p.detach().clone(), None if p.grad is None else p.grad.clone())
             for p in local_gradients(kind, seed, rank).parameters()] for rank in range(world_size)]


def _worker(answer: Callable[[nn.Module], Any], kind: str, seed: int, rank: int, world_size: int,
            store: str, connection: Any, joined: Any) -> None:
    """One process of the check: join the group (and mark ``joined[rank]``), compute local
    gradients, call the answer, and send back ("ok", gradients as NumPy arrays), ("raised",
    Raised) when the answer raised, or ("no group", text) when the group did not form."""
    torch.set_num_threads(1)
    try:
        dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world_size,
                                timeout=datetime.timedelta(seconds=30))
    except Exception as error:  # a peer that died or a busy machine, not the learner's code
        connection.send(("no group", f"{type(error).__name__}: {error}"))
        return
    joined[rank] = 1
    try:
        model = local_gradients(kind, seed, rank)
        answer(model)
        # as NumPy arrays: tensors would travel through shared memory that dies with this process
        result: tuple = ("ok", [None if g is None else g.numpy() for g in gradients(model)])
    except (Exception, SystemExit) as error:
        result = ("raised", raised(error, getattr(getattr(answer, "__code__", None), "co_filename", None)))
    finally:
        dist.destroy_process_group()
    connection.send(result)


def _run_group(answer: Callable[[nn.Module], Any], args: tuple, timeout_s: float) -> dict[int, tuple]:
    """Start one gloo group of ``world_size`` forked processes running ``answer`` and collect
    what each sends back, in whatever order they finish: {rank: result}. A rank that died, or
    that was still waiting when another had already failed (it may wait for it forever), is
    missing, or ("died", None) if it had joined the group: it died in the answer; a rank still
    running after ``timeout_s`` is reported as ("timeout", None)."""
    world_size, kind, seed = args
    context = multiprocessing.get_context("fork")
    results: dict[int, tuple] = {}
    with tempfile.TemporaryDirectory() as folder:
        pipes = [context.Pipe(duplex=False) for _ in range(world_size)]
        joined = context.Array("b", world_size)
        processes = [context.Process(target=_worker, daemon=True,
                                     args=(answer, kind, seed, rank, world_size, f"{folder}/store", sender,
                                           joined))
                     for rank, (_, sender) in enumerate(pipes)]
        for process in processes:
            process.start()
        for _, sender in pipes:
            sender.close()  # the parent's copy: a child that dies now closes its pipe for good
        waiting = {receiver: rank for rank, (receiver, _) in enumerate(pipes)}
        deadline = time.monotonic() + timeout_s
        try:
            while waiting:
                left = deadline - time.monotonic()
                if any(result[0] != "ok" for result in results.values()):
                    left = min(left, 2.0)  # the others may wait for the failed one forever
                ready = multiprocessing.connection.wait(list(waiting), timeout=max(left, 0))
                if not ready:
                    if not any(result[0] != "ok" for result in results.values()):
                        results.update({rank: ("timeout", None) for rank in waiting.values()})
                    break
                for receiver in ready:
                    rank = waiting.pop(receiver)
                    try:
                        results[rank] = receiver.recv()
                    except EOFError:  # the process died without a word
                        if joined[rank]:
                            results[rank] = ("died", None)
        finally:
            for process in processes:
                process.join(1)
                if process.is_alive():
                    process.kill()
    return results


def run_gradient_average(answer: Callable[[nn.Module], Any], args: tuple,
                         timeout_s: float = 60.0, tries: int = 3) -> list[Gradients]:
    """Run ``answer(model)`` on ``world_size`` real processes in a gloo group, and return
    each process's gradients afterwards (``args`` = (world_size, kind, seed)).

    The processes are forks of this one (Linux and macOS; a notebook's function
    cannot be sent to a freshly started interpreter), so the learner's function
    runs as it is. What the answer raised on any process is reported, whichever
    process finished first. A group that could not form (a process died before the
    answer ran, which a loaded machine can cause) is started again, ``tries`` times
    in all: that is not the learner's mistake.

    Raises:
        NotImplementedError: the answer raised it on some process.
        RuntimeError: the answer raised something else, the processes did not
            finish within ``timeout_s`` (a collective that not every process called),
            or no group formed in ``tries`` tries.
    """
    world_size = args[0]
    if "fork" not in multiprocessing.get_all_start_methods():
        raise RuntimeError("this check forks processes, which this system cannot do (Windows); "
                           "run it on Linux, macOS or in Colab")
    for _ in range(tries):
        results = _run_group(answer, args, timeout_s)
        answer_errors = [(rank, r[1]) for rank, r in results.items() if r[0] == "raised"]  # as they came
        if any(error.kind == "NotImplementedError" for _, error in answer_errors):
            raise NotImplementedError()
        died = sorted(rank for rank, r in results.items() if r[0] == "died")
        if died:
            # before the errors of the others: theirs follow from it (a peer gone mid-collective)
            raise RuntimeError(f"process {died[0]} of {world_size} died while running your function "
                               "(did it call exit, or crash the interpreter?)")
        if answer_errors:
            rank, error = answer_errors[0]
            raise RuntimeError(f"on process {rank}: {error.kind}: {error.text}{error.where}")
        late = sorted(rank for rank, r in results.items() if r[0] == "timeout")
        if late:
            raise RuntimeError(f"process {late[0]} of {world_size} did not finish in {timeout_s:.0f} s: "
                               "does every process make the same dist.all_reduce calls?")
        if len(results) == world_size and all(r[0] == "ok" for r in results.values()):
            return [[None if g is None else torch.from_numpy(g) for g in results[rank][1]]
                    for rank in range(world_size)]
        why = [r[1] for r in results.values() if r[0] == "no group"] or ["a process died before your code ran"]
    raise RuntimeError(f"{world_size} processes could not form a gloo group in {tries} tries "
                       f"(not your code: a busy or restricted machine): {why[0]}")


def _cases(generator: torch.Generator) -> list[Case]:
    """(description, (world_size, model kind, seed)) for five groups of processes."""
    seeds = torch.randint(0, 1000, (5,), generator=generator).tolist()
    worlds_and_kinds = [(2, "linear"), (3, "cnn"), (2, "frozen"), (4, "linear"), (3, "frozen")]
    names = {"linear": "an nn.Linear", "cnn": "a small CNN",
             "frozen": "a CNN whose first layer is frozen (its .grad is None)"}
    return [Case(f"{world} processes, {names[kind]}", (world, kind, seed))
            for (world, kind), seed in zip(worlds_and_kinds, seeds)]


def _same(got: Any, expected: Gradients) -> bool:
    """Whether `got` is a list of gradients equal to `expected` (None where it holds None)."""
    return isinstance(got, (list, tuple)) and len(got) == len(expected) and all(
        (g is None and e is None) or (isinstance(g, Tensor) and e is not None and g.shape == e.shape
                                      and torch.allclose(g, e, rtol=1e-5, atol=1e-6))
        for g, e in zip(got, expected))


def _holds(what: str) -> Callable[[list[Gradients], Gradients, tuple], str | None]:
    """A comparison: None if every process holds `expected` (the `what` of the gradients), else what is wrong."""
    def compare(got: list[Gradients], expected: Gradients, args: tuple) -> str | None:
        for rank, grads in enumerate(got):
            if not _same(grads, expected):
                return f"after your function, process {rank} does not hold the {what} of the processes' gradients"
        return None
    return compare


def _diagnose(got: list[Gradients], args: tuple) -> str | None:
    """A hint for the usual mistakes: a sum without the division, or no communication at all."""
    world_size, kind, seed = args
    if _same(got[0], sum_of_local_gradients(world_size, kind, seed)):
        return "all_reduce sums; divide by dist.get_world_size() to get the mean, as DDP does."
    if _same(got[0], gradients(local_gradients(kind, seed, 0))):
        return "the gradients are still each process's own: call dist.all_reduce on every p.grad."
    return None


def sum_of_local_gradients(world_size: int, kind: str, seed: int) -> Gradients:
    """The sum over the processes of their local gradients (None for parameters without gradients)."""
    return [None if g is None else g * world_size for g in average_of_local_gradients(world_size, kind, seed)]


def _diagnose_sum(got: list[Gradients], args: tuple) -> str | None:
    if _same(got[0], average_of_local_gradients(*args)):
        return "that is the mean; this class's version keeps the sum: do not divide by the world size."
    return _diagnose(got, args) if not _same(got[0], sum_of_local_gradients(*args)) else None


AVERAGE_GRADIENTS = Exercise(
    id="06.average_gradients", signature="average_gradients(model) -> None, run on every process",
    hint="after backward, for every parameter with a gradient: dist.all_reduce(p.grad) (a sum over the "
         "processes, in place), then divide by dist.get_world_size().",
    cases=_cases, reference=average_of_local_gradients, compare=_holds("mean"), diagnose=_diagnose,
    run=run_gradient_average, processes=process_inputs, does_the_work=("DistributedDataParallel",),
)

register(
    AVERAGE_GRADIENTS,
    # A class variant (see engine.variant): the public solution does not pass it.
    variant(AVERAGE_GRADIENTS, "sum",
            "**The sum, not the mean.** `average_gradients(model)` leaves in every process's `.grad` the **sum** "
            "of the processes' gradients (right when each process's loss is already divided by the global batch "
            "size).",
            hint="after backward, for every parameter with a gradient: dist.all_reduce(p.grad), a sum over the "
                 "processes, in place.",
            reference=sum_of_local_gradients, compare=_holds("sum"), diagnose=_diagnose_sum),
)
