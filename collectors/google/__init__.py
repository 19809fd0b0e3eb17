"""Google Workspace over HTTP: the `google://` source (service account, domain-wide delegation).

Needs the `google` extra (google-auth, httpx, cryptography); `open_source` imports this package only
for a `google://` URL, so the demo workspace runs without it.
"""
