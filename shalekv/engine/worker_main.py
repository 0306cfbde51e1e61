"""Entry point of a worker process: read a job, run it, answer; until stdin closes."""

from __future__ import annotations

import os
import sys
import traceback

from shalekv.engine import jobs
from shalekv.engine.workers import receive, send

JOBS = {"run_flush": jobs.run_flush, "run_compaction": jobs.run_compaction}


def main() -> None:
    stdin = sys.stdin.buffer
    stdout = sys.stdout.buffer
    # Keep stray prints away from the reply channel.
    sys.stdout = sys.stderr
    try:
        os.nice(5)  # background work yields the CPU to foreground requests
    except OSError:
        pass
    while True:
        try:
            msg = receive(stdin)
        except EOFError:
            return
        try:
            result = JOBS[msg["job"]](msg["spec"])
        except Exception as e:  # noqa: BLE001 - reported to the parent, which decides
            traceback.print_exc()
            # An OSError keeps its errno: the parent treats ENOSPC as "retry later".
            reply: dict[str, object] = {"error": type(e).__name__, "message": str(e)}
            if isinstance(e, OSError) and e.errno is not None:
                reply["errno"] = e.errno
                reply["message"] = e.strerror or str(e)
        else:
            reply = {"result": result}
        try:
            send(stdout, reply)
        except BrokenPipeError:
            # The DB's process is gone (it exited without close(), mid-job): no one to
            # answer, and its next open ignores files no MANIFEST names. Quietly.
            return


if __name__ == "__main__":
    main()
