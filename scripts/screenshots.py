"""Take a PNG of each main web page into docs/screenshots/ (1280×900), with real data on screen.

Starts the real app on a free port with a fresh data dir and the bundled knowledge pack, then
drives the system Chromium with Playwright:

    apt-get install -y chromium fonts-noto-cjk   # fonts-noto-cjk: Chinese glyphs
    pip install playwright                        # no `playwright install`: the system browser is used
    python scripts/screenshots.py [--out docs/screenshots] [--width 1280 --height 900]
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def serve(data_dir: Path) -> Iterator[str]:
    """The real app in a uvicorn thread on a free loopback port; yields the base URL."""
    from copilot.api.app import create_app
    from copilot.api.background import ServerThread
    from copilot.settings import Settings

    with ServerThread(create_app(Settings(_env_file=None, data_dir=data_dir))) as running:
        yield running.url


def ask(page, question: str) -> None:
    """Type a question, press Enter, wait until its answer has finished streaming."""
    done = page.locator(".msg-bot .msg-meta").count()
    page.fill("#question", question)
    page.press("#question", "Enter")
    page.locator(".msg-bot .msg-meta").nth(done).wait_for()


def take(base: str, out: Path, width: int, height: int) -> list[Path]:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    shots: list[Path] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": width, "height": height}, locale="zh-CN")

        def shot(name: str, full_page: bool = False) -> None:
            path = out / f"{name}.png"
            page.screenshot(path=str(path), full_page=full_page)
            shots.append(path)

        # Assistant: a support question answered from an FAQ, with its source open.
        page.goto(f"{base}/assistant?role=sales")
        ask(page, "杭州有没有做烘焙连锁的客户案例？")
        shot("assistant")
        page.click(".msg-bot .cite-chip >> nth=0")
        page.wait_for_selector("#source-panel.open")
        shot("assistant-source")

        # Cases: a profile chosen from pick lists.
        page.goto(f"{base}/cases")
        page.select_option("#industry", "烘焙")
        page.select_option("#city", "杭州")
        page.select_option("#tier", "中型")
        page.click("label.chip-toggle:has-text('连锁')")
        page.click("label.chip-toggle:has-text('会员复购')")
        page.click("#case-search")
        page.wait_for_selector(".case-card")
        shot("cases")

        # Plans: a drafted plan, then the confirm dialog for saving it.
        page.goto(f"{base}/plans")
        page.fill("#plan-name", "杭州麦穗烘焙（示例）")
        page.select_option("#plan-industry", "烘焙")
        page.select_option("#plan-tier", "中型")
        page.click("label.chip-toggle:has-text('云铺会员')")
        page.click("label.chip-toggle:has-text('云铺收银')")
        page.click("label.chip-toggle:has-text('提升会员复购')")
        page.fill(".person >> nth=0 >> [name=person_name]", "王敏")
        page.fill(".person >> nth=1 >> [name=person_name]", "陈总")
        page.click("#plan-draft")
        page.wait_for_selector(".plan-card")
        page.wait_for_timeout(800)  # the smooth scroll to the plan
        page.evaluate("window.scrollTo(0, 0); document.querySelector('.form-card').scrollTop = 0")
        shot("plans")
        page.click("#plan-save")
        page.wait_for_selector("#confirm-dialog[open]")
        shot("confirm")
        page.click("#confirm-ok")
        page.wait_for_selector(".toast-success")

        # An escalation from the support chat leaves a pending action for the inbox.
        page.goto(f"{base}/assistant?role=support")
        ask(page, "我们是年费200万的大客户，全部门店无法收银，紧急！")
        page.goto(f"{base}/actions")
        page.wait_for_selector(".inbox-card, .empty-state")
        shot("actions")
        page.click("[data-tab=history]")
        page.wait_for_selector(".history-row")
        page.click(".history-row >> nth=0 >> [data-trail]")
        page.wait_for_selector(".trail li")
        shot("actions-history")

        page.goto(f"{base}/map")
        page.wait_for_selector(".map-cell")
        shot("map")

        # Gaps: an unanswerable question, a shaky one and a thumbs-down first.
        page.goto(f"{base}/assistant?role=support")
        page.click("#new-chat")
        for question in ("今天杭州天气怎么样", "能开通跨境电商独立站吗？", "你们支持海外门店用美元结算吗？"):
            ask(page, question)
        page.click(".msg-bot >> nth=-1 >> [data-rate=down]")
        page.fill(".msg-bot >> nth=-1 >> .feedback-form textarea", "海外结算是很多连锁客户都会问的，需要补一条 FAQ")
        page.click(".msg-bot >> nth=-1 >> .feedback-form button[type=submit]")
        page.wait_for_selector(".thanks")
        page.goto(f"{base}/gaps")
        page.wait_for_selector(".gap-card")
        shot("gaps")

        page.goto(f"{base}/knowledge")
        page.wait_for_selector(".kb-list li")
        shot("knowledge")

        # 我的客户: the sample book riskiest first, then one account's reasons and next best actions.
        page.goto(f"{base}/accounts")
        page.wait_for_selector(".acct-row")
        shot("accounts")
        page.locator(".acct-row").filter(has_text="麦香坊").click()
        page.wait_for_selector("#acct-dialog .acct-action")
        shot("accounts-detail")

        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(f"{base}/assistant?role=support")
        page.wait_for_selector(".msg-bot")
        shot("phone-assistant")
        browser.close()
    return shots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=900)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="copilot-shots-") as tmp:
        add_sample_accounts(Path(tmp))
        with serve(Path(tmp)) as base:
            shots = take(base, args.out, args.width, args.height)
            shots.append(take_people(base, Path(tmp), args.out, args.width, args.height))
            for path in shots:
                print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


def take_people(base: str, data_dir: Path, out: Path, width: int, height: int) -> Path:
    """The admin's 人员 page. Last, because once people exist every page needs a key."""
    from playwright.sync_api import sync_playwright

    from copilot.service import Copilot
    from copilot.settings import Settings

    users = Copilot(Settings(_env_file=None, data_dir=data_dir)).users
    _, key = users.add("陈静", "admin", "cli")
    for name, role, email in (("王敏", "csm", "wang.min@example.com"), ("赵磊", "sales", None),
                              ("客服小李", "support", None), ("周洁", "knowledge", "zhou.jie@example.com")):
        users.add(name, role, "陈静", email=email)
    users.set_active("赵磊", False, "陈静")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
        context.add_init_script(f"localStorage.setItem('copilot.apiKey', {key!r})")
        page = context.new_page()
        page.goto(f"{base}/users")
        page.wait_for_selector('tr[data-user="周洁"]')
        path = out / "users.png"
        page.screenshot(path=str(path))
        browser.close()
    return path


def add_sample_accounts(data_dir: Path) -> None:
    """The sample book (marked 示例) through the real importer, for the 我的客户 page."""
    from copilot.accounts.sample import write_sample_sheets
    from copilot.service import Copilot
    from copilot.settings import Settings

    write_sample_sheets(data_dir / "sample-accounts")
    Copilot(Settings(_env_file=None, data_dir=data_dir)).ingest([str(data_dir / "sample-accounts")])


if __name__ == "__main__":
    main()
