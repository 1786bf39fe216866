"""Accounts and Insight: a company's own customers, their activity over time, health, renewal
risk and the next best action."""
