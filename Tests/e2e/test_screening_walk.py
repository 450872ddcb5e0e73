"""One participant from screening to infusion in a real browser, against a real server."""
import datetime
import unittest

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from harness import Casebook, chromium, fill_form, register, sign_in, submit


def day(offset):
    return (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=offset)).strftime("%Y-%m-%d")


def now_text(minutes=0):
    return (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M")


class ScreeningToInfusion(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.casebook = Casebook()
        cls.casebook.create_user("ines", "investigator", site="SYSU3")
        # A list whose first position in one MELD-Na stratum is MSC-EV, so the walk reaches the infusion.
        cls.meld_na = None
        cls.casebook.cli("randomization", "generate", "--seed", "11" * 32)
        rows = [line.split(",") for line in cls.casebook.cli("randomization", "list").stdout.strip().splitlines()[1:]]
        first = {row[0]: row[4] for row in rows if row[1] == "1"}
        if first.get("SYSU3|meld_na<30") == "msc_ev":
            cls.meld_na = "25"
        elif first.get("SYSU3|meld_na≥30") == "msc_ev":
            cls.meld_na = "35"
        cls.casebook.start()
        cls.driver = chromium()

    @classmethod
    def tearDownClass(cls):
        cls.driver.quit()
        cls.casebook.stop()

    def fill_form(self, participant_url, visit, form, values):
        fill_form(self.driver, participant_url, visit, form, values)

    def test_walk_one_participant_from_screening_to_infusion(self):
        self.assertIsNotNone(self.meld_na, "seed 11…11 should start one stratum with MSC-EV")
        d = self.driver
        sign_in(d, self.casebook.url, "ines")

        url = register(d, self.casebook.url, "SYSU3-042")
        self.assertIn("cannot tell", d.find_element(By.ID, "eligibility-outcome").text)

        self.fill_form(url, "screening", "demographics", {"screening_date": day(-6), "birth_date": "1971-03-15", "sex": "M"})
        self.fill_form(url, "screening", "aclf", {
            "chronic_liver_disease": "yes", "ascites": "yes", "ascites_date": day(-10), "encephalopathy": "no", "needs_transplant": "yes"})
        self.fill_form(url, "screening", "history", {
            "malignancy": "no", "active_infection": "no", "combined_transplant": "no", "retransplant": "no",
            "ebv": "positive", "hiv": "negative", "hcv": "negative"})
        self.fill_form(url, "screening", "consent", {"obtained": "yes", "signed_at": day(-6) + "T10:00", "form_version": "1"})
        self.fill_form(url, "screening", "labs", {
            "collected_at": day(-6) + "T08:00", "total_bilirubin": "260", "inr": "2.3", "pt_activity": "31", "meld_na": self.meld_na})
        self.fill_form(url, "transplant", "transplant", {"transplant_date": day(-2), "donor": "deceased"})

        # The consent criterion reads the consent record: until it is recorded, eligibility cannot be told.
        self.assertIn("cannot tell", d.find_element(By.ID, "eligibility-outcome").text)
        d.find_element(By.ID, "signedAt").send_keys(day(-6) + "T10:00")
        submit(d, d.find_element(By.ID, "record-consent"))
        WebDriverWait(d, 10).until(EC.text_to_be_present_in_element((By.ID, "consent"), "Version 1, signed"))

        self.assertEqual(d.find_element(By.ID, "eligibility-outcome").text, "Outcome: eligible")
        # The jaundice criterion shows the ULN it used.
        self.assertIn("17.1 umol/L (site SYSU3's BILI reference range, high limit)", d.find_element(By.ID, "eligibility").text)
        submit(d, d.find_element(By.ID, "decide-eligibility"))
        WebDriverWait(d, 10).until(EC.text_to_be_present_in_element((By.ID, "eligibility-outcome"), "decision recorded: eligible"))

        submit(d, d.find_element(By.ID, "allocate"))
        arm = WebDriverWait(d, 10).until(EC.presence_of_element_located((By.ID, "allocated-arm")))
        self.assertIn("Allocated to MSC-EV", arm.text)

        for field, value in {"startedAt": now_text(1), "endedAt": now_text(3), "lot": "EV-2026-007", "expiry": "2030-01-31"}.items():
            d.find_element(By.ID, field).send_keys(value)
        submit(d, d.find_element(By.ID, "record-dose"))
        record = WebDriverWait(d, 10).until(EC.text_to_be_present_in_element((By.ID, "dose-infusion"), "given"))
        self.assertTrue(record)
        text = d.find_element(By.ID, "dose-infusion").text
        self.assertIn("lot EV-2026-007, expiry 2030-01-31, 1×10^10 particles", text)
        schedule = d.find_element(By.ID, "visit-schedule").text
        self.assertIn("Safety 24 h", schedule)
        self.assertIn("upcoming", schedule)

        d.get(self.casebook.url + "/screening-log")
        log = d.find_element(By.ID, "screening-log").text
        self.assertIn("Randomized 1", log)


if __name__ == "__main__":
    unittest.main()
