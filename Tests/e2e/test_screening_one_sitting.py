"""Screening in one sitting: the whole screening visit on one page, the assessment beside it, and an exclusion
entered after the decision that blocks allocation."""
import datetime
import unittest

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from harness import Casebook, chromium, register, set_values, sign_in, submit


def day(offset):
    return (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=offset)).strftime("%Y-%m-%d")


class ScreeningInOneSitting(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.casebook = Casebook()
        cls.casebook.create_user("ines", "investigator", site="SYSU3")
        cls.casebook.cli("randomization", "generate", "--seed", "22" * 32)
        cls.casebook.start()
        cls.driver = chromium()

    @classmethod
    def tearDownClass(cls):
        cls.driver.quit()
        cls.casebook.stop()

    def enter(self, values):
        set_values(self.driver, values)

    def test_one_page_then_an_exclusion_blocks_allocation(self):
        d = self.driver
        sign_in(d, self.casebook.url, "ines")
        participant = register(d, self.casebook.url, "SYSU3-077")

        # Every screening page at once; the bilirubin comes as a lab result in mg/dL (15 mg/dL is 256.5 µmol/L,
        # over 10 × the site's ULN of 17.1), entered once.
        submit(d, d.find_element(By.ID, "enter-screening"))
        WebDriverWait(d, 10).until(EC.presence_of_element_located((By.ID, "save-visit")))
        self.enter({
            "demographics.screening_date": day(-6), "demographics.birth_date": "1971-03-15", "demographics.sex": "M",
            "aclf.chronic_liver_disease": "yes", "aclf.ascites": "yes", "aclf.ascites_date": day(-10), "aclf.encephalopathy": "no",
            "aclf.needs_transplant": "yes",
            "history.malignancy": "no", "history.active_infection": "no", "history.combined_transplant": "no", "history.retransplant": "no",
            "history.ebv": "positive", "history.hiv": "negative", "history.hcv": "negative",
            "consent.obtained": "yes", "consent.signed_at": day(-6) + "T10:00", "consent.form_version": "1",
            "labs.collected_at": day(-6) + "T08:00", "labs.inr": "2.3", "labs.pt_activity": "31", "labs.meld_na": "31",
            "lab0.test": "BILI", "lab0.value": "15", "lab0.unit": "mg/dL", "lab0.collectedAt": day(-6) + "T08:00",
        })
        submit(d, d.find_element(By.ID, "save-visit"))
        outcomes = d.find_elements(By.ID, "visit-eligibility-outcome")
        self.assertTrue(outcomes, d.find_element(By.TAG_NAME, "body").text[:3000])
        # Everything but the consent, which is read from the consent record.
        self.assertEqual(outcomes[0].text, "Outcome: cannot tell yet: 1 criterion needs data", d.find_element(By.TAG_NAME, "body").text[:3000])
        self.assertIn("does not apply", d.find_element(By.ID, "criterion-malignancy").text)
        # The result entered through the lab list shows beside the field it fills, on this page and the form's.
        self.assertIn("Lab result on record: 15 mg/dL", d.find_element(By.ID, "labs.total_bilirubin.recorded").text)
        d.get(participant + "/forms/screening/labs")
        self.assertIn("Lab result on record: 15 mg/dL", d.find_element(By.ID, "total_bilirubin.recorded").text)

        d.get(participant)
        d.find_element(By.ID, "signedAt").send_keys(day(-6) + "T10:00")
        submit(d, d.find_element(By.ID, "record-consent"))
        WebDriverWait(d, 10).until(EC.text_to_be_present_in_element((By.ID, "consent"), "Version 1, signed"))
        self.assertEqual(d.find_element(By.ID, "eligibility-outcome").text, "Outcome: eligible")
        submit(d, d.find_element(By.ID, "decide-eligibility"))
        WebDriverWait(d, 10).until(EC.text_to_be_present_in_element((By.ID, "eligibility-outcome"), "decision recorded: eligible"))

        # A malignancy found in the source documents after the decision.
        submit(d, d.find_element(By.ID, "enter-screening"))
        WebDriverWait(d, 10).until(EC.presence_of_element_located((By.ID, "save-visit")))
        self.enter({"history.malignancy": "yes", "reason": "source document: hepatocellular carcinoma"})
        submit(d, d.find_element(By.ID, "save-visit"))
        WebDriverWait(d, 10).until(EC.text_to_be_present_in_element((By.ID, "criterion-malignancy"), "applies"))
        self.assertNotIn("does not apply", d.find_element(By.ID, "criterion-malignancy").text)

        d.get(participant)
        self.assertIn("Needs review", d.find_element(By.ID, "needs-review").text)
        submit(d, d.find_element(By.ID, "allocate"))
        WebDriverWait(d, 10).until(EC.text_to_be_present_in_element((By.TAG_NAME, "body"), "no longer holds"))
        self.assertIn("exclusion malignancy applies", d.find_element(By.TAG_NAME, "body").text)
        d.get(participant)
        self.assertEqual(d.find_elements(By.ID, "allocated-arm"), [])


if __name__ == "__main__":
    unittest.main()
