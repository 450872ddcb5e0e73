"""The second study from its definition file alone (studies/ucmsc-aclf.yaml): one participant through screening, both
randomizations and all five doses (one skipped) in a real browser, weeks apart on a clinical clock the test moves;
then a coordinator finds the participant's arm nowhere."""
import json
import os
import unittest
import urllib.request

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

from harness import PASSWORD, Casebook, chromium, fill_form, submit

HERE = os.path.dirname(os.path.abspath(__file__))
SECOND = os.path.join(os.path.dirname(os.path.dirname(HERE)), "studies", "ucmsc-aclf.yaml")
# Arm codes and names, and what a dose amount looks like (1.50×10^8 cells): none may reach a blinded user.
ARMS = ["huc_msc", "placebo", "Placebo", "hUC-MSC standard", "hUC-MSC prolonged", "prolonged", "×10^", "150000000"]


class SecondStudyWalk(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.casebook = Casebook()
        cls.casebook.cli("study", "init", SECOND)
        for name, role in [("ines", "investigator"), ("cora", "coordinator"), ("phil", "pharmacist")]:
            cls.casebook.create_user(name, role, site="PLAGH5")
        cls.casebook.cli("randomization", "generate", "--seed", "3c" * 32)
        cls.casebook.cli("randomization", "generate", "--seed", "4d" * 32, "--randomization", "stage2")
        cls.clock = os.path.join(cls.casebook.dir.name, "clock")
        cls.set_clock("2026-01-05T10:00Z")
        cls.casebook.start(clock_file=cls.clock)
        cls.driver = chromium()

    @classmethod
    def tearDownClass(cls):
        cls.driver.quit()
        cls.casebook.stop()

    @classmethod
    def set_clock(cls, instant):
        with open(cls.clock, "w") as f:
            f.write(instant)

    def sign_in(self, username):
        d = self.driver
        d.delete_all_cookies()
        d.get(self.casebook.url + "/login")
        d.find_element(By.ID, "username").send_keys(username)
        d.find_element(By.ID, "password").send_keys(PASSWORD)
        submit(d, d.find_element(By.ID, "sign-in"))
        WebDriverWait(d, 10).until(EC.presence_of_element_located((By.ID, "welcome")))

    def fill_form(self, participant_url, visit, form, values):
        fill_form(self.driver, participant_url, visit, form, values)

    def dose(self, url, code, started=None, lot=None, skipped=None):
        d = self.driver
        d.get(url)
        Select(d.find_element(By.ID, "dose")).select_by_value(code)
        if started:
            d.find_element(By.ID, "startedAt").send_keys(started)
            d.find_element(By.ID, "lot").send_keys(lot)
        if skipped:
            d.find_element(By.ID, "skipReason").send_keys(skipped)
        submit(d, d.find_element(By.ID, "record-dose"))
        WebDriverWait(d, 10).until(EC.presence_of_element_located((By.ID, f"dose-{code}")))
        state = d.find_element(By.ID, f"dose-{code}").text
        self.assertIn("skipped" if skipped else "given", state, d.find_element(By.TAG_NAME, "body").text[:2000])

    def pre_dose(self, url, visit):
        self.fill_form(url, visit, "pre_dose", {"new_exclusion": "no"})

    def test_walk_then_a_coordinator_finds_no_arm(self):
        d = self.driver
        self.sign_in("ines")
        d.get(self.casebook.url + "/participants")
        d.find_element(By.ID, "screeningNumber").send_keys("U-001")
        submit(d, d.find_element(By.XPATH, "//button[text()='Register participant']"))
        WebDriverWait(d, 10).until(EC.presence_of_element_located((By.ID, "eligibility")))
        url = d.current_url

        no = "no"
        self.fill_form(url, "screening", "demographics", {"screening_date": "2026-01-05", "birth_date": "1976-01-01", "sex": "M"})
        self.fill_form(url, "screening", "aclf", {
            "acute_liver_injury": "yes", "chronic_liver_disease": "yes", "ascites": "yes", "ascites_date": "2025-12-20", "encephalopathy": "no"})
        self.fill_form(url, "screening", "history", {
            "aki": no, "ugi_bleeding": no, "he_grade_2plus": no, "uncontrolled_infection": no, "platelets_before": "120",
            "bilirubin_before": "30", "albumin_before": "40", "inr_before": "1.1", "ascites_before": "none", "he_before": "0",
            "malignancy": no, "transplant": no, "extrahepatic": no, "thrombosis": no, "pregnancy": no, "allergy": no,
            "drug_abuse": no, "alcohol_withdrawal": no, "mental_disorder": no, "other_trial": no})
        self.fill_form(url, "screening", "conmeds", {"immunomodulator": no})
        self.fill_form(url, "screening", "consent", {"obtained": "yes", "signed_at": "2026-01-05T09:00", "form_version": "1"})
        # 120 µmol/L is 7.0 mg/dL at the protocol's 17.1: jaundice by its 5 mg/dL threshold.
        self.fill_form(url, "screening", "labs", {
            "collected_at": "2026-01-05T08:00", "total_bilirubin": "120", "inr": "1.8", "pt_activity": "35", "creatinine": "90"})
        d.find_element(By.ID, "signedAt").send_keys("2026-01-05T09:00")
        submit(d, d.find_element(By.ID, "record-consent"))
        WebDriverWait(d, 10).until(EC.text_to_be_present_in_element((By.ID, "consent"), "Version 1, signed"))
        self.assertEqual(d.find_element(By.ID, "eligibility-outcome").text, "Outcome: eligible")
        self.assertIn("does not apply", d.find_element(By.ID, "eligibility").text)
        submit(d, d.find_element(By.ID, "decide-eligibility"))
        WebDriverWait(d, 10).until(EC.text_to_be_present_in_element((By.ID, "eligibility-outcome"), "decision recorded: eligible"))

        # Stage 1 the next day; the investigator is blinded in this double-blind study.
        self.set_clock("2026-01-06T10:00Z")
        d.get(url)
        submit(d, d.find_element(By.ID, "allocate"))
        allocated = WebDriverWait(d, 10).until(EC.presence_of_element_located((By.ID, "allocated-arm"))).text
        self.assertIn("Allocated (blinded)", allocated)

        self.pre_dose(url, "w0")
        self.set_clock("2026-01-06T13:00Z")
        self.dose(url, "d0", started="2026-01-06T12:00", lot="UC-1")
        self.set_clock("2026-01-13T10:00Z")
        self.dose(url, "d1", skipped="fever on the day")
        self.set_clock("2026-01-20T11:00Z")
        self.pre_dose(url, "w2")
        self.dose(url, "d2", started="2026-01-20T10:00", lot="UC-2")

        # Stage 2 at week 4, before that visit's dose, for everyone still on study.
        self.set_clock("2026-02-03T09:00Z")
        self.fill_form(url, "w4", "stage2_check", {"on_study": "yes"})
        submit(d, d.find_element(By.ID, "randomize-stage2"))
        WebDriverWait(d, 10).until(EC.text_to_be_present_in_element((By.ID, "stage-stage2"), "randomized on"))
        self.pre_dose(url, "w4")
        self.set_clock("2026-02-03T11:00Z")
        self.dose(url, "d4", started="2026-02-03T10:00", lot="UC-3")
        self.set_clock("2026-02-10T11:00Z")
        self.pre_dose(url, "w5")
        self.dose(url, "d5", started="2026-02-10T10:00", lot="UC-4")
        table = d.find_element(By.ID, "dose-table").text
        self.assertEqual(table.count("given"), 4)
        self.assertEqual(table.count("skipped"), 1)

        # A coordinator sees the participant, its doses and the trial's figures, and no arm anywhere.
        self.sign_in("cora")
        pages = [url, self.casebook.url + "/participants", self.casebook.url + "/safety", self.casebook.url + "/screening-log"]
        for page in pages:
            d.get(page)
            text = d.find_element(By.TAG_NAME, "body").text
            for arm in ARMS:
                self.assertNotIn(arm, text, f"{page} shows {arm}")
        token = self.casebook.cli("tokens", "create", "--username", "cora").stdout.strip()
        participant = url.rstrip("/").split("/")[-1]
        # The check can fail: the unblinded pharmacist's answer names the arm.
        pharmacist = self.casebook.cli("tokens", "create", "--username", "phil").stdout.strip()
        request = urllib.request.Request(f"{self.casebook.url}/api/v1/participants/{participant}/allocation", headers={"Authorization": f"Bearer {pharmacist}"})
        self.assertTrue(any(arm in urllib.request.urlopen(request).read().decode() for arm in ARMS))
        for path in [f"/api/v1/participants/{participant}/allocation", f"/api/v1/participants/{participant}/doses", "/api/v1/screening-log",
                     "/api/v1/endpoints"]:
            request = urllib.request.Request(self.casebook.url + path, headers={"Authorization": f"Bearer {token}"})
            body = urllib.request.urlopen(request).read().decode()
            json.loads(body)
            for arm in ARMS:
                self.assertNotIn(arm, body, f"{path} shows {arm}")


if __name__ == "__main__":
    unittest.main()
