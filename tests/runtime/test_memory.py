"""Allocator tuning behind fit's step hook: freed memory kept, and handed back past a bound."""
import numpy as np
import pytest
import torch

from sentiment_lib.runtime import memory
from sentiment_lib.runtime.memory import FreedMemoryCap, step_hook


class _FakeLibc:
    def __init__(self):
        self.trims = 0

    def malloc_trim(self, pad):
        self.trims += 1
        return 1


def test_freed_memory_cap_releases_only_when_resident_memory_grows_past_the_limit(monkeypatch):
    mib = 2 ** 20
    readings = iter([3000 * mib, 1000 * mib, 1500 * mib, 1600 * mib, 1100 * mib, 1200 * mib, 1700 * mib,
                     1200 * mib])
    libc = _FakeLibc()
    monkeypatch.setattr(memory, "resident_bytes", lambda: next(readings))
    monkeypatch.setattr(memory, "_glibc", lambda: libc)
    cap = FreedMemoryCap(limit_mib=512)
    cap()  # first step: 3000 MiB, partly kept by an earlier training: released, 1000 MiB is the base
    assert (libc.trims, cap.base) == (1, 1000 * mib)
    cap()  # 1500: within 512 of the base
    assert libc.trims == 1
    cap()  # 1600 > 1000 + 512: release; the base becomes the level after it (1100)
    assert (libc.trims, cap.releases, cap.base) == (2, 2, 1100 * mib)
    cap()  # 1200: within the limit of the new base
    cap()  # 1700 > 1100 + 512: another release
    assert (libc.trims, cap.releases, cap.base) == (3, 3, 1200 * mib)


@pytest.mark.skipif(memory._glibc() is None or memory.resident_bytes() is None, reason="glibc on Linux only")
def test_freed_memory_cap_hands_kept_memory_back_to_the_kernel():
    assert memory.keep_freed_memory(True)
    try:
        cap = FreedMemoryCap(limit_mib=64)
        cap()  # releases what earlier tests kept and sets the base
        block = np.ones(256 * 2 ** 20 // 8)  # 256 MiB, touched; from the heap while memory is kept
        del block  # freed, but kept by malloc: resident memory stays up
        kept = memory.resident_bytes()
        assert kept > cap.base + 128 * 2 ** 20
        cap()
        assert cap.releases == 2
        assert memory.resident_bytes() < kept - 128 * 2 ** 20
    finally:
        memory.keep_freed_memory(False)


def test_the_step_hook_is_a_fresh_cap_on_a_cpu_only_when_asked():
    hook = step_hook(torch.device("cpu"), keep=True, limit_mib=128)
    assert isinstance(hook, FreedMemoryCap) and hook.limit == 128 * 2 ** 20 and hook.base is None
    assert step_hook(torch.device("cpu"), keep=False) is None
    assert step_hook(torch.device("meta"), keep=True) is None
    memory.keep_freed_memory(False)


def test_processes_side_by_side_share_the_kept_freed_memory(monkeypatch):
    monkeypatch.setattr(memory, "_SHARING_PROCESSES", 1)
    memory.share_freed_memory(4)
    assert step_hook(torch.device("cpu"), keep=True, limit_mib=2048).limit == 512 * 2 ** 20
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="positive integer"):
            memory.share_freed_memory(bad)
    memory.keep_freed_memory(False)


def test_inference_gets_a_small_cap_on_a_cpu_only():
    hook = memory.inference_hook(torch.device("cpu"))
    assert isinstance(hook, FreedMemoryCap) and hook.limit == memory.INFERENCE_FREED_MEMORY_MIB * 2 ** 20
    assert memory.inference_hook(torch.device("meta")) is None


# --------------------------------------------------------------------------------------------
# The callback that brings the allocator tuning into fit
# --------------------------------------------------------------------------------------------


def _tiny_fit(callbacks, epochs=1, raise_after=None):
    from sentiment_lib.batching import EncodedSplit, make_loader
    from sentiment_lib.models import ModelConfig, build_model
    from sentiment_lib.train import Callback, TrainConfig, fit

    rng = np.random.default_rng(0)
    split = EncodedSplit([rng.integers(2, 20, size=int(n)).astype(np.int32) for n in rng.integers(3, 12, 48)],
                         np.arange(48) % 2)

    class Stop(Callback):
        def on_epoch_end(self, state, val):
            if raise_after is not None and len(state.rows) == raise_after:
                raise RuntimeError("pruned")

    torch.manual_seed(0)
    model = build_model(ModelConfig("lstm", 20, embed_dim=8, hidden_size=8))
    return fit(model, make_loader(split, 16, 16, shuffle=True), make_loader(split, 8, 16),
               TrainConfig(epochs=epochs, progress=False, device="cpu", patience=None), [*callbacks, Stop()])


def test_the_callback_caps_every_step_and_every_validation_batch(monkeypatch):
    caps = []

    class Counting:
        def __init__(self, limit_mib):
            self.limit_mib, self.calls = limit_mib, 0
            caps.append(self)

        def __call__(self):
            self.calls += 1

    monkeypatch.setattr(memory, "step_hook", lambda device, keep, limit: Counting(limit))
    monkeypatch.setattr(memory, "inference_hook", lambda device: Counting(memory.INFERENCE_FREED_MEMORY_MIB))
    monkeypatch.setattr(memory, "keep_freed_memory", lambda enable=True: True)
    _tiny_fit([memory.KeepFreedMemory(torch.device("cpu"), limit_mib=300)], epochs=2)
    step, *validations = caps
    assert step.limit_mib == 300 and step.calls == 2 * 3  # 48 reviews in batches of 16, two epochs
    assert [v.calls for v in validations] == [6, 6]  # a fresh cap per validation pass, called per batch


def test_the_callback_gives_the_allocator_back_when_fit_returns_or_raises(monkeypatch):
    calls = []
    monkeypatch.setattr(memory, "keep_freed_memory", calls.append)
    _tiny_fit([memory.KeepFreedMemory(torch.device("cpu"))])
    assert calls == [True, False]  # on for the steps; what scores the model next frees memory at once
    with pytest.raises(RuntimeError, match="pruned"):
        _tiny_fit([memory.KeepFreedMemory(torch.device("cpu"))], epochs=2, raise_after=1)
    assert calls == [True, False, True, False]
    _tiny_fit([])
    assert calls == [True, False, True, False]  # without the callback the allocator is never touched
