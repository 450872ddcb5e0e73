#!/usr/bin/env python3
"""Crash test: writers save participants, lab results and adverse events through the JSON API while the server is
killed with SIGKILL at random moments and started again. At the end every write answered 2xx must be there whole,
no row may be there without its audit event (nor an event without its row), and the audit chain must verify.

    bench/crash.py --bin .build/release/casebook [--database sqlite|postgres] [--kills 20] [--writers 8] [--seed 1]

PostgreSQL: set DATABASE_URL to an empty database (the cluster's fsync and synchronous_commit are what they are:
say so beside the figures). Prints one line of figures; exit 1 on any loss or inconsistency.
"""
import argparse
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

PASSWORD = "correct horse battery staple"
TESTS = [("ALT", "U/L", 55), ("AST", "U/L", 60), ("BILI", "umol/L", 120), ("INR", "ratio", 1.4), ("GGT", "U/L", 90),
         ("CREAT", "umol/L", 90), ("SODIUM", "mmol/L", 136), ("ALB", "g/L", 32), ("PLAT", "10^9/L", 110), ("WBC", "10^9/L", 6)]
VISITS = ["screening", "baseline", "day_7", "day_14", "day_28", "month_3", "month_6"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Installation:
    def __init__(self, binary, database):
        self.binary, self.database = binary, database
        self.dir = tempfile.mkdtemp(prefix="casebook-crash-")
        self.env = dict(os.environ, LOG_LEVEL="warning", CASEBOOK_MONITOR_SECONDS="0")
        if database == "sqlite":
            self.env.pop("DATABASE_URL", None)
            self.env["CASEBOOK_SQLITE_PATH"] = os.path.join(self.dir, "casebook.sqlite")
        elif not self.env.get("DATABASE_URL"):
            sys.exit("crash.py: --database postgres needs DATABASE_URL (an empty database)")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None

    def cli(self, *args, stdin=None):
        return subprocess.run([self.binary, *args], env=self.env, input=stdin, capture_output=True, text=True, check=True).stdout

    def start(self):
        log = open(os.path.join(self.dir, "server.log"), "a")
        self.process = subprocess.Popen([self.binary, "serve", "--port", str(self.port)], env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/ready", timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the server did not become ready")

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def sql(self, statement):
        if self.database == "sqlite":
            with sqlite3.connect(self.env["CASEBOOK_SQLITE_PATH"]) as c:
                return [[None if v is None else str(v) for v in row] for row in c.execute(statement).fetchall()]
        out = subprocess.run(["psql", "-At", "-F", "\t", self.env["DATABASE_URL"], "-c", statement], capture_output=True, text=True, check=True).stdout
        return [line.split("\t") for line in out.splitlines() if line]


class Writers:
    """Each writer records what the server acknowledged; a write cut off by the kill is only attempted."""

    def __init__(self, inst, token, allocated, rng):
        self.inst, self.token, self.allocated, self.rng = inst, token, allocated, rng
        self.lock = threading.Lock()
        self.participants, self.labs, self.events = {}, {}, set()
        self.attempted = 0
        self.counter = 0

    def post(self, path, body):
        request = urllib.request.Request(self.inst.url + path, data=json.dumps(body).encode(), method="POST",
                                         headers={"Authorization": "Bearer " + self.token, "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, json.load(r)

    def step(self, number):
        kind = number % 3
        with self.lock:
            self.attempted += 1
        if kind == 0:
            screening = f"CR-{number:07d}"
            status, body = self.post("/api/v1/participants", {"siteCode": "SYSU3", "screeningNumber": screening})
            with self.lock:
                self.participants[body["id"]] = screening
        elif kind == 1:
            with self.lock:
                owners = list(self.participants)
            if not owners:
                return
            owner = owners[number % len(owners)]
            slot = (number // 3) % (len(TESTS) * len(VISITS))
            test, unit, value = TESTS[slot % len(TESTS)]
            visit = VISITS[slot // len(TESTS)]
            value = round(value * (1 + (number % 7) / 10), 2)
            collected = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(time.time() - 3600))
            status, body = self.post(f"/api/v1/participants/{owner}/labs", {"visit": visit, "test": test, "value": value, "unit": unit, "collectedAt": collected})
            with self.lock:
                self.labs[body["id"]] = value
        else:
            owner = self.allocated[number % len(self.allocated)]
            onset = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(time.time() - 7200))
            status, body = self.post(f"/api/v1/participants/{owner}/adverse-events", {
                "meddra": "10016558", "grade": 1, "onsetAt": onset, "attribution": "unlikely", "expected": False,
                "actionTaken": "none", "outcome": "recovered"})
            with self.lock:
                self.events.add(body["id"])

    def run(self, stop):
        while not stop.is_set():
            with self.lock:
                self.counter += 1
                number = self.counter
            try:
                self.step(number)
            except urllib.error.HTTPError as error:
                if error.code >= 500 and not stop.is_set():
                    print(f"server error {error.code}: {error.read()[:200]!r}", file=sys.stderr)
            except (OSError, ValueError):
                time.sleep(0.05)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", required=True)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    inst = Installation(os.path.abspath(args.bin), args.database)
    inst.cli("demo", "--participants", "12", "--seed", str(args.seed))
    inst.cli("users", "create", "--username", "crash", "--role", "coordinator", "--site", "SYSU3", stdin=PASSWORD + "\n")
    token = inst.cli("tokens", "create", "--username", "crash").strip()
    allocated = [row[0].lower() for row in inst.sql("SELECT participant_id FROM randomization_slots WHERE participant_id IS NOT NULL")]
    writers = Writers(inst, token, allocated, rng)
    started = time.time()
    for kill in range(args.kills + 1):
        inst.start()
        stop = threading.Event()
        threads = [threading.Thread(target=writers.run, args=(stop,)) for _ in range(args.writers)]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.3, 2.0) if kill < args.kills else 1.0)
        if kill < args.kills:
            inst.kill()
            stop.set()
        else:
            stop.set()
        for t in threads:
            t.join()
        if kill == args.kills:
            inst.process.terminate()
            inst.process.wait()

    problems = []
    participants = {row[0].lower(): row[1] for row in inst.sql("SELECT id, screening_number FROM participants")}
    for pid, number in writers.participants.items():
        if participants.get(pid.lower()) != number:
            problems.append(f"participant {pid} ({number}) acknowledged but missing")
    labs = {row[0].lower(): float(row[1]) for row in inst.sql("SELECT id, entered_value FROM lab_results")}
    for lid, value in writers.labs.items():
        if lid.lower() not in labs:
            problems.append(f"lab result {lid} acknowledged but missing")
        elif abs(labs[lid.lower()] - value) > 1e-9:
            problems.append(f"lab result {lid}: {labs[lid.lower()]} stored, {value} acknowledged")
    events = {row[0].lower() for row in inst.sql("SELECT id FROM adverse_events")}
    for eid in writers.events:
        if eid.lower() not in events:
            problems.append(f"adverse event {eid} acknowledged but missing")
    # Nothing half there: each row has its creation event and each creation event its row.
    for table, entity in [("participants", "participant"), ("lab_results", "lab_result"), ("adverse_events", "adverse_event")]:
        rows = {row[0].lower() for row in inst.sql(f"SELECT id FROM {table}")}
        audited = {row[0].lower() for row in inst.sql(f"SELECT entity_id FROM audit_events WHERE entity = '{entity}' AND action = 'create'")}
        if rows - audited:
            problems.append(f"{table}: {len(rows - audited)} rows without their audit event")
        if audited - rows:
            problems.append(f"{table}: {len(audited - rows)} audit events without their row")
    try:
        verified = inst.cli("audit", "verify").strip()
    except subprocess.CalledProcessError as error:
        problems.append("audit verify: " + (error.stderr or error.stdout).strip())
        verified = ""
    acknowledged = len(writers.participants) + len(writers.labs) + len(writers.events)
    print(json.dumps({
        "database": args.database, "kills": args.kills, "writers": args.writers, "seconds": round(time.time() - started, 1),
        "attempted": writers.attempted, "acknowledged": acknowledged, "participants": len(writers.participants),
        "labs": len(writers.labs), "adverseEvents": len(writers.events), "problems": len(problems), "audit": verified}))
    for p in problems[:20]:
        print(p, file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
