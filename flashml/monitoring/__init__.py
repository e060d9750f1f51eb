"""Watching what models see and answer: prediction logging (a sampled record of requests) and drift scores."""
