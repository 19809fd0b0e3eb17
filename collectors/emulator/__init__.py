"""A loopback Google Workspace emulator serving a `sim://` workspace in Google's REST shapes.

A test peer, never imported by the sweep's runtime path: `sweep emulate` starts it. It serves the
same items, ids, faults and latency as `sim://` with the same parameters, under Google's real
paths, behind a token endpoint that verifies the service account's signed grants and an API
surface that enforces scopes, the admin-only Directory and per-user impersonation.
"""
