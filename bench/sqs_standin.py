"""The bench's work queue: SQS's JSON protocol for the calls the bench makes (CreateQueue, DeleteQueue,
SendMessage, SendMessageBatch), answered at once or after the latency set at `POST /_latency {"seconds": s}`. Run
by bench/run.py in a process of its own: `python bench/sqs_standin.py` prints its URL.

It answers the job table's calls too (DynamoDB's JSON protocol, the same latency): the work function's once-only
record (PutItem, UpdateItem) and a poll's hand-off records (Query, BatchWriteItem), each as DynamoDB answers
when the table holds nothing else: the writes succeed, the reconciler's query finds no record.

Why not moto, which the tests use: moto's SQS serves one call at a time with about 4 ms of CPU each, and its
SendMessage slows as the queue grows (5 ms at first, 49 ms with 2,800 messages held). A benchmark against it
measures moto: 100 messages in flight take it 400 ms, where SQS serves them side by side. This stand-in answers in
parallel, keeps no message (the bench counts hand-offs by the functions' own results), and costs every side the
same.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ACCOUNT = "123456789012"
DYNAMODB_ANSWERS: dict[str, dict[str, Any]] = {
    "PutItem": {},
    "UpdateItem": {},
    "DeleteItem": {},
    "GetItem": {},
    "BatchWriteItem": {"UnprocessedItems": {}},
    "Query": {"Items": [], "Count": 0, "ScannedCount": 0},
}


class StandIn(ThreadingHTTPServer):
    daemon_threads = True
    latency_s = 0.0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body leave in two writes: no delayed-ACK wait between them
    server: StandIn

    def log_message(self, *_: Any) -> None:  # quiet
        return

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        if self.path == "/_latency":
            self.server.latency_s = float(request["seconds"])
            self._answer(200, {})
            return
        operation = self.headers.get("X-Amz-Target", "").rpartition(".")[2]
        time.sleep(self.server.latency_s)
        base = f"http://{self.headers['Host']}/{ACCOUNT}/"
        if operation == "CreateQueue":
            self._answer(200, {"QueueUrl": base + request["QueueName"]})
        elif operation == "DeleteQueue":
            self._answer(200, {})
        elif operation in DYNAMODB_ANSWERS:
            self._answer(200, DYNAMODB_ANSWERS[operation])
        elif operation == "SendMessage":
            self._answer(200, _sent(request))
        elif operation == "SendMessageBatch":
            self._answer(200, {"Successful": [{"Id": e["Id"], **_sent(e)} for e in request["Entries"]], "Failed": []})
        else:
            self._answer(400, {"__type": "com.amazonaws.sqs#UnsupportedOperation", "message": operation})

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _sent(message: dict[str, Any]) -> dict[str, str]:
    """SQS's answer for one message it stored: its id and its body's MD5."""
    digest = hashlib.md5(message["MessageBody"].encode(), usedforsecurity=False).hexdigest()
    return {"MessageId": str(uuid.uuid4()), "MD5OfMessageBody": digest}


def main() -> None:
    server = StandIn(("127.0.0.1", 0), Handler)
    print(f"SQS stand-in listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
