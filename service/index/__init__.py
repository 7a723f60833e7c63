"""The persisted hybrid index: sentence records, dense embeddings and BM25."""
