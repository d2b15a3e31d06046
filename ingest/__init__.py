"""Ingestion: a tenant's docs folder, chunked and embedded, into Qdrant; and the hybrid search over it."""
