"""A small error hierarchy; the CLI and the API translate these at the edge."""


class CopilotError(Exception):
    """Base class: the message says what went wrong and what to do."""

    http_status = 400


class InvalidInput(CopilotError):
    """The user's input cannot be used as given."""


class NotFound(CopilotError):
    http_status = 404


class Forbidden(CopilotError):
    http_status = 403


class Conflict(CopilotError):
    http_status = 409


class ConfigError(CopilotError):
    """Settings or optional dependencies are missing or wrong."""

    http_status = 500
