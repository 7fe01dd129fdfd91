"""The self-service pages in a real browser: Debian's headless Chromium, driven by Selenium, against the
real server over HTTPS. The QR image is read off the page and decoded by zbarimg; codes come from
pyotp. Each page is photographed into $TOTP_SCREENSHOTS (default: the test's temporary folder;
scripts/screenshots refreshes the ones in docs/screenshots/).

Users: carol (tenant shop.example, whose application requires TOTP: first-login enrollment), dave
(carbon.super, TOTP optional: MyAccount from scratch), erin (lockout). CSRF is checked with `requests`."""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pyotp
import pytest
import requests

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
ZBARIMG = shutil.which("zbarimg")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER and ZBARIMG),
                                reason="needs Debian's chromium, chromium-driver and zbar-tools (.ci/run installs them)")

TENANT = "shop.example"
PW = "correct-horse-battery-7"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    from conftest import new_database, server_factory

    tmp = tmp_path_factory.mktemp("pages")
    with new_database(tmp) as database, server_factory(tmp, database) as factory:
        server = factory()
        server.cli("tenant", "add", TENANT)
        server.cli("client", "add", "shop-frontend", "--tenant", TENANT, "--totp", "required")
        for user in (f"carol@{TENANT}", "dave", "erin", "frank"):
            server.cli("user", "add", user, input=f"{PW}\n")
        yield server


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("TOTP_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Browser:
    def __init__(self, driver, srv, shots: Path):
        self.driver = driver
        self.srv = srv
        self.shots = shots

    def go(self, path: str) -> None:
        self.driver.get(self.srv.base + path)

    @property
    def path(self) -> str:
        return urlsplit(self.driver.current_url).path

    def el(self, element_id: str):
        from selenium.webdriver.common.by import By
        return self.driver.find_element(By.ID, element_id)

    def has(self, element_id: str) -> bool:
        from selenium.webdriver.common.by import By
        return bool(self.driver.find_elements(By.ID, element_id))

    def fill(self, element_id: str, value: str) -> None:
        field = self.el(element_id)
        field.clear()
        field.send_keys(value)

    def submit(self, button_id: str) -> None:
        """Click a button or link that loads a page, and wait until the new page is there."""
        self.loading(self.el(button_id).click)

    def loading(self, action) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions
        from selenium.webdriver.support.ui import WebDriverWait
        from selenium.common.exceptions import WebDriverException
        old = self.driver.find_element(By.TAG_NAME, "html")
        action()
        # While the document is being replaced, chromedriver may answer with an inspector error: ask again.
        WebDriverWait(self.driver, 15, ignored_exceptions=(WebDriverException,)).until(
            expected_conditions.staleness_of(old))

    def text(self, element_id: str) -> str:
        return self.el(element_id).text

    def heading(self) -> str:
        from selenium.webdriver.common.by import By
        return self.driver.find_element(By.TAG_NAME, "h1").text

    def shot(self, name: str) -> None:
        self.driver.save_screenshot(str(self.shots / f"{name}.png"))

    def sign_in(self, user: str, password: str = PW, *, at: str = "/login") -> None:
        self.go(at)
        self.fill("username", user)
        self.fill("password", password)
        self.submit("sign-in")

    def sign_out(self) -> None:
        self.submit("sign-out")
        assert self.path == "/login" and "signed out" in self.text("main")

    def enter_code(self, code: str) -> None:
        self.fill("code", code)
        self.submit("verify")

    def scanned(self) -> pyotp.TOTP:
        """The QR on the page, decoded by zbarimg; the key shown as text must be the same secret."""
        src = self.el("qr").get_attribute("src")
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.split(",", 1)[1])
        uri = subprocess.run([ZBARIMG, "--raw", "-q", "-"], input=png, capture_output=True, check=True).stdout
        uri = uri.decode().strip()
        assert uri.startswith("otpauth://totp/")
        secret = parse_qs(urlsplit(uri).query)["secret"][0]
        assert self.text("key").replace(" ", "") == secret, "the key for manual entry is the QR's secret"
        return pyotp.TOTP(secret)

    def recovery_codes(self) -> list[str]:
        from selenium.webdriver.common.by import By
        codes = [c.text for c in self.el("codes").find_elements(By.TAG_NAME, "code")]
        href = self.el("download").get_attribute("href")
        assert self.el("download").get_attribute("download") == "recovery-codes.txt"
        text = base64.b64decode(href.split(",", 1)[1]).decode()
        assert all(code in text for code in codes), "the download holds the codes shown"
        assert self.el("copy").is_displayed(), "the Copy button (the page's script) is on"
        return codes

    def devices(self) -> list[str]:
        from selenium.webdriver.common.by import By
        return [row.find_element(By.TAG_NAME, "th").text
                for row in self.el("devices").find_elements(By.CSS_SELECTOR, "tbody tr")]


