"""One time budget for all the LLM calls that serve one request.

`llm_timeout_s` is what a person waits for the LLM in total, not per call: the intent call,
the compose call, its re-ask and every retry draw on the same budget, each call may take only
what is left, and once it is spent the remaining stages answer offline without calling the
endpoint. `LlmBudget.fallbacks` records which stages did, for the response and the audit log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

log = logging.getLogger(__name__)

Stage = Literal["intent", "compose"]
T = TypeVar("T")

# Less time than this left is not worth a call: no endpoint answers that fast.
MIN_CALL_S = 0.2
# Pause before retrying a failed call (rate limit, 5xx), taken from the budget like the calls.
RETRY_PAUSE_S = 0.25
# Statuses worth another try, as the openai client itself decides.
_RETRY_STATUSES = {408, 409, 429}


class BudgetSpent(Exception):
    """No time left for another LLM call in this request."""


@dataclass
class LlmBudget:
    """Created once per request (pipeline.answer) and passed to every LLM stage."""

    total_s: float
    max_retries: int = 1  # further tries of a failed call, while time remains
    started: float = field(default_factory=time.monotonic)
    fallbacks: list[Stage] = field(default_factory=list)

    def remaining(self) -> float:
        return max(0.0, self.total_s - (time.monotonic() - self.started))

    def call(self, invoke: Callable[[float], T]) -> T:
        """`invoke(timeout_s)` with the time left as its timeout, tried again after a transient
        failure while retries and time remain; `BudgetSpent` when no time is left to try."""
        failures = 0
        while True:
            left = self.remaining()
            if left < MIN_CALL_S:
                raise BudgetSpent(f"the request's {self.total_s:g}s LLM budget is spent")
            try:
                return invoke(left)
            except Exception as exc:
                failures += 1
                if failures > self.max_retries or not _transient(exc) or \
                        self.remaining() < RETRY_PAUSE_S + MIN_CALL_S:
                    raise
                log.info("LLM call failed (%s); trying again within the budget", type(exc).__name__)
                time.sleep(RETRY_PAUSE_S)

    def fell_back(self, stage: Stage) -> None:
        if stage not in self.fallbacks:
            self.fallbacks.append(stage)


def _transient(exc: Exception) -> bool:
    """A failure that another try may not repeat (lost connection, rate limit, 5xx), as the
    openai client itself decides. A timeout is not one: it took all the time it was given."""
    import openai  # already loaded by the client that raised; kept out of this module's import

    if isinstance(exc, openai.APITimeoutError):
        return False
    if isinstance(exc, openai.APIConnectionError):
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in _RETRY_STATUSES or exc.status_code >= 500
    return False
