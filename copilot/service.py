"""The dependency container: settings, database, pack, embedder, vector store, retriever.

Built once per process (CLI command or API app) and passed in; heavy parts load lazily.
"""

from __future__ import annotations

from functools import cached_property

from copilot.db import engine_for
from copilot.embeddings import Embedder, make_embedder
from copilot.knowledge.catalog import Catalog
from copilot.knowledge.ingest import Indexer
from copilot.knowledge.pack import Pack, load_pack
from copilot.retrieve import HybridRetriever
from copilot.settings import Settings
from copilot.vectorstore import VectorStore


class Copilot:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.ensure_data_dir()
        self.engine = engine_for(settings.db_url)
        self.catalog = Catalog(self.engine)

    @cached_property
    def pack(self) -> Pack:
        return load_pack(self.settings.knowledge_dir)

    @cached_property
    def embedder(self) -> Embedder:
        return make_embedder(self.settings)

    @cached_property
    def store(self) -> VectorStore:
        return VectorStore(self.settings, self.embedder)

    @cached_property
    def indexer(self) -> Indexer:
        return Indexer(self.catalog, self.embedder, self.store, self.settings.knowledge_dir / "embeddings")

    @cached_property
    def retriever(self) -> HybridRetriever:
        self.indexer.sync_pack(self.pack)
        return HybridRetriever(self.catalog, self.embedder, self.store,
                               dense_weight=self.settings.dense_weight, candidates=self.settings.candidates)
