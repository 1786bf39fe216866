"""The base of the copilot's pydantic models."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    """A pydantic model whose validator and serializer are built on first use instead of at import:
    a CLI command imports over a hundred models and uses a few (Step 6: start-up, ~20 ms of a
    `copilot ask`). Behaviour is the same; a model's first validation pays for building it."""

    model_config = ConfigDict(defer_build=True)
