"""A real `casebook serve` on a free port with its own SQLite file, and a headless Chromium to drive it."""
import os
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
import uuid

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

PASSWORD = "browser-test-password"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def databases():
    """SQLite always; PostgreSQL too when the test command has one running."""
    return ["sqlite", "postgres"] if os.environ.get("CASEBOOK_TEST_POSTGRES_URL") else ["sqlite"]


def psql(url, *args):
    return subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-qAt", *args], capture_output=True, text=True, check=True).stdout


class Casebook:
    """One Casebook installation: its own SQLite file, or its own PostgreSQL database."""

    def __init__(self, database="sqlite"):
        self.binary = os.environ["CASEBOOK_BIN"]
        self.database = database
        self.dir = tempfile.TemporaryDirectory(prefix="casebook-e2e-")
        self.sqlite_path = os.path.join(self.dir.name, "casebook.sqlite")
        self.env = dict(os.environ, CASEBOOK_SQLITE_PATH=self.sqlite_path, LOG_LEVEL="warning")
        self.env.pop("DATABASE_URL", None)
        self.admin_url = None
        if database == "postgres":
            self.admin_url = os.environ["CASEBOOK_TEST_POSTGRES_URL"]
            self.db_name = "e2e_" + uuid.uuid4().hex[:12]
            psql(self.admin_url, "-c", f"CREATE DATABASE {self.db_name}")
            self.env["DATABASE_URL"] = urllib.parse.urlparse(self.admin_url)._replace(path="/" + self.db_name).geturl()
        self.log = None
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None

    def cli(self, *args, stdin=None):
        return subprocess.run([self.binary, *args], input=stdin, env=self.env, capture_output=True, text=True, check=True)

    def create_user(self, username, role, site=None):
        args = ["users", "create", "--username", username, "--role", role]
        if site:
            args += ["--site", site]
        self.cli(*args, stdin=PASSWORD + "\n")

    def start(self, clock_file=None):
        """`casebook serve`; with `clock_file`, the hidden test server whose clinical clock reads that file."""
        self.log = open(os.path.join(self.dir.name, "server.log"), "w")
        command = [self.binary, "serve", "--port", str(self.port)]
        if clock_file:
            command = [self.binary, "serve-test-clock", "--port", str(self.port), "--clock-file", clock_file]
        self.process = subprocess.Popen(command, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("casebook serve did not answer /health within 60 s")

    def sql(self, statement):
        """Runs SQL straight against the database, as someone with file or server access could."""
        if self.database == "postgres":
            return psql(self.env["DATABASE_URL"], "-c", statement)
        import sqlite3
        with sqlite3.connect(self.sqlite_path) as connection:
            return connection.execute(statement).fetchall()

    def rows(self, statement):
        """The result as lists of text (None for NULL on SQLite), alike on both databases."""
        if self.database == "postgres":
            return [line.split("|") for line in self.sql(statement).strip().splitlines() if line]
        return [[None if v is None else str(v) for v in row] for row in self.sql(statement)]

    def scalar(self, statement):
        """The first column of the first row, as a number."""
        return int(float(self.rows(statement)[0][0]))

    def stop(self):
        if self.process:
            self.process.terminate()
            self.process.wait(timeout=20)
        if self.log:
            self.log.close()
        if self.admin_url:
            # A server's last connections may still be closing; dropping is retried before it counts as a failure.
            for attempt in range(10):
                try:
                    psql(self.admin_url, "-c", f"DROP DATABASE IF EXISTS {self.db_name} WITH (FORCE)")
                    break
                except subprocess.CalledProcessError as error:
                    if attempt == 9:
                        raise RuntimeError(f"could not drop {self.db_name}: {error.stderr}") from error
                    time.sleep(0.5)
        self.dir.cleanup()


def chromium():
    os.environ.setdefault("SE_OFFLINE", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def submit(driver, element):
    """Clicks something that loads a new page and waits until the old page is gone, so later waits never read it."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    from selenium.common.exceptions import WebDriverException
    old = driver.find_element(By.TAG_NAME, "html")
    element.click()

    def gone(_):
        # Chromium reports a replaced page either as a stale element or as "node does not belong to the document".
        try:
            old.is_enabled()
            return False
        except WebDriverException:
            return True

    WebDriverWait(driver, 15).until(gone)


def sign_in(driver, base_url, username):
    """Signs in on the login page and waits for the dashboard."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait
    driver.get(base_url + "/login")
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    submit(driver, driver.find_element(By.ID, "sign-in"))
    WebDriverWait(driver, 10).until(EC.presence_of_element_located((By.ID, "welcome")))


def register(driver, base_url, screening_number):
    """Registers a participant from the participants page; returns the URL of their page."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait
    driver.get(base_url + "/participants")
    driver.find_element(By.ID, "screeningNumber").send_keys(screening_number)
    submit(driver, driver.find_element(By.XPATH, "//button[text()='Register participant']"))
    WebDriverWait(driver, 10).until(EC.presence_of_element_located((By.ID, "eligibility")))
    return driver.current_url


def set_values(driver, values):
    """Puts each value into the control with that id, as a user would choose or type it."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
    for field, value in values.items():
        element = driver.find_element(By.ID, field)
        if element.tag_name == "select":
            Select(element).select_by_value(value)
        elif element.get_attribute("type") == "date":
            # Typing into a date control follows the browser's locale; set the ISO value as a picker would.
            driver.execute_script("arguments[0].value = arguments[1]", element, value)
        else:
            element.clear()
            element.send_keys(value)


def fill_form(driver, participant_url, visit, form, values):
    """Enters one form of one visit on its page and waits for the participant page it returns to."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait
    driver.get(f"{participant_url}/forms/{visit}/{form}")
    WebDriverWait(driver, 10).until(EC.presence_of_element_located((By.ID, "save-form")))
    set_values(driver, values)
    submit(driver, driver.find_element(By.ID, "save-form"))
    WebDriverWait(driver, 10).until(EC.presence_of_element_located((By.ID, "eligibility")))
