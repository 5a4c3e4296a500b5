"""Sections 7 to 12 of BENCHMARKS.md (memory under Lambda's limits, parts in flight over a slow
link, fan-out, the peer copier, cost per million objects, batch size) and the profile findings;
`bench_report.py` puts them together."""

from __future__ import annotations

from bench_report_basics import requests  # beside this script


PROFILE = """## Profile findings

Recorded with `BENCH_PROFILE=1 python3 scripts/bench.py large` (release code with symbols,
`perf record -e cpu-clock`, files in `target/bench-profile/`; this machine offers no hardware
counters), read with `perf report --no-children --sort symbol`. In the order they were found:

- **CRC-64 and MD5 in the uploader (fixed).** The first run of this harness measured the copy at
  100 MiB/s against 134 MiB/s PUT only, with 6.5 CPU seconds per GiB in the uploading process.
  The PUT-only profile put 74% of its samples in the table-driven CRC-64 (the `crc` crate's
  byte-at-a-time table, run twice per byte: per part and for the whole object) and 20% in MD5
  for each part's `Content-MD5`. The CRC is now `crc-fast` (carry-less multiply: PCLMULQDQ or
  VPCLMULQDQ on x86-64, PMULL on Graviton), computed once per part and combined for the whole
  object (`checksum::crc64_combine`); parts no longer carry `Content-MD5`, since OSS's CRC-64 of
  each part is compared with ours anyway, as the vendor's SDKs do. The emulator's CRC (it reports
  `x-oss-hash-crc64ecma` like OSS) uses the same code. The upload's client CPU fell to about
  0.75 seconds per GiB and PUT only ran about 5× faster.
- **Page faults from part buffers (fixed).** With hashing cheap, the copy's profile showed a
  quarter of the client's samples in the kernel's page-fault, page-clearing and unmapping paths:
  each 8 MiB part was a fresh mapping. Part buffers are now reused once their part is uploaded
  (at most parts in flight exist); the client's CPU per GiB copied fell from about 1.3 to 0.8
  seconds.
- **The source server was the limit (fixed in the harness).** s3s-fs's own binary reads a GET's
  file in 4 KiB pieces, each a round trip through tokio's blocking pool: GET only managed about
  180 MiB/s with the server busy and the client idle, and the server did less work per byte when
  the copy paced it, so the copy even "beat" its GET-only limit. `tests/bench/s3-source` serves
  the same s3s-fs but reads whole-object GETs in 256 KiB pieces.
- **40 ms stalls (fixed in the harness and the emulator).** The first small-object run copied
  200 objects/s, and one job in three took 43–46 ms instead of 1–2 ms: the servers did not set
  `TCP_NODELAY`, so an answer written in two parts waited for the client's delayed ACK.
  `tests/bench/s3-source` and the OSS emulator now set it, as real front ends do; the same
  objects then copied at about 1,800 objects/s.
- **Allocator (fixed).** Peak memory of the 1 GiB copy varied between 58 and 67 MiB from run to
  run: glibc's sliding mmap threshold kept freed 8 MiB part buffers in per-thread heaps. A fixed
  threshold (`telemetry::tune_allocator`, called first in both functions) brings it under 50 MiB.
- **Duplicates (fixed in the harness).** s3s-fs lists no ETags, so the first harness built events
  with an empty `eTag`, which cost each duplicate a source GET; events now carry the object's
  ETag as S3's do, and the event parser treats an empty `eTag` as none.
- **Cold start after the dependency upgrade (not fixed; measured in §4).** reqwest 0.13's rustls
  checks certificates with rustls-platform-verifier, which reads and parses the system's CA
  bundle when the OSS client is built (reqwest 0.12 compiled in webpki-roots): about 6 ms more
  before the first `GET /runtime/invocation/next` on this machine (7.7 → 13.9 ms, the median of
  five alternating rounds), the events themselves unchanged. In return the OSS client trusts
  what the system trusts (`SSL_CERT_FILE`, a company's CA), as the AWS SDK does. Handing reqwest a
  rustls configuration with compiled-in roots would take the 6 ms back; every test endpoint is
  plain http, so no test would catch a mistake there, and it is left for a change that can test
  TLS. The binaries are 2% smaller (ring and webpki-roots left the tree). The arm64 bootstraps
  before the upgrade were 13.70 MB (sync) and 13.82 MB (report); `make build` prints them now.
"""


BUDGET_HEADING = "## 7. Memory under Lambda's limits"


