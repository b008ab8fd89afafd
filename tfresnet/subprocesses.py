"""Child processes of tfresnet's launchers (local multi-worker training, local tuning workers)."""

from __future__ import annotations

import subprocess
import time

__all__ = ["stop"]


def stop(processes: list[subprocess.Popen], grace_s: float) -> None:
    """Terminates the processes still running, then kills those not gone within `grace_s` seconds.

    SIGTERM first lets a worker end its epoch's writes; one that ignores it past the grace period
    is killed, so a launcher never hangs on a stuck child.
    """
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + grace_s
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
