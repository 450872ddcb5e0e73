"""`casebook grade`, `casebook score` and `casebook terminology import` as data managers use them."""
import json
import os
import subprocess
import unittest

from harness import Casebook

HERE = os.path.dirname(os.path.abspath(__file__))
REFERENCE = os.path.join(HERE, "..", "..", "..", "shared", "reference", "ctcae")


class ClinicalCommands(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.casebook = Casebook()

    @classmethod
    def tearDownClass(cls):
        cls.casebook.stop()

    def run_cli(self, *args):
        return subprocess.run([self.casebook.binary, *args], env=self.casebook.env, capture_output=True, text=True)

    def grade(self, *args):
        result = self.run_cli("grade", *args, "--json")
        self.assertEqual(result.returncode, 0, result.stderr)
        return json.loads(result.stdout)

    def test_grade_at_the_ctcae_boundaries(self):
        # ALT >3.0 - 5.0 x ULN is grade 2 (CTCAE v4.03): exactly 3.0 x ULN is still grade 1.
        self.assertEqual(self.grade("--term", "ALT", "--value", "120", "--unit", "U/L", "--uln", "40")["grade"], 1)
        self.assertEqual(self.grade("--term", "ALT", "--value", "120.1", "--unit", "U/L", "--uln", "40")["grade"], 2)
        result = self.grade("--term", "Blood bilirubin increased", "--value", "210", "--unit", "umol/L", "--uln", "17.1", "--baseline", "200", "--version", "5.0")
        self.assertEqual((result["term"], result["version"], result["grade"]), ("Blood bilirubin increased", "5.0", 1))
        self.assertIn("baseline", result["basis"])
        # Platelets 60,000/mm3 is <75.0 - 50.0 x 10e9/L: grade 2.
        self.assertEqual(self.grade("--term", "PLAT", "--value", "60000", "--unit", "/mm3", "--uln", "400000", "--lln", "150000")["grade"], 2)

    def test_grade_refuses_missing_or_contradictory_input_with_exit_code_2(self):
        for args in (["--term", "FERRITIN", "--value", "1", "--unit", "ug/L", "--uln", "300"],
                     ["--term", "PLAT", "--value", "60", "--unit", "10^9/L", "--uln", "400"],
                     ["--term", "ALT", "--value", "60", "--unit", "umol/L", "--uln", "40"],
                     ["--term", "ALT", "--value", "60", "--unit", "U/L", "--uln", "40", "--version", "6.0"]):
            result = self.run_cli("grade", *args)
            self.assertEqual(result.returncode, 2, args)
            self.assertTrue(result.stderr.strip(), args)

    def test_scores(self):
        meld = json.loads(self.run_cli("score", "meld", "--bilirubin", "3", "--inr", "2", "--creatinine", "1.5", "--json").stdout)
        # 10 x (0.957 ln 1.5 + 0.378 ln 3 + 1.120 ln 2 + 0.643) = 22.2263
        self.assertAlmostEqual(meld["score"], 22.2263, places=3)
        molar = json.loads(self.run_cli("score", "meld", "--bilirubin", "51.312", "--bilirubin-unit", "umol/L", "--inr", "2",
                                        "--creatinine", "132.6", "--creatinine-unit", "umol/L", "--json").stdout)
        self.assertAlmostEqual(molar["score"], 22.2263, places=2)
        capped = json.loads(self.run_cli("score", "meld-na", "--bilirubin", "3", "--inr", "2", "--creatinine", "1.5", "--sodium", "110", "--json").stdout)
        self.assertEqual(capped["inputs"]["sodium"], 125)
        cp = json.loads(self.run_cli("score", "child-pugh", "--bilirubin", "2", "--albumin", "3.5", "--inr", "1.7", "--ascites", "mild",
                                     "--encephalopathy-grade", "1", "--json").stdout)
        self.assertEqual(cp["score"], 10)
        missing = self.run_cli("score", "meld-3.0", "--bilirubin", "3")
        self.assertEqual(missing.returncode, 2)
        self.assertIn("--inr", missing.stderr)
        both = self.run_cli("score", "clif-c-of", "--bilirubin", "3", "--creatinine", "1", "--inr", "1", "--map", "80",
                            "--encephalopathy-grade", "0", "--pao2-fio2", "350", "--spo2-fio2", "400")
        self.assertEqual(both.returncode, 2)

    def test_terminology_import(self):
        path = os.path.join(REFERENCE, "CTCAE_4.03.csv")
        if not os.path.exists(path):
            self.skipTest("../shared/reference/ctcae is not beside this checkout")
        result = self.run_cli("terminology", "import", "ctcae", path)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("Imported 790 CTCAE v4.03 terms", result.stdout)
        bad = os.path.join(self.casebook.dir.name, "CTCAE_4.03-bad.csv")
        with open(path) as source, open(bad, "w") as target:
            lines = source.read().splitlines()
            lines[5] = "123," + lines[5].split(",", 1)[1]
            target.write("\n".join(lines))
        refused = self.run_cli("terminology", "import", "ctcae", bad)
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("line 6", refused.stderr)


if __name__ == "__main__":
    unittest.main()
