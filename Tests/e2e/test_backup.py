"""`casebook backup --output FILE` while another process writes, and `casebook restore FILE` into an empty
installation of the same engine, on SQLite and on PostgreSQL: the copy is one consistent moment (its audit chain
verifies), and a restore is refused, writing nothing, into a database with data, from the other engine, or from an
archive whose audit trail was edited."""
import os
import shutil
import sqlite3
import subprocess
import time
import unittest

from harness import Casebook, databases



class BackupAndRestore(unittest.TestCase):
    def test_online_backup_and_guarded_restore(self):
        for database in databases():
            with self.subTest(database=database):
                self.walk(database)

    def refused(self, casebook, archive, words):
        result = subprocess.run([casebook.binary, "restore", archive], env=casebook.env, capture_output=True, text=True)
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertIn(words, result.stderr)

    def walk(self, database):
        source, target, other = Casebook(database), Casebook(database), Casebook("sqlite" if database == "postgres" else database)
        try:
            archive = os.path.join(source.dir.name, "casebook.backup")
            source.cli("migrate")
            # Online: the backup runs while another process writes a trial into the same database.
            writer = subprocess.Popen([source.binary, "demo", "--participants", "80", "--seed", "2"], env=source.env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            time.sleep(2)
            out = source.cli("backup", "--output", archive).stdout
            self.assertIn("backup", out)
            _, errors = writer.communicate(timeout=300)
            self.assertEqual(writer.returncode, 0, errors)
            # The copy taken mid-write is one consistent moment: restored, its chain verifies and it holds part of the trial.
            online = os.path.join(source.dir.name, "online.backup")
            shutil.copy(archive, online)
            midway = Casebook(database)
            try:
                self.assertIn("audit trail intact", midway.cli("restore", online).stdout)
                self.assertIn("Audit trail intact", midway.cli("audit", "verify").stdout)
                self.assertLessEqual(midway.scalar("SELECT COUNT(*) FROM participants"), source.scalar("SELECT COUNT(*) FROM participants"))
            finally:
                midway.stop()
            # Written again over the first, once the writer is done: replaced whole.
            source.cli("backup", "--output", archive)

            restored = target.cli("restore", archive).stdout
            self.assertIn("audit trail intact", restored)
            self.assertIn("Audit trail intact", target.cli("audit", "verify").stdout)
            self.assertEqual(target.scalar("SELECT COUNT(*) FROM participants"), source.scalar("SELECT COUNT(*) FROM participants"))
            self.assertEqual(target.scalar("SELECT COUNT(*) FROM audit_events"), source.scalar("SELECT COUNT(*) FROM audit_events"))

            # Refused: a database that already holds data.
            self.refused(target, archive, "already holds data")
            # Refused: an archive of the other engine.
            if database == "postgres" or "CASEBOOK_TEST_POSTGRES_URL" in os.environ:
                mismatch = Casebook("postgres") if database == "sqlite" else other
                try:
                    self.refused(mismatch, archive, "restore it into a")
                finally:
                    if mismatch is not other:
                        mismatch.stop()
            # Refused: an archive whose audit trail was edited; the empty target stays empty.
            tampered = os.path.join(source.dir.name, "tampered.backup")
            if database == "sqlite":
                shutil.copy(archive, tampered)
                with sqlite3.connect(tampered) as connection:
                    connection.execute("UPDATE audit_events SET reason = 'edited by hand' WHERE sequence = 3")
            else:
                target.sql("UPDATE audit_events SET reason = 'edited by hand' WHERE sequence = 3")
                target.cli("backup", "--output", tampered)
            empty = Casebook(database)
            try:
                self.refused(empty, tampered, "audit trail is broken at event 3")
                if database == "sqlite":
                    if os.path.exists(empty.sqlite_path):
                        with sqlite3.connect(empty.sqlite_path) as connection:
                            self.assertEqual(connection.execute("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0], 0)
                else:
                    tables = empty.scalar("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema()")
                    self.assertEqual(tables, 0, "nothing kept of a refused archive")
            finally:
                empty.stop()
            self.refused(target, os.path.join(source.dir.name, "missing.backup"), "cannot be read")
        finally:
            source.stop()
            target.stop()
            other.stop()


if __name__ == "__main__":
    unittest.main()
