"""The short form of bench/crash.py in CI: writers save participants, labs and adverse events while the server is
killed with SIGKILL and restarted; every acknowledged write must be there whole and the audit chain verify, on SQLite
and on PostgreSQL."""
import json
import os
import subprocess
import sys
import unittest
import urllib.parse
import uuid

from harness import databases, psql

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


class CrashTest(unittest.TestCase):
    def test_kills_lose_no_acknowledged_write(self):
        for database in databases():
            with self.subTest(database=database):
                env = dict(os.environ)
                name = None
                if database == "postgres":
                    admin = os.environ["CASEBOOK_TEST_POSTGRES_URL"]
                    name = "crash_" + uuid.uuid4().hex[:10]
                    psql(admin, "-c", f"CREATE DATABASE {name}")
                    env["DATABASE_URL"] = urllib.parse.urlparse(admin)._replace(path="/" + name).geturl()
                try:
                    run = subprocess.run(
                        [sys.executable, os.path.join(ROOT, "bench", "crash.py"), "--bin", os.environ["CASEBOOK_BIN"], "--database", database,
                         "--kills", "4", "--writers", "6", "--seed", "3"], env=env, capture_output=True, text=True, timeout=600)
                    self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
                    figures = json.loads(run.stdout.strip().splitlines()[-1])
                    self.assertEqual(figures["problems"], 0)
                    self.assertGreater(figures["acknowledged"], 50)
                    self.assertIn("intact", figures["audit"])
                finally:
                    if name:
                        psql(os.environ["CASEBOOK_TEST_POSTGRES_URL"], "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


if __name__ == "__main__":
    unittest.main()
