"""Real servers for tests: Dovecot IMAP on loopback (and, later, an SMTP sink)."""
