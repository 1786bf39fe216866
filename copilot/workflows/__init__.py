"""The three frontline workflows as thin compositions of the pipeline's stages:
peer cases for sales (`cases`), joint success plans for CSMs (`plans`); the FAQ chat is
`pipeline.answer` itself."""

from __future__ import annotations

from typing import Protocol

from copilot.intent import IntentClassifier
from copilot.knowledge.pack import Pack
from copilot.retrieve import HybridRetriever


class WorkflowDeps(Protocol):
    """What a workflow reads. `copilot.service.Copilot` fits (its parts load lazily, so a
    profile-only case search or a plan never loads the index) and so does `pipeline.Deps`."""

    @property
    def pack(self) -> Pack: ...

    @property
    def retriever(self) -> HybridRetriever: ...

    @property
    def classifier(self) -> IntentClassifier: ...
