"""People, not shared keys: each person has a role, audiences and a key stored as a hash; every
record names the person; a disabled person is out at once; nothing a caller gets holds key material."""

from __future__ import annotations

import hashlib
import json

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from copilot.api.app import create_app
from copilot.cli import app as cli_app
from tests.conftest import build_settings

runner = CliRunner()


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request, tmp_path, tiny_pack_dir):
    database = {"database_url": request.getfixturevalue("postgres_url")} if request.param == "postgres" else {}
    return build_settings(tmp_path, tiny_pack_dir, **database)


@pytest.fixture
def copilot(settings):
    from copilot.service import Copilot

    return Copilot(settings)


def auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def _client(settings) -> TestClient:
    return TestClient(create_app(settings, warm=False))


def test_a_key_is_shown_once_and_stored_only_as_its_hash(copilot):
    user, key = copilot.users.add("王敏", "csm", "admin")
    assert key.startswith("cpk_") and len(key) > 40
    with copilot.engine.connect() as conn:
        row = conn.execute(sa.select(copilot_db().users).where(copilot_db().users.c.name == "王敏")).mappings().one()
    assert row["key_hash"] == hashlib.sha256(key.encode()).hexdigest()
    assert key not in json.dumps({k: str(v) for k, v in row.items()})
    assert "key" not in user.model_dump() and user.has_key
    assert copilot.users.by_key(key).name == "王敏"
    assert copilot.users.by_key(key[:-1] + ("A" if key[-1] != "A" else "B")) is None


def copilot_db():
    from copilot import db

    return db


def test_each_person_is_named_in_what_they_do_and_sees_only_their_own(settings, copilot):
    """Keys sharing their first characters used to merge into one actor ("key:cpk_…") who could read
    the other's actions."""
    _, alice_key = copilot.users.add("alice", "knowledge", "admin")
    _, bob_key = copilot.users.add("bob", "knowledge", "admin")
    assert alice_key[:4] == bob_key[:4]
    with _client(settings) as client:
        assert client.get("/api/me", headers=auth(alice_key)).json()["name"] == "alice"
        proposed = client.post("/api/knowledge/items/faq-refund/changes", headers=auth(alice_key),
                               json={"change": "retire", "reason": "过期"})
        assert proposed.status_code == 201, proposed.text
        action = proposed.json()
        assert action["proposed_by"] == "alice"
        # Four-eyes now means two people: alice cannot confirm her own change, bob can.
        own = client.post(f"/api/actions/{action['id']}/confirm", headers=auth(alice_key), json={"decision": "approve"})
        assert own.status_code == 403
        done = client.post(f"/api/actions/{action['id']}/confirm", headers=auth(bob_key), json={"decision": "approve"})
        assert done.status_code == 200, done.text
        assert done.json()["decided_by"] == "bob"
        history = [(e["event"], e["actor"]) for e in done.json()["history"]]
        assert ("proposed", "alice") in history and ("approved", "bob") in history
        for key in (alice_key, bob_key):
            for response in (done, client.get("/api/actions", headers=auth(key)),
                             client.get("/api/audit", headers=auth(key))):
                assert key not in response.text and key[:8] not in response.text


def test_a_person_does_not_see_another_persons_proposals(settings, copilot):
    _, alice_key = copilot.users.add("alice", "knowledge", "admin")
    _, carol_key = copilot.users.add("carol", "sales", "admin")
    with _client(settings) as client:
        mine = client.post("/api/knowledge/items/faq-refund/changes", headers=auth(alice_key),
                           json={"change": "retire"}).json()
        theirs = client.get("/api/actions", headers=auth(carol_key))
        assert theirs.status_code == 200
        assert mine["id"] not in {a["id"] for a in theirs.json()}
        assert client.get(f"/api/actions/{mine['id']}", headers=auth(carol_key)).status_code == 404


def test_a_disabled_person_is_out_at_once_and_a_new_key_replaces_the_old(settings, copilot):
    _, key = copilot.users.add("dave", "support", "admin")
    with _client(settings) as client:
        assert client.get("/api/me", headers=auth(key)).status_code == 200
        copilot.users.set_active("dave", False, "admin")
        refused = client.get("/api/me", headers=auth(key))
        assert refused.status_code == 401 and refused.json()["error"]["type"] == "unauthorized"
        copilot.users.set_active("dave", True, "admin")
        fresh = copilot.users.rotate_key("dave", "admin")
        assert client.get("/api/me", headers=auth(key)).status_code == 401
        assert client.get("/api/me", headers=auth(fresh)).json()["name"] == "dave"


def test_once_people_are_set_up_every_request_names_one(settings, copilot):
    with _client(settings) as client:
        assert client.get("/api/me").json()["name"] == "local"  # nobody set up: the one local user
        copilot.users.add("erin", "admin", "cli")
        anonymous = client.get("/api/me")
        assert anonymous.status_code == 401
        assert "密钥" in anonymous.json()["error"]["message"] or "登录" in anonymous.json()["error"]["message"]
        assert client.get("/api/me", headers=auth("not-a-key")).status_code == 401


def test_support_reads_public_knowledge_only_by_default(settings, copilot):
    support, support_key = copilot.users.add("fay", "support", "admin")
    _, sales_key = copilot.users.add("gus", "sales", "admin")
    assert support.audiences == ["public"]
    with _client(settings) as client:
        assert client.get("/api/me", headers=auth(support_key)).json()["audiences"] == ["public"]
        assert client.get("/api/me", headers=auth(sales_key)).json()["audiences"] == ["public", "internal"]
        # Support asks as support only; the role is the person's, not the request's.
        asked = client.post("/api/ask", headers=auth(support_key), json={"question": "退款怎么处理", "role": "sales"})
        assert asked.status_code == 403


