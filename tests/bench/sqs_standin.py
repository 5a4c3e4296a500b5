"""A small SQS stand-in for the peer benchmark (`scripts/bench_peer.py`): the JSON protocol
(awsJson1_0, what the AWS SDK for Rust and boto3 speak) for the operations a sync task uses, with
SQS's semantics for them: visibility timeouts, delays, receive counts and long polls. Not a test
double of anything else: the tests use moto.

Why not moto here: moto's ReceiveMessage costs about 250 ms of CPU with a few hundred messages
queued (measured on this machine), which caps any consumer near 40 messages/s and measures moto,
not the consumers. Here every operation is a dictionary or a short scan.

Usage: `python sqs_standin.py [--port 0]`; prints `listening on 127.0.0.1:PORT` when ready.
Signatures are not checked (as moto does not check them).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import socket
import struct
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ACCOUNT, REGION = "123456789012", "us-east-1"


def attributes_md5(attrs: dict) -> str:
    """MD5OfMessageAttributes as SQS computes it (names sorted; length-prefixed name, type,
    transport byte, value)."""
    out = b""
    for name in sorted(attrs):
        a = attrs[name]
        data_type = a["DataType"]
        out += struct.pack(">I", len(name.encode())) + name.encode()
        out += struct.pack(">I", len(data_type.encode())) + data_type.encode()
        if "StringValue" in a:
            v = a["StringValue"].encode()
            out += b"\x01" + struct.pack(">I", len(v)) + v
        else:
            import base64
            v = base64.b64decode(a.get("BinaryValue", ""))
            out += b"\x02" + struct.pack(">I", len(v)) + v
    return hashlib.md5(out).hexdigest()


class Queue:
    def __init__(self, name: str, attributes: dict):
        self.name = name
        self.attributes = {"VisibilityTimeout": "30", "DelaySeconds": "0", **attributes}
        self.messages: dict[str, dict] = {}  # by message id, in arrival order

    def arn(self) -> str:
        return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{self.name}"


class State:
    def __init__(self, endpoint: str):
        self.endpoint = endpoint
        self.queues: dict[str, Queue] = {}
        self.lock = threading.Condition()

    def queue(self, body: dict) -> Queue:
        url = body.get("QueueUrl", "")
        q = self.queues.get(url.rstrip("/").rsplit("/", 1)[-1])
        if q is None:
            raise Fault("AWS.SimpleQueueService.NonExistentQueue", f"no queue {url}")
        return q


class Fault(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def send(state: State, q: Queue, entry: dict) -> dict:
    body = entry["MessageBody"]
    delay = int(entry.get("DelaySeconds", q.attributes.get("DelaySeconds", 0)))
    attrs = entry.get("MessageAttributes") or {}
    mid = str(uuid.uuid4())
    now = time.time()
    q.messages[mid] = {"id": mid, "body": body, "attrs": attrs, "visible_at": now + delay,
                       "sent": int(now * 1000), "receives": 0, "receipt": None, "first": None}
    out = {"MessageId": mid, "MD5OfMessageBody": hashlib.md5(body.encode()).hexdigest()}
    if attrs:
        out["MD5OfMessageAttributes"] = attributes_md5(attrs)
    state.lock.notify_all()
    return out


def receive(state: State, q: Queue, body: dict) -> dict:
    count = int(body.get("MaxNumberOfMessages", 1))
    wait = float(body.get("WaitTimeSeconds", 0))
    visibility = int(body.get("VisibilityTimeout", q.attributes["VisibilityTimeout"]))
    deadline = time.time() + wait
    while True:
        now = time.time()
        got = []
        for m in q.messages.values():
            if m["visible_at"] <= now:
                got.append(m)
                if len(got) == count:
                    break
        if got or now >= deadline:
            break
        soonest = min((m["visible_at"] for m in q.messages.values()), default=deadline)
        state.lock.wait(timeout=max(0.001, min(deadline, soonest) - now))
    out = []
    for m in got:
        m["receives"] += 1
        m["receipt"] = f"{m['id']}#{uuid.uuid4()}"
        m["visible_at"] = now + visibility
        m["first"] = m["first"] or int(now * 1000)
        msg = {"MessageId": m["id"], "ReceiptHandle": m["receipt"], "Body": m["body"],
               "MD5OfBody": hashlib.md5(m["body"].encode()).hexdigest(),
               "Attributes": {"ApproximateReceiveCount": str(m["receives"]), "SentTimestamp": str(m["sent"]),
                              "ApproximateFirstReceiveTimestamp": str(m["first"]), "SenderId": ACCOUNT}}
        if m["attrs"]:
            msg["MessageAttributes"] = m["attrs"]
            msg["MD5OfMessageAttributes"] = attributes_md5(m["attrs"])
        out.append(msg)
    return {"Messages": out} if out else {}


def delete(q: Queue, receipt: str) -> bool:
    mid = receipt.split("#", 1)[0]
    m = q.messages.get(mid)
    if m is not None and m["receipt"] == receipt:
        del q.messages[mid]
    return True


def counts(q: Queue) -> dict:
    now = time.time()
    visible = sum(1 for m in q.messages.values() if m["visible_at"] <= now)
    delayed = sum(1 for m in q.messages.values() if m["receives"] == 0 and m["visible_at"] > now)
    return {"ApproximateNumberOfMessages": str(visible),
            "ApproximateNumberOfMessagesDelayed": str(delayed),
            "ApproximateNumberOfMessagesNotVisible": str(len(q.messages) - visible - delayed)}


def operate(state: State, op: str, body: dict) -> dict:
    if op == "CreateQueue":
        name = body["QueueName"]
        state.queues.setdefault(name, Queue(name, body.get("Attributes") or {}))
        return {"QueueUrl": f"{state.endpoint}/{ACCOUNT}/{name}"}
    if op == "GetQueueUrl":
        if body["QueueName"] not in state.queues:
            raise Fault("AWS.SimpleQueueService.NonExistentQueue", body["QueueName"])
        return {"QueueUrl": f"{state.endpoint}/{ACCOUNT}/{body['QueueName']}"}
    q = state.queue(body)
    if op == "GetQueueAttributes":
        every = {**q.attributes, **counts(q), "QueueArn": q.arn()}
        names = body.get("AttributeNames") or ["All"]
        return {"Attributes": every if "All" in names else {n: every[n] for n in names if n in every}}
    if op == "SendMessage":
        return send(state, q, body)
    if op == "SendMessageBatch":
        ok = []
        for e in body["Entries"]:
            ok.append({"Id": e["Id"], **send(state, q, e)})
        return {"Successful": ok, "Failed": []}
    if op == "ReceiveMessage":
        return receive(state, q, body)
    if op == "DeleteMessage":
        delete(q, body["ReceiptHandle"])
        return {}
    if op == "DeleteMessageBatch":
        return {"Successful": [{"Id": e["Id"]} for e in body["Entries"] if delete(q, e["ReceiptHandle"])],
                "Failed": []}
    if op == "ChangeMessageVisibility":
        m = q.messages.get(body["ReceiptHandle"].split("#", 1)[0])
        if m is not None and m["receipt"] == body["ReceiptHandle"]:
            m["visible_at"] = time.time() + int(body["VisibilityTimeout"])
        return {}
    if op == "PurgeQueue":
        q.messages.clear()
        return {}
    raise Fault("UnsupportedOperation", f"{op} is not served by this stand-in")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    state = State("")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):  # quiet
            pass

        def setup(self):
            super().setup()
            # Headers and body go out in two writes: without this, Nagle's algorithm and the
            # client's delayed ACK hold every answer ~40 ms.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_POST(self):
            length = int(self.headers.get("content-length", 0))
            raw = self.rfile.read(length)
            op = (self.headers.get("x-amz-target") or "").rsplit(".", 1)[-1]
            try:
                with state.lock:
                    out = operate(state, op, json.loads(raw or b"{}"))
                status, payload = 200, out
            except Fault as f:
                status, payload = 400, {"__type": f"com.amazonaws.sqs#{f.code}", "message": str(f)}
            except (KeyError, ValueError) as e:
                status, payload = 400, {"__type": "com.amazonaws.sqs#InvalidParameterValue", "message": repr(e)}
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/x-amz-json-1.0")
            self.send_header("x-amzn-requestid", str(uuid.uuid4()))
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    host, port = server.server_address[:2]
    state.endpoint = f"http://{host}:{port}"
    print(f"listening on {host}:{port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
