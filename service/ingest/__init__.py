"""Ingestion: documents → sentences with exact offsets → persisted index."""
