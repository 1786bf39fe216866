"""The hybrid retriever as a LangChain retriever, for chains and agents built on LangChain.

A module of its own: importing LangChain costs about a second, which no CLI command or API
request that does not use it should pay."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

from copilot.models import SearchFilters


class CopilotRetriever(BaseRetriever):
    """The hybrid retriever as a LangChain retriever."""

    retriever: Any
    k: int = 5
    filters: SearchFilters | None = None

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        found = self.retriever.search(query, k=self.k, filters=self.filters)
        return [Document(page_content=e.text, id=e.id,
                         metadata={"id": e.id, "kind": e.kind, "source": e.source, "title": e.title,
                                   "score": e.score})
                for e in found.results]
