"""Mail transports behind one interface: the local .eml outbox (default) and Microsoft Graph."""