@pytest.fixture(scope="module")
def browser(srv, shots):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--ignore-certificate-errors",
                "--window-size=900,1000", "--disable-gpu"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(2)
    try:
        yield Browser(driver, srv, shots)
    finally:
        driver.quit()


def next_code(totp: pyotp.TOTP, used: set[str]) -> str:
    """A code the server has not seen yet: this step's, else the next step's (the window allows one ahead)."""
    for offset in (0, 30):
        code = totp.at(time.time() + offset)
        if code not in used:
            used.add(code)
            return code
    raise AssertionError("no fresh code")


def csp_violations(browser: Browser) -> list[str]:
    """What the console said about blocked content or script errors (a 4xx answer is logged too: not these)."""
    return [entry["message"] for entry in browser.driver.get_log("browser")
            if "Content Security Policy" in entry["message"] or "Uncaught" in entry["message"]]


def test_first_login_enrollment_then_sign_in_with_a_code_a_replay_and_a_recovery_code(browser, srv):
    b = browser
    b.sign_in("carol", at=f"/t/{TENANT}/login")
    assert b.path == "/account/enroll", "TOTP is required (the tenant's application) and carol has none"
    assert "required" in b.text("main")
    b.shot("enroll-start")
    b.submit("start")
    assert b.heading() == "Scan the QR code"
    totp = b.scanned()
    b.shot("enroll-qr")
    wrong = "000000" if totp.now() != "000000" else "111111"
    b.enter_code(wrong)
    assert "not right" in b.text("error"), "a wrong code: said so, the QR shown again"
    assert b.scanned().secret == totp.secret
    used: set[str] = set()
    b.enter_code(next_code(totp, used))
    assert b.heading() == "Your recovery codes"
    codes = b.recovery_codes()
    assert len(codes) == 10
    b.shot("enroll-recovery-codes")
    b.submit("saved")
    assert b.path == "/account" and "On" in b.text("totp-status"), "enrolled: signed in at once, TOTP on"
    assert b.devices() == ["Authenticator app"]
    assert not csp_violations(b), "no inline style or script was blocked, no error in the console"

    b.sign_out()
    b.sign_in(f"carol@{TENANT}")
    assert b.path == "/login/code"
    b.shot("sign-in-code")
    b.enter_code(sorted(used)[0])
    assert "used already" in b.text("error"), "a replayed code is told apart from a wrong one"
    b.enter_code(next_code(totp, used))
    assert b.path == "/account"

    b.sign_out()
    b.sign_in(f"carol@{TENANT}")
    b.submit("use-recovery")
    assert b.el("code").get_attribute("autocomplete") == "off"
    b.enter_code("zzzz-zzzz")
    assert "recovery code is not right" in b.text("error")
    b.enter_code(codes[0])
    assert b.path == "/account", "a recovery code signs in"
    assert b.has("confirm") and not b.has("regenerate"), "a recovery code is not step-up: a code first"
    assert "9 unused recovery codes" in b.text("codes-left")

    b.sign_out()
    b.sign_in(f"carol@{TENANT}")
    b.submit("use-recovery")
    b.enter_code(codes[0])
    assert "not right" in b.text("error"), "a recovery code works once"


