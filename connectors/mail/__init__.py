"""Mail: RFC 5322 parsing (`parse`), identity and decoded form (`record`), the drop folder (`maildir`)."""
