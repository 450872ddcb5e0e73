"""`casebook demo` writes a synthetic trial through the real rules: the test run executes it and checks what it wrote."""
import os
import re
import subprocess
import unittest

from harness import Casebook, databases



class DemoTrial(unittest.TestCase):
    def run_demo(self, database, seed):
        casebook = Casebook(database)
        result = subprocess.run([casebook.binary, "demo", "--participants", "20", "--seed", str(seed)], env=casebook.env, capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, result.stderr)
        return casebook, result.stdout

    def test_twenty_participants(self):
        for database in databases():
            with self.subTest(database=database):
                casebook, output = self.run_demo(database, 3)
                try:
                    counts = dict(zip(["screened", "failed", "randomized", "labs", "events"], map(int, re.findall(r"(\d+) ", output)[:5])))
                    self.assertEqual(counts["screened"], 20)
                    self.assertEqual(casebook.scalar("SELECT COUNT(*) FROM participants"), 20)
                    self.assertEqual(casebook.scalar("SELECT COUNT(*) FROM randomization_slots WHERE participant_id IS NOT NULL"), counts["randomized"])
                    self.assertEqual(casebook.scalar("SELECT COUNT(*) FROM eligibility_reviews WHERE outcome = 'screen_failed'"), counts["failed"])
                    self.assertEqual(casebook.scalar("SELECT COUNT(*) FROM lab_results"), counts["labs"])
                    self.assertGreater(counts["randomized"], 10)
                    self.assertGreater(counts["failed"], 0)
                    # Every randomized participant has a 24-hour assessment; doses only in the MSC-EV arm, and every one of its participants has one.
                    self.assertEqual(casebook.scalar("SELECT COUNT(*) FROM form_records WHERE form_code = 'toxicity_24h'"), counts["randomized"])
                    self.assertEqual(casebook.scalar("SELECT COUNT(*) FROM doses i JOIN randomization_slots s ON s.participant_id = i.participant_id WHERE s.arm <> 'msc_ev'"), 0)
                    self.assertEqual(casebook.scalar("SELECT COUNT(*) FROM doses"), casebook.scalar("SELECT COUNT(*) FROM randomization_slots WHERE arm = 'msc_ev' AND participant_id IS NOT NULL"))
                    self.assertIn("intact", casebook.cli("audit", "verify").stdout)
                finally:
                    casebook.stop()

    def test_the_same_seed_gives_the_same_trial(self):
        first, out1 = self.run_demo("sqlite", 9)
        second, out2 = self.run_demo("sqlite", 9)
        try:
            self.assertEqual(re.sub(r"\(.*s\)", "", out1), re.sub(r"\(.*s\)", "", out2))
            arms = "SELECT p.screening_number, s.arm FROM participants p JOIN randomization_slots s ON s.participant_id = p.id ORDER BY p.screening_number"
            self.assertEqual(first.sql(arms), second.sql(arms))
            labs = "SELECT p.screening_number, l.visit_code, l.test_code, l.value FROM lab_results l JOIN participants p ON p.id = l.participant_id ORDER BY 1, 2, 3"
            self.assertEqual(first.sql(labs), second.sql(labs))
        finally:
            first.stop()
            second.stop()

    def test_the_second_study_fills_from_its_definition_alone(self):
        second = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "studies", "ucmsc-aclf.yaml")
        for database in databases():
            with self.subTest(database=database):
                casebook = Casebook(database)
                try:
                    casebook.cli("study", "init", second)
                    result = subprocess.run([casebook.binary, "demo", "--participants", "30", "--seed", "5"], env=casebook.env, capture_output=True, text=True)
                    self.assertEqual(result.returncode, 0, result.stderr)
                    randomized = casebook.scalar("SELECT COUNT(*) FROM randomization_slots WHERE participant_id IS NOT NULL")
                    self.assertGreater(randomized, 15)
                    # Everyone allocated long enough ago had all five dose visits, given or skipped, and the stage-2 draw.
                    self.assertEqual(casebook.scalar("SELECT COUNT(DISTINCT dose_code) FROM doses"), 5)
                    self.assertGreater(casebook.scalar("SELECT COUNT(*) FROM stage_slots WHERE participant_id IS NOT NULL"), randomized // 2)
                    self.assertGreater(casebook.scalar("SELECT COUNT(*) FROM doses WHERE NOT given"), 0)
                    self.assertIn("intact", casebook.cli("audit", "verify").stdout)
                finally:
                    casebook.stop()


if __name__ == "__main__":
    unittest.main()
