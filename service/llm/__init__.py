"""LLM backends behind one small interface (see `base.LLMBackend`)."""
