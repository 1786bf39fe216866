"""Best-practice copilot for the go-to-market teams of SaaS companies."""

__version__ = "0.1.0"