def budget_section(rows: list[dict], cmds: dict) -> str:
    def row(r: dict) -> str:
        within = "yes" if r["peak_rss_mib"] <= r["function_memory_mb"] else "**no**"
        return (f"| {r['function_memory_mb']} MB | {r['memory_budget_mib']} MiB | "
                f"{r['peak_rss_mib']} MiB | {within} | {r['seconds']:.1f} s | "
                f"{r['failed_messages']} |")
    first = rows[0]
    jobs = min(first["concurrency"], first["objects"])
    wanted = jobs * 4 * 8
    rests = [r["peak_rss_mib"] - min(r["memory_budget_mib"], wanted) for r in rows]
    rest = f"{min(rests):.1f}–{max(rests):.1f}"
    return f"""{BUDGET_HEADING}

One SQS batch of {first['objects']} objects of 100 MiB through the sync handler, as a function
with 128, 256 and 1024 MB of memory runs it: `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` set for the
measured process, every other setting its default (`SYNC_CONCURRENCY` {first['concurrency']},
parts of 8 MiB, 4 in flight per object: {jobs} jobs at once want {wanted} MiB of part buffers). All jobs take
their part buffers from one memory budget, the function's memory less the process's own 48 MiB
(`config::FIXED_OVERHEAD_MIB`); jobs wait for buffers rather than exceed it.

| function memory | budget | peak RSS | within the memory | batch time | failed messages |
| --- | --- | --- | --- | --- | --- |
{chr(10).join(row(r) for r in rows)}

Peak RSS less the buffers allowed at once (the budget, or the {wanted} MiB wanted if less):
{rest} MiB, the process's own memory with {jobs} large jobs, within the 48 MiB left for it. Without
the budget, the same defaults would hold up to {jobs} × 4 × 8 MiB = {wanted} MiB of part buffers, over a
128 or 256 MB function's memory.

Command: `{cmds['budget']}` (after `sync-bench seed-large` of each object), for MB in 128, 256,
1024; regenerate this section alone with `python3 scripts/bench.py budget`.
"""


PARALLEL_HEADING = "## 8. Parts in flight over a slow link"