def test_admins_manage_people_through_the_api(settings, copilot):
    _, admin_key = copilot.users.add("root", "admin", "cli")
    _, csm_key = copilot.users.add("hana", "csm", "root")
    with _client(settings) as client:
        assert client.get("/api/users", headers=auth(csm_key)).status_code == 403
        created = client.post("/api/users", headers=auth(admin_key),
                              json={"name": "ivy", "role": "support", "email": "ivy@example.com"})
        assert created.status_code == 201, created.text
        key = created.json()["key"]
        assert client.get("/api/me", headers=auth(key)).json()["role"] == "support"
        listed = client.get("/api/users", headers=auth(admin_key))
        assert {u["name"] for u in listed.json()} == {"root", "hana", "ivy"}
        assert key not in listed.text and "key_hash" not in listed.text
        assert client.post("/api/users", headers=auth(admin_key), json={"name": "ivy", "role": "csm"}).status_code == 409
        bad_role = client.post("/api/users", headers=auth(admin_key), json={"name": "jo", "role": "boss"})
        assert bad_role.status_code == 422
        ivy = next(u for u in listed.json() if u["name"] == "ivy")
        assert client.post(f"/api/users/{ivy['id']}/disable", headers=auth(admin_key)).status_code == 200
        assert client.get("/api/me", headers=auth(key)).status_code == 401
        # The last active admin cannot lock everyone else out of managing people.
        root = next(u for u in listed.json() if u["name"] == "root")
        last = client.post(f"/api/users/{root['id']}/disable", headers=auth(admin_key))
        assert last.status_code == 409
        events = [e["event"] for e in client.get("/api/audit", headers=auth(admin_key)).json()]
        assert {"user_added", "user_disabled"} <= set(events)


def test_service_keys_are_named_by_role_not_by_their_text(tmp_path, tiny_pack_dir):
    keys = {"k1": "sales", "k2": "sales", "k3": "admin"}
    settings = build_settings(tmp_path, tiny_pack_dir, api_keys=keys)
    with _client(settings) as client:
        names = [client.get("/api/me", headers=auth(k)).json()["name"] for k in keys]
        assert names == ["service-sales-1", "service-sales-2", "service-admin-1"]
        feedback = client.post("/api/feedback", headers=auth("k1"),
                               json={"question": "退款", "answer": "…", "rating": "up"})
        assert feedback.status_code == 201
        audit = client.get("/api/audit", headers=auth("k3")).json()
        assert "service-sales-1" in {e["actor"] for e in audit}
        assert not any("k1" in e["actor"] for e in audit)


def test_the_cli_adds_lists_disables_and_confirms_as_a_person(settings):
    data_dir = ["--data-dir", str(settings.data_dir)]
    env = {"COPILOT_KNOWLEDGE_DIR": str(settings.knowledge_dir)}
    if settings.database_url:
        env["COPILOT_DATABASE_URL"] = settings.database_url
    added = runner.invoke(cli_app, ["users", "add", "kim", "--role", "knowledge", *data_dir], env=env)
    assert added.exit_code == 0, added.output
    kim_key = added.output.strip().splitlines()[-1]
    assert kim_key.startswith("cpk_")
    lee_key = runner.invoke(cli_app, ["users", "add", "lee", "--role", "knowledge", *data_dir],
                            env=env).output.strip().splitlines()[-1]
    listed = runner.invoke(cli_app, ["users", "list", "--json", *data_dir], env=env)
    assert {u["name"] for u in json.loads(listed.output)} == {"kim", "lee"} and kim_key not in listed.output

    from copilot.service import Copilot

    copilot = Copilot(settings)
    action = copilot.actions.propose("change_knowledge", "下架 faq-refund", {"item_id": "faq-refund"}, "kim", "knowledge")
    # People are set up: the command line must say who is confirming.
    anonymous = runner.invoke(cli_app, ["actions", "confirm", action.id, "--reject", *data_dir], env=env)
    assert anonymous.exit_code == 2 and "--key" in anonymous.output
    own = runner.invoke(cli_app, ["actions", "confirm", action.id, "--approve", "--key", kim_key, *data_dir], env=env)
    assert own.exit_code == 2 and "second person" in own.output
    rejected = runner.invoke(cli_app, ["actions", "confirm", action.id, "--reject", "--key", lee_key, "--json",
                                       *data_dir], env=env)
    assert rejected.exit_code == 0, rejected.output
    assert json.loads(rejected.output)["decided_by"] == "lee"

    assert runner.invoke(cli_app, ["users", "disable", "lee", *data_dir], env=env).exit_code == 0
    other = copilot.actions.propose("change_knowledge", "下架", {"item_id": "faq-printer"}, "kim", "knowledge")
    gone = runner.invoke(cli_app, ["actions", "confirm", other.id, "--reject", "--key", lee_key, *data_dir], env=env)
    assert gone.exit_code == 2 and "disabled" in gone.output
    unknown_role = runner.invoke(cli_app, ["users", "add", "max", "--role", "boss", *data_dir], env=env)
    assert unknown_role.exit_code == 2 and "Unknown role" in unknown_role.output


def test_serving_beyond_loopback_needs_people_or_keys(tmp_path, tiny_pack_dir):
    settings = build_settings(tmp_path, tiny_pack_dir)
    result = runner.invoke(cli_app, ["serve", "--host", "0.0.0.0", "--data-dir", str(settings.data_dir)],
                           env={"COPILOT_KNOWLEDGE_DIR": str(tiny_pack_dir)})
    assert result.exit_code == 2 and "copilot users add" in " ".join(result.output.split())
