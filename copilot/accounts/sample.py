"""Invented demo accounts and their monthly activity, reproducible from a seed.

Industries and cities are the knowledge pack's (knowledge/cases.yaml); every name carries
（示例） and every account is marked sample=True. Healthy accounts grow their usage, at-risk ones
decline before their renewal; about a third have a past renewal with its outcome, so a backtest
of the renewal-risk model has labels.
"""

from __future__ import annotations

import csv
import random
from datetime import date
from pathlib import Path

from copilot.accounts.models import Account, Activity, Contact, Tier
from copilot.accounts.sheets import COLUMNS, account_id, write_accounts, write_activity
from copilot.accounts.sheets import _activity_cells as activity_cells

# (industry, name endings) and (city, province) as in the pack's cases.
INDUSTRIES = {
    "烘焙": ("面包坊", "烘焙", "西饼屋"), "茶饮": ("茶饮", "茶坊", "奶茶"), "餐饮": ("小馆", "餐厅", "食府"),
    "运动户外": ("运动", "户外"), "服装": ("服饰", "衣橱"), "生鲜": ("鲜果", "生鲜"), "文旅": ("文旅", "景区"),
    "酒水": ("酒业", "酒坊"), "美妆": ("美妆", "美肤"), "母婴": ("母婴", "宝贝屋"),
}
CITIES = {
    "杭州": "浙江", "成都": "四川", "广州": "广东", "长沙": "湖南", "深圳": "广东", "上海": "上海", "重庆": "重庆",
    "青岛": "山东", "西安": "陕西", "苏州": "江苏", "武汉": "湖北", "厦门": "福建", "北京": "北京", "郑州": "河南",
    "宁波": "浙江", "南京": "江苏",
}
_PREFIXES = ("禾木", "青柠", "云朵", "暖阳", "山海", "小满", "半夏", "知味", "拾光", "初见", "一品", "老街", "南山",
             "北岸", "金谷", "星河", "晨曦", "悦来", "朴素", "好邻", "稻香", "松果", "麦田", "花间", "溪谷", "鹿鸣",
             "橙心", "丰收", "小岛", "白露")
# Tier -> (annual fee range in yuan, active stores at full use); fees fall inside the pack's bands.
_TIERS: dict[Tier, tuple[tuple[int, int], tuple[int, int]]] = {
    "大型": ((1_000_000, 3_000_000), (120, 400)), "中型": ((100_000, 500_000), (15, 60)),
    "中小": ((10_000, 90_000), (3, 12)), "小微": ((3_000, 9_000), (1, 2)),
}
_CSMS = ("王敏", "李娜", "张伟", "陈静")
_SALES = ("刘洋", "赵磊", "孙悦")
_PRODUCTS = ("云铺收银", "云铺会员", "云铺商城", "云铺点单", "云铺数据", "云铺导购")
MAIXIANGFANG = "麦香坊（示例）"
_NAME_TRIES = 50  # collisions before a name gets a branch number


def _months(end: str, count: int) -> list[str]:
    return [_shift(end, -i) for i in range(count - 1, -1, -1)]


def _shift(month: str, count: int) -> str:
    year, number = map(int, month.split("-"))
    index = year * 12 + number - 1 + count
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _month_start(month: str) -> date:
    return date(int(month[:4]), int(month[5:]), 1)


def _curve(start: float, stop: float, n: int, turn: float = 0.0) -> list[float]:
    """n values from start to stop; with turn > 0 they stay at start for that share of the months."""
    flat = int(n * turn)
    steps = max(n - flat - 1, 1)
    return [start if i < flat else start + (stop - start) * (i - flat) / steps for i in range(n)]


