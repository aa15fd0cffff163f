"""One execution environment of a function, as Lambda runs it: a process that imports the handler (the cold
start), then handles one invocation at a time, until it is killed.

    python -m chaos.child acknowledger|work|dead_letter

Requests come on stdin, one JSON line each: {"invocation", "event", "remainingMs"}. Each answer goes on the
process's original stdout, one JSON line: {"invocation", "result"} or {"invocation", "errorType",
"errorMessage"}, as Lambda reports a function error. Everything the function prints (its logs, its metrics)
goes to stderr, which the harness keeps in a file.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any

from chaos import work
from codepipeline_worker.work.consume import LocalContext

HANDLERS = {
    "acknowledger": "codepipeline_worker.acknowledger.handler",
    "work": "codepipeline_worker.work.handler",
    "dead_letter": "codepipeline_worker.dead_letter.handler",
}


def _orphaned(parent: int) -> None:
    """End with the harness: an environment outlives no run."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def main() -> int:
    kind = sys.argv[1]
    threading.Thread(target=_orphaned, args=(os.getppid(),), daemon=True).start()
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # the function's own prints (EMF metrics) join its logs
    handler: Any = __import__(HANDLERS[kind], fromlist=["lambda_handler"]).lambda_handler
    answers.write(json.dumps({"ready": os.getpid()}) + "\n")
    answers.flush()
    for line in sys.stdin:
        request = json.loads(line)
        work.INVOCATION["id"] = request["invocation"]
        context = LocalContext(f"chaos-{kind}", request["remainingMs"] / 1000)
        answer: dict[str, Any] = {"invocation": request["invocation"]}
        try:
            answer["result"] = handler(request["event"], context)
        except Exception as exc:  # noqa: BLE001 - a function error, reported as Lambda reports one
            answer |= {"errorType": type(exc).__name__, "errorMessage": str(exc)}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
