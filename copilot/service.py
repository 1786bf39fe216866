"""The dependency container: settings, database, pack, embedder, vector store, retriever,
pipeline stages. Built once per process (CLI command or API app); heavy parts load lazily."""

from __future__ import annotations

from functools import cached_property

import numpy as np

from copilot.actions import ActionRunner, ActionStore, AuditLog
from copilot.compose import LlmComposer, Prompts, TemplateComposer
from copilot.db import engine_for
from copilot.embeddings import Embedder, make_embedder
from copilot.executors import build_executors
from copilot.intent import IntentClassifier
from copilot.knowledge.catalog import Catalog
from copilot.knowledge.ingest import Indexer
from copilot.knowledge.pack import Pack, load_pack
from copilot.pipeline import Deps
from copilot.lexical import Speller, add_domain_words, vocabulary
from copilot.normalize import normalize
from copilot.retrieve import Fusion, HybridRetriever
from copilot.scope import ScopeModel
from copilot.settings import Settings
from copilot.vectorstore import VectorStore


class Copilot:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.ensure_data_dir()
        self.engine = engine_for(settings.db_url)
        self.catalog = Catalog(self.engine)
        self.audit = AuditLog(self.engine)
        self.actions = ActionStore(self.engine, self.audit)

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
        self.speller  # documents are tokenized with the domain words
        return Indexer(self.catalog, self.embedder, self.store, self.settings.knowledge_dir / "embeddings",
                       batch_size=self.settings.embedding_batch_size)

    @cached_property
    def speller(self) -> Speller:
        """Domain words for the tokenizer (before anything is tokenized) and their speller."""
        words = self.pack.domain_words()
        add_domain_words(words)
        return Speller(vocabulary(self.pack.question_texts(), words))

    @cached_property
    def retriever(self) -> HybridRetriever:
        speller = self.speller
        self.indexer.sync_pack(self.pack)
        rules = self.pack.rules.retrieval
        fusion = Fusion(method=rules.fusion, dense=rules.dense, words=rules.words, bigrams=rules.bigrams)
        return HybridRetriever(self.catalog, self.embedder, self.store,
                               dense_weight=self.settings.dense_weight, candidates=self.settings.candidates,
                               glossary=self.pack.glossary, fusion=fusion, speller=speller,
                               exact_max_vectors=self.settings.exact_search_max_vectors)

    def intent_example_texts(self) -> list[str]:
        return IntentClassifier.example_texts(self.pack)

    def scope_texts(self) -> list[str]:
        """The knowledge's own questions: what "in scope" means for the scope model."""
        return [normalize(t) for t in self.pack.question_texts()]

    @cached_property
    def classifier(self) -> IntentClassifier:
        vectors = self.indexer.embed_cached(self.intent_example_texts())
        tasks = np.array([item.task for item in self.pack.intents for _ in item.examples])
        inside = np.vstack([self.indexer.embed_cached(self.scope_texts()), vectors[tasks != "out_of_scope"]])
        return IntentClassifier(self.pack, vectors, ScopeModel(inside, vectors[tasks == "out_of_scope"]))

    @cached_property
    def prompts(self) -> Prompts:
        return Prompts(self.settings.prompts_dir)

    @cached_property
    def composer(self) -> TemplateComposer:
        return TemplateComposer(self.prompts, self.pack.rules)

    @cached_property
    def llm(self) -> LlmComposer | None:
        if not self.settings.llm_model:
            return None
        from langchain_openai import ChatOpenAI

        chat = ChatOpenAI(model=self.settings.llm_model, base_url=self.settings.llm_base_url,
                          api_key=self.settings.llm_api_key or "not-needed", timeout=self.settings.llm_timeout_s,
                          max_retries=self.settings.llm_max_retries, temperature=0.2)
        return LlmComposer(chat, self.prompts, self.composer, self.pack.vendor.get("vendor", ""))

    @cached_property
    def action_runner(self) -> ActionRunner:
        return ActionRunner(self.actions, lambda type_: self.pack.rules.action_policy(type_),
                            build_executors(self.settings), lambda role: self.pack.rules.confirmable_actions(role))

    @cached_property
    def deps(self) -> Deps:
        return Deps(pack=self.pack, retriever=self.retriever, classifier=self.classifier, composer=self.composer,
                    actions=self.actions, audit=self.audit, llm=self.llm, llm_intent=self.settings.llm_intent)
