"""The read-only web view of a ledger (`sweep serve`): a page, a JSON API and /metrics."""