def parallel_section(par: dict, cmds: dict) -> str:
    mib = 1048576
    cap = par["cap_bytes_per_sec"] / mib
    lat_ms = par["latency_ms"]
    part_mib, waves, cores = par["part_mib"], par["waves"], par["cores"]
    part_s = part_mib / cap

    def speed(run: dict) -> float:
        return run["bytes"] / mib / run["seconds"]

    table, worst, lost, others, busiest = [], 1.0, [], set(), 0.0
    for p_text, rows in par["rows"].items():
        p = int(p_text)
        ceiling = p * cap
        ratios = [speed(x) / ceiling for x in rows]
        worst = min(worst, *ratios)
        r = sorted(rows, key=speed)[len(rows) // 2]  # the median run
        parts = r["bytes"] // (part_mib * mib)
        w = -(-parts // p)
        other = r["oss_requests"] - r["parts_stored"]
        others.add(other)
        # What the emulator itself imposes: each part waits the latency, then its body is read
        # at the cap; each other OSS request of the copy (one after another) waits the latency.
        bound_s = w * (lat_ms / 1000 + part_s) + other * lat_ms / 1000
        bound = r["bytes"] / mib / bound_s / ceiling
        beyond_ms = (r["seconds"] - bound_s) / w * 1000
        read = r["source_read"]
        busy = (r["cpu_seconds"] + sum(r["server_cpu_seconds"].values())) / r["seconds"]
        busiest = max(busiest, busy)
        lost.append((p, beyond_ms, read["part_read_ms_median"]))
        table.append(
            f"| {p} | {r['bytes'] / mib:.0f} MiB | {r['seconds']:.2f} s | {speed(r):.1f} | "
            f"{ceiling:g} | **{speed(r) / ceiling:.2f}** ({min(ratios):.2f}–{max(ratios):.2f}) | "
            f"{r['parts_stored']} of {parts} | {r['s3_requests'].get('GET', 0)} | {bound:.2f} | "
            f"{beyond_ms:.0f} ms | {read['part_read_ms_median']:.0f} ms | "
            f"{r['cpu_seconds']:.2f} s | {busy:.2f} |")
    rounds = len(next(iter(par["rows"].values())))
    other = others.pop() if len(others) == 1 else None
    named = " (the destination HEAD, the initiation and the completion)" if other == 3 else ""
    other_text = (f"its {other} other OSS requests{named}" if other is not None
                  else "its other OSS requests")
    verdict = "met" if worst >= 0.8 else "missed"
    cores_text = (f"The cores are not what limits these runs: at most {busiest:.2f} of {cores} busy."
                  if busiest < 0.75 * cores else
                  f"The cores were busy too (up to {busiest:.2f} of {cores}): client and servers "
                  "share them here.")
    per_wave = "; ".join(f"P = {p}: {b:.0f} ms beyond the bound per wave, {m:.0f} ms to read a part"
                         for p, b, m in lost)
    return f"""{PARALLEL_HEADING}

One object copied through the sync handler as in section 1 (one S3 event; the service the
function builds, so a resumable copy in parts: each part read from the source by its own ranged
GET pinned to the object's ETag, then uploaded, `OSS_PARTS_IN_FLIGHT` parts at once, progress in
a checkpoint in the results bucket), to an emulator that waits {lat_ms} ms before every answer
and reads each request body at {cap:g} MiB/s: a long link whose connections are each capped. With
P = 1, 4 and 16 parts in flight, the object has {waves} parts of {part_mib} MiB per part in flight
(P × {waves * part_mib} MiB), so every run lasts about as long and has {waves} waves of parts; the
ceiling is P connections × {cap:g} MiB/s. {rounds} rounds, P alternating; the emulator is emptied
(its faults set again) before each copy, and after each copy the same parts are read from the
source alone, P at once (`get-ranges`), to time the source's share.

| parts in flight (P) | object | copy time | copy (MiB/s) | ceiling (MiB/s) | ratio (all rounds) | parts stored | source GETs | the emulator's bound | beyond the bound, per wave | one part's source read, P at once | client CPU | cores busy (of {cores}) |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
{chr(10).join(table)}

Rows are each P's median round. "Parts stored" is the emulator's count of UploadPart requests
stored against the object's parts (equal: no part was sent twice); "source GETs" are the copy's
ranged reads (one per part: the resumable path). CPU is the client's own and, for cores busy, the
client's with both servers', over the copy's time.

**Ratio: at least {worst:.2f} of P × {cap:g} MiB/s for every P in every round** (target ≥ 0.8:
{verdict}).

**Where the rest goes.** The emulator's bound is the best a copier spending no time of its own
could do against it: every part waits {lat_ms} ms before its body is read at the cap, and so do
{other_text}, one after another; so a run takes at least waves × ({lat_ms} ms +
{part_mib} MiB ÷ {cap:g} MiB/s) plus {lat_ms} ms per other request. The part size sets most of that
bound (the latency is paid once per part: larger parts pay it less often). The copier's own share
is the time beyond the bound: {per_wave}. The two grow together because each in-flight slot
reads its part from the source (`sync::resume`, `ResumableCopy::part`) before it starts uploading it:
a part's read is added to every wave, and the more parts are read at once, the longer each read
takes on this machine (P ranged reads share the source server and the loopback). {cores_text}

Commands: `{cmds.get('parallel')}` and `{cmds.get('parallel-reads')}` for P in 1, 4, 16 (after
`{cmds.get('seed-parallel')}` with MIB = P × {waves * part_mib}), against
`{cmds.get('parallel-emulator')}`; regenerate this section alone with
`python3 scripts/bench.py parallel`.
"""


def fanout_section(result: dict) -> str:
    import bench_fanout  # noqa: E402  (beside this script)

    return bench_fanout.render(result).replace(
        "Command: `.venv/bin/python scripts/bench_fanout.py` (release `sync` and `oss-emulator`).",
        "Command: `.venv/bin/python scripts/bench_fanout.py` (release `sync` and `oss-emulator`); regenerate\n"
        "this section alone with `python3 scripts/bench.py fanout`.")


FANOUT_HEADING = "## 9. Fan-out"
PEER_HEADING = "## 10. Peer: a typical Python copier"
COST_HEADING = "## 11. Cost per million objects"
SMALL_HEADING = "## 3. Small objects through the handler"
LARGE_HEADING = "## 1. Large object"
MEMORY_HEADING = "## 2. Peak memory of the copy"


def peer_section(result: dict) -> str:
    rows = "\n".join(
        f"| {r['latency_ms']} ms | {r['python']} | {r['sync']} | **{r['ratio']}×** | {r['sync_batches_1']} | "
        f"{r['ratio_batches_1']}× | {r['drained_seconds']} s |"
        for r in result["rows"])
    slow = [r for r in result["rows"] if r["latency_ms"] > 0]
    first = result["rows"][0]
    return f"""{PEER_HEADING}

What a team would write instead (`scripts/peer_copier.py`: receive up to 10 messages, boto3
`get_object`, the official OSS SDK's `put_object`, delete the message; one at a time) against
`sync poll --batches 5` (5 batches in flight, as Lambda's pollers start; every job of a batch at
once), and with `--batches 1` (one batch at a time, as one Lambda instance works; the default). One process each, the same
{result['objects']} S3 events of {result['size'] // 1024} KiB objects, the same servers: s3s-fs for S3 (source and
results), an SQS stand-in (`tests/bench/sqs_standin.py`: SQS's JSON protocol with its visibility
timeouts, delays, receive counts and long polls), the OSS emulator with 0, 20 or 100 ms added to
every answer (the distance from an AWS region to an OSS region). Objects per second to the last
copy landed; medians of {result['rounds']} alternating rounds.

| OSS latency | typical Python | s3-oss-sync | ratio | `--batches 1` | ratio | all rechecks done |
| --- | --- | --- | --- | --- | --- | --- |
{rows}

**s3-oss-sync is {' and '.join(f"{r['ratio']}× at {r['latency_ms']} ms" for r in slow)} the Python copier** (target: 5×).
Per fresh object `sync poll` makes {first['requests_per_copy']} requests in its job (source GET, OSS PUT,
source HEAD: one OSS round trip, as the Python copier; above 3 because the fresh process's first
batches, received before OSS had accepted any of its requests, read the destination first) and
its write-ahead recheck {first['requests_per_recheck']} more when it comes back ({first['oss_requests_per_object']} OSS requests per object in all,
against {first['python_oss_requests_per_object']} for the Python copier, which checks nothing). The rechecks come back
{result['invocation_timeout_s'] + 2} s after their write (the invocation timeout given to `sync poll`, plus 2 s);
"all rechecks done" is when the queue was empty. Recheck outcomes: {first['recheck_outcomes']}.

Why not moto, which the end-to-end tests use: on this machine moto serves an S3 request in about
13 ms and a ReceiveMessage in about 250 ms once a few hundred messages are queued (Python, one
core). With moto for both S3 and SQS, at 0/20/100 ms the Python copier made 36.8/18.8/7.4
objects/s and `sync poll` (before its write-aheads were batched) 18.6/18.3/18.4: both measured
moto. At 0 ms both copiers here are bound by this machine's two cores, shared with the three
servers.

Command: `.venv/bin/python scripts/bench_peer.py` (release `sync`, `oss-emulator`, `s3-source`);
regenerate this section alone with `python3 scripts/bench.py peer`.
"""


# AWS list prices, us-east-1, and Alibaba Cloud OSS list prices (international site), as published
# on their pricing pages in 2026; check the current pages before relying on them.
PRICES = {
    "lambda_gb_s": 0.0000133334,  # Arm
    "lambda_request": 0.20 / 1e6,
    "s3_get": 0.0004 / 1000,  # GET, HEAD
    "s3_put": 0.005 / 1000,  # PUT, LIST
    "sqs_request": 0.40 / 1e6,  # standard queue, per 64 KiB chunk
    "oss_request": 0.01 / 10000,  # PUT or GET class, Standard
    "egress_gb": 0.09,  # AWS data transfer out to the internet, first 10 TB
}


BATCH_HEADING = "## 12. Batch size: what an invocation costs"


def batch_section(rows: list[dict], cmds: dict, memory_mb: int = 256) -> str:
    table = "\n".join(
        f"| {r['latency_ms']} ms | {r['batch']} | {r['objects_per_sec']:,.0f} | {r['ms_per_invocation']} ms | "
        f"{memory_mb / 1024 * r['ms_per_invocation'] / 1000 * 1e6 / r['batch']:,.0f} |"
        for r in rows)
    return f"""{BATCH_HEADING}

{rows[0]['objects']:,} fresh 4 KiB copies through the handler in batches of 10, 50 and 100, every job of a
batch at once (the default), against the OSS emulator with 20 and 100 ms added to every answer.
An invocation lasts about one copy (its jobs overlap) plus the batch's own requests, so Lambda's
bill per object falls with the batch size, while the batching window a batch over 10 needs adds
latency at low traffic.

| OSS latency | batch | objects/s | per invocation | GB-s per million objects ({memory_mb} MB) |
| --- | --- | --- | --- | --- |
{table}

Command: `{cmds.get('batch-size')}` for each batch size and latency; regenerate this section alone
with `python3 scripts/bench.py batch`.
"""



def cost_section(small: dict, batch_rows: list[dict], memory_mb: int = 256, batch: int = 100) -> str:
    """Cost per million fresh objects with the template's defaults (batches of `batch`), from the
    measured request counts (§3) and invocation times (§12)."""
    n = 1e6
    fresh, recheck = small["fresh"], small["recheck"]
    per = lambda r, key: r["s3_requests"].get(key, 0) / r["objects"]  # noqa: E731
    s3_get = per(fresh, "GET") + per(fresh, "HEAD") + per(recheck, "GET") + per(recheck, "HEAD")
    s3_put = 2 / batch  # one results object per invocation: the copies' and the rechecks'
    oss = fresh["oss_requests"] / fresh["objects"] + recheck["oss_requests"] / recheck["objects"]
    # S3's notification; Lambda receives and deletes ten at a time, for the messages and for
    # their rechecks; the write-aheads go ten to a SendMessageBatch.
    sqs = 1 + 2 * 0.1 + 0.1 + 2 * 0.1
    invocations = 2 / batch
    rows = []
    for r in batch_rows:
        if r["batch"] != batch:
            continue
        copy_s = r["ms_per_invocation"] / 1000
        # A batch of rechecks: a destination HEAD over the link and a source HEAD per key, at once.
        recheck_s = r["latency_ms"] / 1000 + 0.01
        gb_s = memory_mb / 1024 * (copy_s + recheck_s) * n / batch
        costs = {
            "Lambda": gb_s * PRICES["lambda_gb_s"] + invocations * n * PRICES["lambda_request"],
            "S3": s3_get * n * PRICES["s3_get"] + s3_put * n * PRICES["s3_put"],
            "SQS": sqs * n * PRICES["sqs_request"],
            "OSS": oss * n * PRICES["oss_request"],
            "egress": 4096 * n / 1e9 * PRICES["egress_gb"],
        }
        requests_only = sum(costs.values()) - costs["egress"]
        rows.append(f"| {r['latency_ms']} ms | {gb_s:,.0f} GB-s (${costs['Lambda']:.2f}) | "
                    f"{s3_get * n:,.0f} GET/HEAD + {s3_put * n:,.0f} PUT (${costs['S3']:.2f}) | "
                    f"{sqs * n:,.0f} (${costs['SQS']:.2f}) | {oss * n:,.0f} (${costs['OSS']:.2f}) | "
                    f"${costs['egress']:.2f} | **${sum(costs.values()):.2f}** |")
    table = "\n".join(rows)
    # What batches of 10 would add: results writes and invocations (Lambda time: §12).
    extra_tens = (2 / 10 - s3_put) * n * PRICES["s3_put"] + (2 / 10 - invocations) * n * PRICES["lambda_request"]
    # Egress per KiB of object per million objects: where it overtakes everything else.
    per_kib = 1024 * n / 1e9 * PRICES["egress_gb"]
    crossover = requests_only / per_kib
    return f"""{COST_HEADING}

A million fresh 4 KiB objects with the template's defaults (batches of {batch}, a {memory_mb} MB Arm
function), each copied once and rechecked once. Requests per object as counted in §3 (S3, OSS)
and from the protocol (SQS); Lambda time per invocation as measured in §12 for a batch of
{batch} copies, plus one link round trip for a batch of rechecks.

| OSS latency | Lambda | S3 requests | SQS requests | OSS requests | egress (4 GB) | total |
| --- | --- | --- | --- | --- | --- | --- |
{table}

Per object: S3 {s3_get:.1f} GET/HEAD (the copy's GET and confirming HEAD, the recheck's HEAD) and
{s3_put:.2f} PUT (records); SQS {sqs:.1f} (S3's notification; Lambda's receives and deletes, ten
messages each, for the message and for its recheck; the write-aheads, ten to a SendMessageBatch);
OSS {oss:.1f} (the PUT, the recheck's HEAD); {invocations:.2f} Lambda invocations. Not included:
Lambda's idle long polls (its pollers' empty receives, about 0.65 million a month per idle
queue), the results store's storage, Secrets Manager reads (one per cold start), CloudWatch Logs
(about 1 KB per record). For objects this small the requests are most of the bill; AWS's egress
to the internet (${per_kib:.3f} per KiB of object per million objects, the same for any copier)
overtakes everything else from about {crossover:.0f} KiB per object. An S3 duplicate notification
costs one more copy of its object (§3). Batches of 10 would add ${extra_tens:.2f} per million in results
writes and invocations, and the Lambda time §12 shows (the README's Deployment section weighs
this against latency).

Prices: AWS us-east-1 list prices (Lambda Arm $0.0000133334 per GB-s and $0.20 per million
requests; S3 Standard $0.0004 per 1,000 GET/HEAD and $0.005 per 1,000 PUT; SQS standard $0.40 per
million requests; data transfer out $0.09 per GB) and OSS Standard request fees of $0.01 per
10,000 (international site), as published on 2026-12-01; free tiers left out.
"""
