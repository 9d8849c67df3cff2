"""Jupyter kernels that talk over IPC sockets in a private temp folder instead of TCP ports of localhost.

The runner (papermill), the notebook regression (nbval) and the grader (nbgrader) start kernels; with these
managers nothing listens on the network, and Jupyter's "Kernel is running over TCP without encryption" warning
has no cause. Each kernel's socket folder is removed with the kernel. :class:`AsyncIPCKernelManager` is for
papermill and nbgrader (nbclient), :class:`IPCKernelManager` for nbval's blocking client.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

from jupyter_client.manager import AsyncKernelManager, KernelManager


class _IPCSockets:
    """Mixin: IPC transport, sockets in a fresh private folder removed when the kernel is cleaned up."""

    def __init__(self, **kwargs: Any):
        self._socket_dir = tempfile.mkdtemp(prefix="sentiment-kernel-")
        kwargs.setdefault("transport", "ipc")
        kwargs.setdefault("ip", os.path.join(self._socket_dir, "kernel"))
        super().__init__(**kwargs)

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if not restart:
            shutil.rmtree(self._socket_dir, ignore_errors=True)


class AsyncIPCKernelManager(_IPCSockets, AsyncKernelManager):
    """The asynchronous manager (papermill, nbgrader) over IPC."""


class IPCKernelManager(_IPCSockets, KernelManager):
    """The blocking manager (nbval) over IPC."""
