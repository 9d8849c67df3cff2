"""Jupyter kernels that talk over IPC sockets in a private temp folder instead of TCP ports of localhost.

The runner (papermill), the notebook regression (nbval) and the grader (nbgrader) start kernels; with these
managers nothing listens on the network, and Jupyter's "Kernel is running over TCP without encryption" warning
has no cause. The sockets of every kernel a process starts live in one private folder (mode 700), made on the
first kernel and removed when the process exits; each kernel's own socket files are removed with it.
:class:`AsyncIPCKernelManager` is for papermill and nbgrader (nbclient), :class:`IPCKernelManager` for nbval's
blocking client.
"""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from typing import Any

from jupyter_client.manager import AsyncKernelManager, KernelManager

_socket_dir: str | None = None


def socket_dir() -> str:
    """This process's private folder for kernel sockets (created once, removed at exit)."""
    global _socket_dir
    if _socket_dir is None or not os.path.isdir(_socket_dir):
        _socket_dir = tempfile.mkdtemp(prefix="sentiment-kernel-")
        atexit.register(shutil.rmtree, _socket_dir, ignore_errors=True)
    return _socket_dir


class _IPCSockets:
    """Mixin: IPC transport, sockets named uniquely in :func:`socket_dir`."""

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("transport", "ipc")
        kwargs.setdefault("ip", os.path.join(socket_dir(), f"kernel-{uuid.uuid4().hex[:12]}"))
        super().__init__(**kwargs)


class AsyncIPCKernelManager(_IPCSockets, AsyncKernelManager):
    """The asynchronous manager (papermill, nbgrader) over IPC."""


class IPCKernelManager(_IPCSockets, KernelManager):
    """The blocking manager (nbval) over IPC."""
