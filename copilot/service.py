"""The dependency container: settings, database, pack, embedder, vector store, retriever,
pipeline stages. Built once per process (CLI command or API app); heavy parts load lazily."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from copilot.actions import ActionStore, AuditLog
from copilot.db import engine_for
from copilot.embeddings import Embedder, make_embedder
from copilot.errors import InvalidInput
from copilot import lexical
from copilot.files import code_fingerprint, keep_pickle, read_pickle
from copilot.knowledge.catalog import Catalog, content_hash
from copilot.knowledge.ingest import IngestReport, Indexer, Progress, expand_paths
from copilot.knowledge.items import ItemStore, KnowledgeItem, listing, overlay
from copilot.knowledge.pack import Pack, load_pack_cached, pack_key, report_issues
from copilot.lexical import Speller, add_domain_words, lexicon_version, vocabulary
from copilot.retrieve import Fusion, HybridRetriever
from copilot.settings import Settings
from copilot.vectorstore import VectorStore

# What only some commands use is imported where it is used: a CLI search should not pay for the
# accounts book, the spreadsheet importers, the prompts or the action executors (Step 6: start-up).
if TYPE_CHECKING:
    from copilot.accounts.book import Book, BookCache
    from copilot.accounts.plans import PlanStore
    from copilot.accounts.resolve import AccountResolver
    from copilot.accounts.store import AccountStore
    from copilot.actions import ActionRunner
    from copilot.calibration import Reference
    from copilot.compose import LlmComposer, Prompts, TemplateComposer
    from copilot.intent import IntentClassifier
    from copilot.knowledge.importer import SheetReport
    from copilot.knowledge.sources import KnowledgeSource
    from copilot.pipeline import Deps
    from copilot.users import UserStore

# The roles whose routing the decline reference is measured with.
ROLES = ("sales", "csm", "support")
# How often a worker asks the database whether another one changed the knowledge items.
KNOWLEDGE_CHECK_S = 0.5
# Catalog state: the knowledge (and tokenizer, embedding model) the index was last synced with.
KNOWLEDGE_SYNCED = "knowledge_synced"


@dataclass
class KnowledgeReport:
    """What one `ingest` did: documents, spreadsheets, and the knowledge items' index."""

    documents: IngestReport
    sheets: list[SheetReport] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # sheets that could not be read
    items: IngestReport | None = None
    pruned: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.failed or self.documents.failed or any(s.errors for s in self.sheets))


