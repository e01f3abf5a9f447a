"""The data pipeline (private): input conversion, datasets, batching and prefetch."""
