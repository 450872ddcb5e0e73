"""Tamper-evident data, not only a tamper-evident log: a value changed behind the server's back, with SQL straight on
the database, is found by `casebook audit verify`, which names the table, the row and the field, on SQLite and on
PostgreSQL; put back, the data verify again."""
import json
import subprocess
import unittest

from harness import Casebook, databases



class TamperEvidentData(unittest.TestCase):
    def test_edits_behind_the_servers_back_are_found(self):
        for database in databases():
            with self.subTest(database=database):
                c = Casebook(database)
                try:
                    self.walk(c)
                finally:
                    c.stop()

    def verify(self, c):
        return subprocess.run([c.binary, "audit", "verify"], env=c.env, capture_output=True, text=True)

    def expect_found(self, c, edit, undo, table, field):
        c.sql(edit)
        result = self.verify(c)
        self.assertEqual(result.returncode, 1, result.stdout)
        self.assertIn(f"{table} row", result.stderr)
        self.assertIn(field, result.stderr)
        c.sql(undo)
        self.assertEqual(self.verify(c).returncode, 0)

    def walk(self, c):
        c.cli("demo", "--participants", "15", "--seed", "4")
        result = self.verify(c)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("data rows match", result.stdout)

        pid, number = c.rows("SELECT id, screening_number FROM participants ORDER BY screening_number")[0]
        self.expect_found(c, f"UPDATE participants SET screening_number = 'EDITED' WHERE id = '{pid}'",
                          f"UPDATE participants SET screening_number = '{number}' WHERE id = '{pid}'", "participants", "screening_number")
        lid, value = c.rows("SELECT id, entered_value FROM lab_results ORDER BY id")[0]
        self.expect_found(c, f"UPDATE lab_results SET entered_value = {float(value) + 1} WHERE id = '{lid}'",
                          f"UPDATE lab_results SET entered_value = {value} WHERE id = '{lid}'", "lab_results", "entered_value")
        fid, data = c.rows("SELECT id, data FROM form_records ORDER BY id")[0]
        edited = json.loads(data)
        key = sorted(edited)[0]
        edited[key] = "edited"
        quoted = lambda text: text.replace("'", "''")
        self.expect_found(c, f"UPDATE form_records SET data = '{quoted(json.dumps(edited))}' WHERE id = '{fid}'",
                          f"UPDATE form_records SET data = '{quoted(data)}' WHERE id = '{fid}'", "form_records", f"data.{key}")
        events = c.rows("SELECT id, grade FROM adverse_events ORDER BY id")
        if events:
            eid, grade = events[0]
            self.expect_found(c, f"UPDATE adverse_events SET grade = {int(grade) % 5 + 1} WHERE id = '{eid}'",
                              f"UPDATE adverse_events SET grade = {grade} WHERE id = '{eid}'", "adverse_events", "grade")
        # A row slipped in without its audit event.
        site, = c.rows("SELECT site_id FROM participants LIMIT 1")[0]
        c.sql("INSERT INTO participants (id, site_id, screening_number, status, created_at, updated_at, revision) "
              f"VALUES ('00000000-0000-4000-8000-000000000001', '{site}', 'GHOST', 'screening', "
              + ("0, 0, 0)" if c.database == "sqlite" else "now(), now(), 0)"))
        result = self.verify(c)
        self.assertEqual(result.returncode, 1)
        self.assertIn("00000000-0000-4000-8000-000000000001", result.stderr.upper())


if __name__ == "__main__":
    unittest.main()