def test_my_account_devices_requirement_and_recovery_codes(browser, srv):
    b = browser
    b.sign_in("dave")
    assert b.path == "/account", "no TOTP and none required: straight to MyAccount"
    assert "Off" in b.text("totp-status") and not b.has("devices")
    b.submit("add-device")
    b.fill("name", "Work phone")
    b.submit("start")
    phone = b.scanned()
    used: set[str] = set()
    b.enter_code(next_code(phone, used))
    first_codes = b.recovery_codes()
    b.submit("saved")
    assert b.devices() == ["Work phone"]

    # A second authenticator: pending until its code is verified.
    b.submit("add-device")
    b.fill("name", "Tablet")
    b.submit("start")
    tablet = b.scanned()
    b.go("/account")
    assert b.devices() == ["Work phone", "Tablet (not verified yet)"]
    b.submit("add-device")
    b.fill("name", "Tablet")
    b.submit("start")
    tablet = b.scanned()
    b.enter_code(next_code(tablet, used))
    assert b.path == "/account" and "ready" in b.text("main")
    assert b.devices() == ["Work phone", "Tablet"]
    b.shot("account-security")
    b.driver.set_window_size(390, 844)  # a phone: one column, the table as blocks, nothing cut off
    width = b.driver.execute_script("return document.documentElement.scrollWidth")
    assert width <= 390, "no sideways scrolling on a phone"
    b.shot("account-security-phone")
    b.driver.set_window_size(900, 1000)

    # Rename (by keyboard: Enter in the field), then a name already taken.
    from selenium.webdriver.common.keys import Keys
    b.fill("rename-2", "iPad")
    b.loading(lambda: b.el("rename-2").send_keys(Keys.RETURN))
    assert b.devices() == ["Work phone", "iPad"]
    b.fill("rename-2", "work PHONE")
    b.loading(lambda: b.el("rename-2").send_keys(Keys.RETURN))
    assert "already has an active device" in b.text("message")
    b.submit("back")

    # Required at sign-in (the user's choice): the last authenticator cannot be removed.
    b.el("require").click()  # a checkbox: no page loads
    b.submit("save-require")
    assert b.el("require").is_selected()
    from selenium.webdriver.common.by import By
    b.loading(b.driver.find_element(By.CSS_SELECTOR, "button[aria-label='Remove Work phone']").click)
    assert b.devices() == ["iPad"]
    b.loading(b.driver.find_element(By.CSS_SELECTOR, "button[aria-label='Remove iPad']").click)
    assert b.heading() == "This authenticator is needed"
    b.submit("back")
    assert b.devices() == ["iPad"]

    # Recovery codes need a fresh code (ACR 3): signed in with a recovery code, dave confirms first.
    b.sign_out()
    b.sign_in("dave")
    b.submit("use-recovery")
    b.enter_code(first_codes[0])
    b.submit("confirm")
    assert b.heading() == "Confirm it's you"
    b.shot("step-up")
    b.enter_code(next_code(tablet, used))
    assert "Confirmed" in b.text("main")
    b.submit("regenerate")
    new_codes = b.recovery_codes()
    assert not set(new_codes) & set(first_codes)
    b.submit("saved")

    b.sign_out()
    b.sign_in("dave")
    b.submit("use-recovery")
    b.enter_code(first_codes[1])
    assert "not right" in b.text("error"), "the old set stopped working"
    b.enter_code(new_codes[0])
    assert b.path == "/account"

    # Not required any more: the last authenticator can go, and TOTP with it (every session ends).
    b.el("require").click()
    b.submit("save-require")
    assert not b.el("require").is_selected()
    b.loading(b.driver.find_element(By.CSS_SELECTOR, "button[aria-label='Remove iPad']").click)
    assert b.path == "/login" and "Two-step verification is off" in b.text("main")
    b.sign_in("dave")
    assert b.path == "/account" and "Off" in b.text("totp-status"), "the password alone signs in again"
    b.sign_out()


