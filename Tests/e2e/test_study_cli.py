"""`casebook study …` against a real database: show, validate, import and amendments."""
import json
import os
import subprocess
import tempfile
import unittest

from harness import Casebook, databases

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILT_IN = os.path.join(ROOT, "Sources", "TrialStandards", "Studies", "msc-ev-aclf-lt.yaml")
SEED_RECORD = os.path.join(ROOT, "..", "shared", "protocol", "registry-record.txt")
CTGOV_FIXTURE = os.path.join(ROOT, "Tests", "TrialStandardsTests", "Fixtures", "ctgov-study.json")


class StudyCommands(unittest.TestCase):
    def run_cli(self, casebook, *args):
        return subprocess.run([casebook.binary, *args], env=casebook.env, capture_output=True, text=True)

    def test_a_fresh_database_shows_the_built_in_study(self):
        for database in databases():
            with self.subTest(database=database):
                casebook = Casebook(database)
                try:
                    text = casebook.cli("study", "show").stdout
                    self.assertIn("MSC-EV-ACLF-LT · version 1 · Withdrawn", text)
                    self.assertIn("1×10^10 particles in 100 mL, intravenous, single dose", text)
                    study = json.loads(casebook.cli("study", "show", "--json").stdout)
                    self.assertEqual([arm["code"] for arm in study["arms"]], ["msc_ev", "control"])
                    self.assertEqual(study["randomization"]["blockSizes"], [2, 4])
                finally:
                    casebook.stop()

    def test_validate_names_every_problem(self):
        casebook = Casebook()
        try:
            ok = self.run_cli(casebook, "study", "validate", BUILT_IN)
            self.assertEqual(ok.returncode, 0, ok.stderr)
            with open(BUILT_IN) as f:
                text = f.read()
            broken = (text.replace("anchor: time_zero, target: 24h", "anchor: time_one, target: 24h")
                          .replace("expression: labs.total_bilirubin >= 10 × bilirubin_uln", "expression: labs.total_bilirubin >= labs.inr"))
            with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
                f.write(broken)
            result = self.run_cli(casebook, "study", "validate", f.name)
            os.unlink(f.name)
            self.assertEqual(result.returncode, 1)
            self.assertIn("visits[safety_24h].anchor: names unknown anchor 'time_one'", result.stderr)
            self.assertIn("eligibility.inclusion[jaundice].expression: cannot compare labs.total_bilirubin in umol/L with labs.inr in ratio", result.stderr)
        finally:
            casebook.stop()

    def test_import_writes_a_draft_with_todos(self):
        casebook = Casebook()
        try:
            sources = [CTGOV_FIXTURE] + ([SEED_RECORD] if os.path.exists(SEED_RECORD) else [])
            for source in sources:
                draft = os.path.join(casebook.dir.name, "draft.yaml")
                result = self.run_cli(casebook, "study", "import", source, "--output", draft)
                self.assertEqual(result.returncode, 0, result.stderr)
                self.assertIn("To do before it can be published", result.stdout)
                self.assertTrue(os.path.exists(draft))
                # The draft reads back as a definition; what is still open shows up as problems.
                check = self.run_cli(casebook, "study", "validate", draft)
                self.assertEqual(check.returncode, 1)
                self.assertNotIn("unknown setting", check.stderr)
                self.assertIn("expression: is empty", check.stderr)
            bad = os.path.join(casebook.dir.name, "bad.txt")
            with open(bad, "w") as f:
                f.write("Not a registry record\n")
            refused = self.run_cli(casebook, "study", "import", bad, "--output", os.path.join(casebook.dir.name, "x.yaml"))
            self.assertNotEqual(refused.returncode, 0)
            self.assertIn("line 1", refused.stderr)
        finally:
            casebook.stop()

    def test_status_change_is_a_new_version_with_history(self):
        for database in databases():
            with self.subTest(database=database):
                casebook = Casebook(database)
                try:
                    no_reason = self.run_cli(casebook, "study", "status", "suspended", "--date", "2026-03-01")
                    self.assertNotEqual(no_reason.returncode, 0)
                    self.assertIn("a suspended status needs a reason", no_reason.stderr)
                    casebook.cli("study", "status", "recruiting", "--date", "2026-02-01")
                    study = json.loads(casebook.cli("study", "show", "--json").stdout)
                    self.assertEqual(study["version"], 2)
                    self.assertEqual([h["status"] for h in study["lifecycle"]["history"]], ["withdrawn", "recruiting"])
                    self.assertIn("intact", casebook.cli("audit", "verify").stdout)
                finally:
                    casebook.stop()

    def test_init_takes_another_study_once_and_operating_status_governs_enrolment(self):
        for database in databases():
            with self.subTest(database=database):
                casebook = Casebook(database)
                try:
                    with open(BUILT_IN) as f:
                        other = f.read().replace("code: MSC-EV-ACLF-LT", "code: OTHER-TRIAL").replace("code: SYSU3", "code: OTH1")
                    path = os.path.join(casebook.dir.name, "other.yaml")
                    with open(path, "w") as f:
                        f.write(other)
                    # The fresh database holds only the unused built-in study: init replaces it.
                    done = self.run_cli(casebook, "study", "init", path)
                    self.assertEqual(done.returncode, 0, done.stderr)
                    self.assertIn("OTHER-TRIAL · version 1 · Withdrawn in the registry, recruiting here", casebook.cli("study", "show").stdout)
                    # A second init is refused, naming the study in force.
                    again = self.run_cli(casebook, "study", "init", BUILT_IN)
                    self.assertEqual(again.returncode, 1)
                    self.assertIn("already runs study OTHER-TRIAL", again.stderr)
                    no_reason = self.run_cli(casebook, "study", "operating", "suspended", "--date", "2026-03-01")
                    self.assertNotEqual(no_reason.returncode, 0)
                    self.assertIn("a suspended status needs a reason", no_reason.stderr)
                    casebook.cli("study", "operating", "suspended", "--date", "2026-03-01", "--reason", "safety review")
                    self.assertIn("suspended here", casebook.cli("study", "show").stdout)
                    self.assertIn("intact", casebook.cli("audit", "verify").stdout)
                finally:
                    casebook.stop()


if __name__ == "__main__":
    unittest.main()
