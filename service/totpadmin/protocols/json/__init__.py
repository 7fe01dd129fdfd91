"""The JSON APIs' translators (no Twisted): strict JSON bodies, JSON replies, and OAuth2's token endpoint."""
