"""Report: incidents and alerts for people (terminal, HTML) and for tools (NDJSON, STIX)."""