def _activity(rng: random.Random, aid: str, months: list[str], stores: int, healthy: bool,
              turn: float) -> list[Activity]:
    n = len(months)
    if healthy:
        store_curve = _curve(stores * 0.6, stores, n)
        adoption, tickets, nps = _curve(0.3, 0.7, n), _curve(3, 1, n), _curve(20, 55, n)
    else:
        store_curve = _curve(stores, stores * 0.4, n, turn)
        adoption, tickets, nps = (_curve(0.6, 0.25, n, turn), _curve(2, 10, n, turn),
                                  _curve(30, -20, n, turn))
    rows = []
    for i, month in enumerate(months):
        active = max(1, round(store_curve[i] * rng.uniform(0.95, 1.05)))
        users = active * rng.randint(3, 6)
        rows.append(Activity(
            account_id=aid, month=month, active_stores=active, active_users=users,
            logins=users * rng.randint(8, 15), feature_adoption=round(min(1, max(0, adoption[i] + rng.uniform(-.03, .03))), 2),
            tickets=max(0, round(tickets[i] + rng.uniform(-1, 1))), nps=round(nps[i] + rng.uniform(-5, 5)),
            milestones_done=i // 3 if healthy else min(i // 3, 2), milestones_late=0 if healthy else int(i * turn) // 4))
    return rows


def _maixiangfang(rows: list[Activity]) -> list[Activity]:
    """Active stores flat at 20, then down to 8 over the last six months."""
    stores = ([20] * len(rows) + [18, 15, 12, 10, 9, 8])[-len(rows):]
    return [r.model_copy(update={"active_stores": s, "active_users": s * 4, "logins": s * 40})
            for r, s in zip(rows, stores)]


def _name(rng: random.Random, industry: str, used: set[str]) -> str:
    # A prefix and an ending give a few hundred names; a large book (the 10,000-account benchmark)
    # runs out of them, so after a few collisions a branch number makes the name unique.
    for attempt in range(_NAME_TRIES + 1_000_000):
        number = f"{attempt - _NAME_TRIES + 2}号" if attempt >= _NAME_TRIES else ""
        name = f"{rng.choice(_PREFIXES)}{rng.choice(INDUSTRIES[industry])}{number}（示例）"
        if name not in used and name != MAIXIANGFANG:
            used.add(name)
            return name
    raise RuntimeError("no free sample name")  # unreachable: numbers never run out first


def _account(rng: random.Random, name: str, industry: str, city: str, tier: Tier, renews_on: date,
             outcome: str | None, aliases: list[str] | None = None, fee: int | None = None) -> Account:
    (low, high), _ = _TIERS[tier]
    contact = Contact(name=rng.choice(("周", "吴", "郑", "冯")) + rng.choice(("总", "经理")), title="运营负责人",
                      phone=f"138{rng.randint(10_000_000, 99_999_999)}")
    return Account(
        id=account_id(name), name=name, aliases=aliases or [], industry=industry, city=city, province=CITIES[city],
        annual_fee=fee or round(rng.randint(low, high), -3), tier=tier,
        signed_on=renews_on.replace(year=renews_on.year - rng.randint(1, 3)), renews_on=renews_on,
        csm=rng.choice(_CSMS), sales=rng.choice(_SALES), products=rng.sample(_PRODUCTS, rng.randint(1, 3)),
        contacts=[contact], outcome=outcome, sample=True)  # type: ignore[arg-type]


def sample_accounts(seed: int = 7, n: int = 60, months: int = 12,
                    end: str = "2026-11") -> tuple[list[Account], list[Activity]]:
    """n demo accounts (麦香坊（示例） among them) with `months` months of activity ending at `end`."""
    rng = random.Random(seed)
    window = _months(end, months)
    accounts, activity = [], []
    used: set[str] = set()
    for index in range(n):
        industry, city = rng.choice(list(INDUSTRIES)), rng.choice(list(CITIES))
        tier: Tier = rng.choices(list(_TIERS), weights=(1, 4, 4, 2))[0]
        healthy = rng.random() < 0.6
        if index == 0:  # the account the demo asks about: a Hangzhou bakery chain losing stores
            account = _account(rng, MAIXIANGFANG, "烘焙", "杭州", "中型", _month_start(_shift(end, 2)), None,
                               aliases=["麦香坊", "麥香坊"], fee=180_000)
            rows = _maixiangfang(_activity(rng, account.id, window, 20, healthy=False, turn=0.5))
        elif rng.random() < 1 / 3:  # a past renewal inside the window, with its outcome
            renewal = rng.randrange(months // 2, months - 1)
            churned = (not healthy and rng.random() < 0.8) or (healthy and rng.random() < 0.1)
            account = _account(rng, _name(rng, industry, used), industry, city, tier,
                               _month_start(window[renewal]).replace(day=rng.randint(1, 28)),
                               "churned" if churned else "renewed")
            stores = rng.randint(*_TIERS[tier][1])
            rows = _activity(rng, account.id, window, stores, healthy=healthy, turn=rng.uniform(0.1, 0.4))
            if churned:
                rows = rows[:renewal + 1]  # no activity after the account left
        else:  # renewal still ahead
            ahead = _shift(end, rng.randint(1, 12))
            account = _account(rng, _name(rng, industry, used), industry, city, tier,
                               _month_start(ahead).replace(day=rng.randint(1, 28)), None)
            rows = _activity(rng, account.id, window, rng.randint(*_TIERS[tier][1]), healthy=healthy,
                             turn=rng.uniform(0.3, 0.6))
        accounts.append(account)
        activity.extend(rows)
    return accounts, activity


def write_sample_sheets(folder: Path, seed: int = 7, n: int = 60, months: int = 12,
                        end: str = "2026-11", activity_csv: bool = False) -> tuple[Path, Path]:
    """Write accounts.xlsx and activity.xlsx (or .csv) in the import format, for a demo through the
    real importer."""
    folder.mkdir(parents=True, exist_ok=True)
    accounts, activity = sample_accounts(seed, n, months, end)
    paths = folder / "accounts.xlsx", folder / ("activity.csv" if activity_csv else "activity.xlsx")
    write_accounts(accounts, paths[0])
    if activity_csv:
        _write_activity_csv(activity, paths[1])
    else:
        write_activity(activity, paths[1])
    return paths


def _write_activity_csv(rows: list[Activity], path: Path) -> None:
    # A large book's activity is written as CSV: openpyxl takes minutes over 100,000 rows.
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([c.header for c in COLUMNS["activity"]])
        writer.writerows([["" if v is None else v for v in activity_cells(r)] for r in rows])
