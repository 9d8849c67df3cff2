"""What every hidden check shares: :class:`Failed`, the rule that an answer is the student's own work
(:func:`own`: not the library's function, not a call to the library's answer, and — while the answer runs —
the library's answer refuses to run at all, :func:`sealed`), calling student code (:func:`call`), tensor
comparisons, and partial credit (:func:`partial`).
"""
from __future__ import annotations

import contextlib
import importlib
import types
from typing import Any, Callable, Iterator

import torch

class Failed(AssertionError):
    """A hidden test failed; the message says what is wrong and how to look for it."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise Failed(message)


# The library's own implementation of each exercise: an answer that calls it has not done the exercise.
LIBRARY_ANSWERS = {
    "clean_review": ("text", "clean_text"), "truncate": ("text", "truncate"),
    "masked_mean_max": ("layers", "masked_mean_max_pool"), "attention_weights": ("layers", "masked_softmax"),
    "evaluate": ("train", "evaluate"), "train_step": ("train", "train_one_epoch"),
    "suggest": ("tuning.space", "search_space"), "mcnemar_test": ("uncertainty", "mcnemar"),
    "perturb": ("adversarial", "perturbation"), "log_count_ratio": ("linear", "nb_ratio"),
}


def library_answer(name: str) -> types.FunctionType | None:
    """The plain function object behind exercise ``name``'s library answer (through decorators), if any."""
    if name not in LIBRARY_ANSWERS:
        return None
    module, attribute = LIBRARY_ANSWERS[name]
    target = getattr(importlib.import_module(f"sentiment_lib.{module}"), attribute)
    while hasattr(target, "__wrapped__"):
        target = target.__wrapped__
    return target if isinstance(target, types.FunctionType) else None


_REFUSED: list[str] = []  # exercises whose library answer was called while sealed (a caught refusal counts too)


def _refused_message(name: str) -> str:
    module, attribute = LIBRARY_ANSWERS[name]
    return (f"{name} reaches sentiment_lib.{module}.{attribute}, the library's own answer to this exercise, which "
            "refuses to run while your answer is graded: write the computation yourself (this scores 0).")


def _refusal(name: str) -> types.CodeType:
    """Code for a function that refuses to run: it records ``name`` and raises :class:`Failed`. It imports this
    module by name because it runs with the library module's globals."""
    module, attribute = LIBRARY_ANSWERS[name]
    source = (f"def refused(*args, **kwargs):\n"
              f"    from classroom.checks import _common\n"
              f"    _common._REFUSED.append({name!r})\n"
              f"    raise _common.Failed({_refused_message(name)!r})\n")
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<sealed sentiment_lib.{module}.{attribute}>", "exec"), namespace)
    return namespace["refused"].__code__


@contextlib.contextmanager
def sealed(name: str) -> Iterator[None]:
    """While active, the library's answer to exercise ``name`` refuses to run, however the answer reaches it
    (imported by name, through ``getattr`` or ``importlib``, kept in a default argument or a dict): the code of
    the function object itself is swapped. Afterwards :class:`Failed` is raised if it was called, even when the
    answer caught the refusal."""
    target = library_answer(name)
    if target is None:
        yield
        return
    original, start = target.__code__, len(_REFUSED)
    target.__code__ = _refusal(name)
    try:
        yield
    finally:
        target.__code__ = original
    _require(len(_REFUSED) == start, _refused_message(name))


def _delegates(fn: types.FunctionType, module: str, attribute: str) -> bool:
    """Whether ``fn`` calls ``sentiment_lib.<module>.<attribute>``: the function imported by name, or reached
    through the package or any of its modules that hold it (``layers.masked_softmax``, ``models.masked_softmax``,
    ``sentiment_lib.models.masked_softmax``)."""
    import inspect

    target_module = importlib.import_module(f"sentiment_lib.{module}")
    target = getattr(target_module, attribute)
    try:
        seen = inspect.getclosurevars(fn)
    except (TypeError, ValueError):
        return False
    values = {**seen.globals, **seen.nonlocals}
    if any(value is target for value in values.values()):
        return True
    names = set(fn.__code__.co_names) | {n for c in fn.__code__.co_consts if isinstance(c, types.CodeType)
                                         for n in c.co_names}
    modules = [v for v in values.values() if isinstance(v, types.ModuleType)
               and (v.__name__ == "sentiment_lib" or getattr(v, attribute, None) is target)]
    return attribute in names and bool(modules)


def _own(fn: Any, name: str) -> None:
    """The answer must be a function written in the notebook, not the library's function handed back, and must
    not hand the work to the library's own implementation of the exercise (:data:`LIBRARY_ANSWERS`)."""
    _require(isinstance(fn, types.FunctionType), f"{name} must be a function you define with def.")
    _require(not (fn.__module__ or "").startswith("sentiment_lib"),
             f"{name} is sentiment_lib's own function: write your implementation in the cell.")
    if name in LIBRARY_ANSWERS:
        module, attribute = LIBRARY_ANSWERS[name]
        _require(not _delegates(fn, module, attribute),
                 f"{name} calls sentiment_lib.{module}.{attribute}, the library's own answer to this exercise: "
                 "write the computation yourself (this scores 0).")


def _call(fn: Callable, name: str, *args: Any) -> Any:
    """Call the student's function; an exception becomes a failure that names it (not our inputs)."""
    try:
        with sealed(name):
            return fn(*args)
    except NotImplementedError:
        raise Failed(f"{name} is not written yet (it raises NotImplementedError).") from None
    except Failed:
        raise
    except Exception as err:  # noqa: BLE001 - any error in student code is a failed test
        raise Failed(f"{name} raised {type(err).__name__}: {str(err)[:160]}") from None


def _shaped(got: Any, expected: torch.Tensor, message: str) -> None:
    _require(isinstance(got, torch.Tensor), f"{message}: expected a torch.Tensor, got {type(got).__name__}.")
    _require(tuple(got.shape) == tuple(expected.shape),
             f"{message}: expected shape {tuple(expected.shape)}, got {tuple(got.shape)}.")


def _close(got: Any, expected: torch.Tensor, message: str, atol: float = 1e-5) -> None:
    _shaped(got, expected, message)
    _require(torch.allclose(got.detach().float(), expected.detach().float(), atol=atol, rtol=1e-4),
             f"{message}: the values differ from the expected ones.")



def partial(name: str, parts: list[tuple[str, float, Callable[[], None]]]) -> float:
    """Partial credit: run each part's test (``(what it checks, points, test)``; a test raises :class:`Failed`),
    print one line per part, and return the points earned: nbgrader gives a test cell whose output is a number
    that many points. No part passed: :class:`Failed` with every part's reason (the cell scores 0)."""
    earned, reasons = 0.0, []
    for title, points, test in parts:
        try:
            test()
        except Failed as failed:
            reasons.append(f"{title}: {failed}")
            print(f"✗ {title}: 0 of {points:g} points. {failed}")
        else:
            earned += points
            print(f"✓ {title}: {points:g} of {points:g} points.")
    _require(earned > 0, f"{name}: no part is right. " + " ".join(reasons))
    return earned
