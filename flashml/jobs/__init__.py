"""Batch scoring: datasets, jobs that score them through the same batcher at low priority, the scheduler."""
