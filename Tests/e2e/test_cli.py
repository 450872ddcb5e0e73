"""The `casebook` command on a real database: configuration errors, accounts, migrations and audit verification."""
import re
import subprocess
import unittest

from harness import PASSWORD, Casebook, databases


class CommandLine(unittest.TestCase):
    def run_cli(self, casebook, *args, stdin=None, env=None):
        return subprocess.run([casebook.binary, *args], input=stdin, env=env or casebook.env, capture_output=True, text=True)

    def test_audit_verify_names_a_hand_edited_event(self):
        for database in databases():
            with self.subTest(database=database):
                casebook = Casebook(database)
                try:
                    seeded = int(re.search(r"(\d+) events verified", casebook.cli("audit", "verify").stdout).group(1))
                    casebook.cli("sites", "create", "--code", "S1", "--name", "Site one")
                    casebook.create_user("ana", "investigator", site="S1")
                    intact = self.run_cli(casebook, "audit", "verify")
                    self.assertEqual(intact.returncode, 0, intact.stderr)
                    # Site S1, the user and the membership: three events after what preparing the database wrote.
                    self.assertIn(f"{seeded + 3} events verified", intact.stdout)
                    casebook.sql("UPDATE audit_events SET actor = 'mallory' WHERE sequence = 2")
                    broken = self.run_cli(casebook, "audit", "verify")
                    self.assertNotEqual(broken.returncode, 0)
                    self.assertIn("broken at event 2", broken.stderr)
                finally:
                    casebook.stop()

    def test_users_and_tokens(self):
        for database in databases():
            with self.subTest(database=database):
                casebook = Casebook(database)
                try:
                    short = self.run_cli(casebook, "users", "create", "--username", "root", "--role", "admin", stdin="short\n")
                    self.assertNotEqual(short.returncode, 0)
                    self.assertIn("password: must be at least 12 characters", short.stderr)
                    role = self.run_cli(casebook, "users", "create", "--username", "root", "--role", "wizard", stdin=PASSWORD + "\n")
                    self.assertNotEqual(role.returncode, 0)
                    self.assertIn("--role must be one of", role.stderr)
                    nosite = self.run_cli(casebook, "users", "create", "--username", "ines", "--role", "investigator", stdin=PASSWORD + "\n")
                    self.assertNotEqual(nosite.returncode, 0)
                    self.assertIn("site:", nosite.stderr)
                    casebook.create_user("root", "admin")
                    token = casebook.cli("tokens", "create", "--username", "root").stdout.strip()
                    self.assertTrue(token.startswith("cbk_"), token)
                    stored = casebook.sql("SELECT token_hash FROM api_tokens")
                    self.assertNotIn(token, str(stored))
                    self.assertEqual(casebook.cli("users", "list").stdout.split("\t")[:2], ["root", "admin"])
                finally:
                    casebook.stop()

    def test_migrate_and_revert(self):
        casebook = Casebook()
        try:
            self.assertIn("is up to date", casebook.cli("migrate").stdout)
            self.assertIn("Reverted", casebook.cli("migrate", "--revert").stdout)
            tables = casebook.sql("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'audit_events'")
            self.assertEqual(tables, [])
            casebook.cli("migrate")
            self.assertEqual(len(casebook.sql("SELECT name FROM sqlite_master WHERE name = 'audit_events'")), 1)
            mode = casebook.sql("PRAGMA journal_mode")
            self.assertEqual(mode, [("wal",)])
        finally:
            casebook.stop()

    def test_bad_configuration_names_every_bad_variable(self):
        casebook = Casebook()
        try:
            env = dict(casebook.env, CASEBOOK_PORT="eighty", DATABASE_URL="mysql://db/x", LOG_LEVEL="loud")
            result = self.run_cli(casebook, "migrate", env=env)
            self.assertEqual(result.returncode, 2)
            for variable in ("CASEBOOK_PORT", "DATABASE_URL", "LOG_LEVEL"):
                self.assertIn(variable, result.stderr)
        finally:
            casebook.stop()


if __name__ == "__main__":
    unittest.main()