def test_a_lockout_says_until_when(browser, srv):
    b = browser
    b.sign_in("erin")
    b.submit("add-device")
    b.submit("start")
    totp = b.scanned()
    b.enter_code(totp.now())
    b.submit("saved")
    b.sign_out()
    b.sign_in("erin")
    wrong = "000000" if totp.now() != "000000" else "111111"
    for _ in range(5):  # maxFailedAttempts=5
        b.enter_code(wrong)
    assert b.heading() == "Too many wrong codes"
    assert re.search(r"until \d\d:\d\d:\d\d UTC", b.text("message"))
    b.shot("lockout")
    b.submit("back")
    b.enter_code(totp.now())
    assert b.heading() == "Too many wrong codes", "a right code does not open a lockout"


def test_a_page_form_without_the_csrf_field_or_from_another_site_changes_nothing(srv):
    http = srv.session(None)
    r = http.post(f"{srv.base}/api/session", json={"userName": "frank", "password": PW}, timeout=30)
    assert r.status_code == 201
    token = r.json()["accessToken"]
    csrf = r.json()["csrfToken"]
    url = f"{srv.base}/account/devices"
    r = http.post(url, data={"name": "Evil"}, timeout=30, allow_redirects=False)
    assert r.status_code == 403 and "Nothing was changed" in r.text
    r = http.post(url, data={"name": "Evil", "csrf": csrf}, headers={"Origin": "https://evil.example"}, timeout=30)
    assert r.status_code == 403
    r = http.post(f"{srv.base}/account/require", data={"required": "on", "csrf": "x" * 43}, timeout=30,
                  allow_redirects=False)
    assert r.status_code == 403
    page = http.get(f"{srv.base}/account", timeout=30)
    assert page.status_code == 200 and "No authenticator yet" in page.text, "nothing was added"
    assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert "unsafe-inline" not in page.headers["Content-Security-Policy"]
    r = http.post(url, data={"name": "Mine", "csrf": csrf}, timeout=30)
    assert r.status_code == 200 and "Scan the QR code" in r.text, "with the field, the same form works"
    assert token not in srv.log() and csrf not in srv.log()
    audit = str(srv.database.query_audit("SELECT * FROM audit_trail"))
    assert "account.devices.add" in audit, "the pages' changes are audited"
    assert token not in audit and csrf not in audit


def test_no_session_means_the_sign_in_page_and_secrets_stay_out_of_logs_and_urls(browser, srv):
    b = browser
    for path in ("/account", "/account/enroll", "/login/code"):
        b.driver.delete_all_cookies()
        b.go(path)
        assert b.path == "/login"
    b.shot("sign-in")
    b.sign_in("nobody", "wrong password")
    assert "not right" in b.text("error") and b.el("username").get_attribute("value") == "nobody"
    assert PW not in srv.log()
    for line in srv.log().splitlines():
        assert not re.search(r"[?&](code|csrf|token|secret)=", unquote(line)), line


def test_an_enrollment_not_finished_in_time_says_so_and_starts_again(browser, shots, tmp_path):
    from conftest import new_database, server_factory

    with new_database(tmp_path) as database, server_factory(tmp_path, database) as factory:
        quick = factory(properties={"pendingSecretLifetime": "2"})
        quick.cli("user", "add", "gina", input=f"{PW}\n")
        b = Browser(browser.driver, quick, shots)
        b.sign_in("gina")
        b.submit("add-device")
        b.submit("start")
        totp = b.scanned()
        time.sleep(2.5)
        b.enter_code(totp.now())
        assert b.heading() == "This set-up expired"
        b.shot("enroll-expired")
        b.submit("back")
        assert b.path == "/account/enroll", "a way on: start again"
        b.submit("start")
        b.enter_code(b.scanned().now())
        assert b.heading() == "Your recovery codes"
