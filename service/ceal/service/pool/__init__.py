"""The active-learning pool core: scoring, query lists, retrieval. No gRPC here."""