class Copilot:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.ensure_data_dir()
        self.engine = engine_for(settings.db_url)
        self.catalog = Catalog(self.engine)
        self.audit = AuditLog(self.engine)
        self.actions = ActionStore(self.engine, self.audit)
        self.items = ItemStore(self.engine)
        self._items_version = ""
        self._items_checked = 0.0
        self._reference: Reference | None = None
        self._examples_of: tuple[Pack | None, list[str], str] = (None, [], "")

    @cached_property
    def files_key(self) -> str:
        """A digest of the knowledge folder's files (see `pack_key`)."""
        return pack_key(self.settings.knowledge_dir)

    @cached_property
    def base_pack(self) -> Pack:
        """The YAML files as shipped or written by the company (read-only here)."""
        return load_pack_cached(self.settings.knowledge_dir, self.settings.data_dir / "cache", self.files_key)

    @cached_property
    def pack(self) -> Pack:
        """The effective knowledge: the YAML files with imported and edited items laid over."""
        return self._effective_pack()

    def _effective_pack(self) -> Pack:
        # Kept as a pickle per knowledge version: with a 10,000-row sheet imported, reading and
        # validating the stored rows would cost every command ~0.5 s.
        self._items_version = self.items.version()
        path = self.settings.data_dir / "cache" / f"knowledge-{self._knowledge_key()}.pickle"
        pack = read_pickle(path, Pack)
        if pack is None:
            pack = overlay(self.base_pack, self.items.all())
            keep_pickle(path, pack)
        else:
            report_issues(pack)
        return pack

    def _knowledge_key(self) -> str:
        return content_hash(f"{self.files_key}\n{self._items_version}")[:20]

    # Knowledge changes --------------------------------------------------------------------------
    def refresh_knowledge(self, progress: Progress | None = None) -> IngestReport:
        """Rebuild the effective knowledge from the stored items and bring the index in line."""
        pack = self._effective_pack()
        self.__dict__["pack"] = pack
        if "deps" in self.__dict__:
            self.deps.pack = pack
        if "classifier" in self.__dict__:
            self.classifier.use_pack(pack)
        return self.sync_index(progress)

    def sync_index(self, progress: Progress | None = None) -> IngestReport:
        """Bring the index in line with the effective knowledge. Skipped when the index was last
        synced with this very knowledge (files, stored items, tokenizer words, embedding model):
        comparing 10,000 items' passages costs a command ~0.3 s."""
        pack = self.pack
        self.speller  # the knowledge's words join the tokenizer first: they are part of what is synced
        synced = f"{self._knowledge_key()}:{lexicon_version()}:{self.embedder.name}"
        if self.catalog.state_value(KNOWLEDGE_SYNCED) == synced:
            return IngestReport()
        report = self.indexer.sync_pack(pack, self.items.origins(), progress)
        self.catalog.set_state_value(KNOWLEDGE_SYNCED, synced)
        return report

    def refresh_if_changed(self) -> None:
        """Pick up another worker's knowledge change (checked at most every KNOWLEDGE_CHECK_S)."""
        now = time.monotonic()
        if now - self._items_checked < KNOWLEDGE_CHECK_S or "pack" not in self.__dict__:
            return
        self._items_checked = now
        if self.items.version() != self._items_version:
            self.refresh_knowledge()

    def ingest(self, paths: list[str], actor: str = "cli", prune: bool = False,
               progress: Progress | None = None) -> KnowledgeReport:
        """Documents and spreadsheets, files or folders. A sheet that cannot be read changes nothing;
        a bad row is reported and the rest of its sheet loads."""
        from copilot.accounts.sheets import detect_account_sheet, import_account_sheet
        from copilot.knowledge.importer import import_sheet, sheet_origin
        from copilot.knowledge.parsers import SHEET_SUFFIXES, SUPPORTED

        files, folders, skipped = expand_paths(paths, SUPPORTED | SHEET_SUFFIXES)
        sheets = [(g, p) for g, p in files if p.suffix.lower() in SHEET_SUFFIXES]
        documents = [(g, p) for g, p in files if p.suffix.lower() not in SHEET_SUFFIXES]
        self.sync_index(progress)  # the pack's own changes, with progress
        report = KnowledgeReport(documents=self.indexer.ingest_files(documents, folders, skipped, progress))
        account_sheets = {path: kind for _, path in sheets if (kind := detect_account_sheet(path))}
        # Accounts before activity, so an activity row can name an account imported in the same run.
        for given, path in sorted(sheets, key=lambda gp: account_sheets.get(gp[1]) != "accounts"):
            try:
                if path in account_sheets:
                    report.sheets.append(import_account_sheet(path, given, account_sheets[path], self.accounts,
                                                              self.pack.rules))
                else:
                    report.sheets.append(import_sheet(path, given, self.items, self.pack.rules,
                                                      self.pack.industries(), actor))
            except InvalidInput as exc:
                report.failed.append((given, str(exc)))
        seen = {sheet_origin(p) for _, p in sheets}
        for origin, source in self.items.origins().items():
            path = Path(origin.split(":", 1)[1])
            walked = any(path.is_relative_to(folder) for folder in folders)
            if origin not in seen and not path.exists() and (walked or prune):
                self.items.remove_origin(origin)
                report.pruned.append(source)
        if prune:
            report.pruned.extend(self.indexer.remove_documents(self.indexer.missing_documents()))
        report.items = self.refresh_knowledge(progress)
        self._audit_ingest(actor, report)
        return report

    def remove(self, paths: list[str], actor: str = "cli") -> list[str]:
        """Take documents and spreadsheets out of the knowledge (the files themselves are left alone)."""
        from copilot.knowledge.importer import sheet_origin

        removed: list[str] = []
        origins = self.items.origins()
        for given in paths:
            key = str(Path(given).resolve())
            if sheet_origin(Path(given)) in origins:
                self.items.remove_origin(sheet_origin(Path(given)))
                removed.append(given)
            elif self.indexer.remove_documents([key]):
                removed.append(given)
            else:
                raise InvalidInput(f"{given}: not in the knowledge (see `copilot documents`)")
        self.refresh_knowledge()
        self.audit.record(actor, "knowledge_removed", None, {"sources": removed})
        return removed

    def sources(self) -> list[KnowledgeSource]:
        """The documents and sheets the knowledge came from (the pack's own files aside)."""
        from copilot.knowledge.sources import list_sources

        return list_sources(self.catalog, self.items)

    def remove_source(self, paths: list[str], actor: str) -> list[str]:
        """`remove`, and a file uploaded through the API goes with its knowledge: the product owns that copy."""
        removed = self.remove(paths, actor=actor)
        uploads = (self.settings.data_dir / "uploads").resolve()
        for given in removed:
            if Path(given).resolve().parent == uploads:
                Path(given).unlink(missing_ok=True)
        return removed

    def knowledge_items(self) -> list[KnowledgeItem]:
        """Every item, retired ones included, as the knowledge page lists them."""
        return listing(self.base_pack, self.items.all())

    def export(self, kind: str, path: Path, template: bool = False) -> int:
        """Write the active items of one kind as a sheet in the import columns (a round trip)."""
        from copilot.knowledge.parsers import SHEET_SUFFIXES
        from copilot.knowledge.sheets import KINDS, write_table, write_template

        if kind not in KINDS:
            raise InvalidInput(f"Unknown kind {kind!r}: expected one of {', '.join(KINDS)}")
        if path.suffix.lower() not in SHEET_SUFFIXES:
            raise InvalidInput(f"{path}: export writes .xlsx or .csv")
        if template:
            write_template(kind, path)  # type: ignore[arg-type]
            return 0
        items = [i.item for i in self.knowledge_items() if i.kind == kind and i.status == "active"]
        write_table(kind, items, path)  # type: ignore[arg-type]
        return len(items)

    def _audit_ingest(self, actor: str, report: KnowledgeReport) -> None:
        changed = {s.source: {"added": len(s.changes.added), "updated": len(s.changes.updated),
                              "removed": len(s.changes.removed)} for s in report.sheets if s.changes.changed}
        docs = report.documents
        if changed or report.pruned or docs.added or docs.updated or docs.removed:
            self.audit.record(actor, "knowledge_imported", None, {
                "sheets": changed, "documents_added": docs.added, "documents_updated": docs.updated,
                "documents_removed": docs.removed, "pruned": report.pruned})

    @cached_property
    def users(self) -> UserStore:
        from copilot.users import UserStore

        return UserStore(self.engine, self.audit)

    @cached_property
    def accounts(self) -> AccountStore:
        """The company's own customers (from its CRM export) and their monthly activity."""
        from copilot.accounts.store import AccountStore

        return AccountStore(self.engine)

    @cached_property
    def plans(self) -> PlanStore:
        """Saved success plans (stored by a confirmed save) and their tracked milestones."""
        from copilot.accounts.plans import PlanStore

        return PlanStore(self.engine, self.audit)

    @cached_property
    def account_resolver(self) -> AccountResolver:
        """Finds the account a question names (its name lookup is kept across requests)."""
        from copilot.accounts.resolve import AccountResolver

        return AccountResolver(self.accounts)

    @cached_property
    def book(self) -> BookCache:
        """Every account's health, risk and latest changes, kept until the accounts data changes."""
        from copilot.accounts.book import BookCache

        return BookCache(self.accounts)

    def current_book(self) -> Book:
        """Today's book with the tracked plan milestones: what the API, the page and the chat all read."""
        return self.book.book(self.pack.rules.insight, date.today(), self.plans.tracked())

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
                       batch_size=self.settings.embedding_batch_size,
                       exact_max_vectors=self.settings.exact_search_max_vectors)

    @cached_property
    def speller(self) -> Speller:
        """Domain words for the tokenizer (before anything is tokenized) and their speller.
        Building the speller reads every knowledge question and spells each word in pinyin
        (~0.7 s), so it is kept in the data dir, keyed by what it was built from."""
        words = self.pack.domain_words()
        add_domain_words(words)
        texts = self.pack.question_texts()
        key = content_hash("\n".join([lexicon_version(), code_fingerprint(lexical), *texts]))[:20]
        path = self.settings.data_dir / "cache" / f"speller-{key}.pickle"
        speller = read_pickle(path, Speller)
        if speller is None:
            speller = Speller(vocabulary(texts, words))
            keep_pickle(path, speller)
        return speller

    @cached_property
    def retriever(self) -> HybridRetriever:
        speller = self.speller
        self.sync_index()
        rules = self.pack.rules.retrieval
        fusion = Fusion(method=rules.fusion, dense=rules.dense, words=rules.words, bigrams=rules.bigrams)
        retriever = HybridRetriever(self.catalog, self.embedder, self.store,
                                    dense_weight=self.settings.dense_weight, candidates=self.settings.candidates,
                                    glossary=self.pack.glossary.terms, fusion=fusion, speller=speller,
                                    exact_max_vectors=self.settings.exact_search_max_vectors,
                                    incremental_min=self.settings.incremental_index_min_passages,
                                    snapshot_dir=self.settings.data_dir / "cache")
        from copilot.rerank import Reranker

        retriever.reranker = Reranker.from_settings(self.settings)  # None (off) unless COPILOT_RERANK_URL is set
        return retriever

    def intent_example_texts(self) -> list[str]:
        from copilot.intent import IntentClassifier

        return IntentClassifier.example_texts(self.pack)

    def scope_texts(self) -> list[str]:
        """The knowledge's own questions: what "in scope" means for the scope model."""
        from copilot.normalize import normalize

        return [normalize(t) for t in self.pack.question_texts()]

    @cached_property
    def classifier(self) -> IntentClassifier:
        from copilot.intent import IntentClassifier
        from copilot.scope import ScopeModel

        examples = self.intent_example_texts()
        vectors = self.indexer.embed_cached(examples)
        tasks = np.array([item.task for item in self.pack.intents for _ in item.examples])

        def scope_vectors() -> tuple[np.ndarray, np.ndarray]:
            inside = np.vstack([self.indexer.embed_cached(self.scope_texts()), vectors[tasks != "out_of_scope"]])
            return inside, vectors[tasks == "out_of_scope"]

        # The fit depends only on these texts and the model that embeds them.
        key = content_hash("\n".join([self.embedder.name, *self.pack.question_texts(), "\0",
                                      *(f"{task}\t{text}" for task, text in zip(tasks, examples))]))[:20]
        return IntentClassifier(self.pack, vectors, ScopeModel.cached(key, self.settings.data_dir / "cache", scope_vectors))

    def decline_reference(self) -> Reference | None:
        """What off-topic questions score on this knowledge (copilot/calibration.py): kept in the data
        dir, measured again when the index or the examples changed enough. None without examples."""
        from copilot import calibration
        from copilot.models import SearchFilters

        texts, key = self._reference_examples()
        if not texts:  # nothing to measure with: rules.yaml's figures stand in (pipeline.reference_for)
            return None
        passages = self.retriever.snapshot().live_count
        if self._reference is not None and calibration.still_fits(self._reference, key, passages):
            return self._reference
        path = self.settings.data_dir / "cache" / "decline-reference.json"
        reference = calibration.load(path)
        if reference is None or not calibration.still_fits(reference, key, passages):
            def search(text: str, vector: np.ndarray, role: str) -> dict[str, float]:
                route = self.pack.rules.role_route(role)
                filters = SearchFilters(kinds=route.kinds, audiences=route.audiences)
                return self.retriever.search(text, query_vector=vector, filters=filters).signals

            reference = calibration.measure(key, passages, texts, ROLES, self.retriever.embed_query, search)
            if reference is not None:
                calibration.save(path, reference)
        self._reference = reference
        return reference

    def _reference_examples(self) -> tuple[list[str], str]:
        """The out-of-scope examples and the key they and the embedder give a reference, once per pack."""
        pack = self.pack
        if self._examples_of[0] is not pack:
            texts = self.classifier.out_of_scope_examples()
            self._examples_of = (pack, texts, content_hash("\n".join([self.embedder.name, *texts]))[:20])
        return self._examples_of[1], self._examples_of[2]

    @cached_property
    def prompts(self) -> Prompts:
        from copilot.compose import Prompts

        return Prompts(self.settings.prompts_dir)

    @cached_property
    def composer(self) -> TemplateComposer:
        from copilot.compose import TemplateComposer

        return TemplateComposer(self.prompts, self.pack.rules)

    @cached_property
    def llm(self) -> LlmComposer | None:
        if not self.settings.llm_model:
            return None
        from langchain_openai import ChatOpenAI

        from copilot.compose import LlmComposer

        # No retries in the client: llm_timeout_s is the whole request's LLM time, and the
        # composer retries only within what is left of it (copilot/llm_budget.py).
        chat = ChatOpenAI(model=self.settings.llm_model, base_url=self.settings.llm_base_url,
                          api_key=self.settings.llm_api_key or "not-needed", timeout=self.settings.llm_timeout_s,
                          max_retries=0, temperature=0.2)
        return LlmComposer(chat, self.prompts, self.composer, self.pack.vendor.vendor,
                           timeout_s=self.settings.llm_timeout_s, max_retries=self.settings.llm_max_retries)

    @cached_property
    def action_runner(self) -> ActionRunner:
        from copilot.accounts.plans import PlanExecutor, with_plan_store
        from copilot.actions import ActionRunner
        from copilot.executors import build_executors
        from copilot.knowledge.changes import KnowledgeExecutor

        executors = {**build_executors(self.settings),
                     "knowledge": KnowledgeExecutor(self.items, self.refresh_knowledge, self.remove_source),
                     "plans": PlanExecutor(self.plans)}
        runner = ActionRunner(self.actions, lambda type_: with_plan_store(type_, self.pack.rules.action_policy(type_)),
                              executors, lambda role: self.pack.rules.confirmable_actions(role))
        runner.reconcile_interrupted()  # before this process lists, confirms or retries anything
        return runner

    @cached_property
    def deps(self) -> Deps:
        from copilot.pipeline import Deps

        return Deps(pack=self.pack, retriever=self.retriever, classifier=self.classifier, composer=self.composer,
                    actions=self.actions, audit=self.audit, llm=self.llm, llm_intent=self.settings.llm_intent,
                    accounts=self.account_resolver, account_book=self.current_book,
                    tracked_milestones=lambda account_id: self.plans.tracked([account_id]).get(account_id),
                    decline_reference=self.decline_reference)
