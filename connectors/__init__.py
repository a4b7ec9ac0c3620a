"""One package per upstream protocol. Connectors fetch and decode; they never touch the store or Prefect.

- `base`      the `SourceConnector` protocol every source implements
- `registry`  which connector serves which `kind:` of source
- `mail`      RFC 5322 parsing and the drop-folder (Maildir / .eml) source
"""
